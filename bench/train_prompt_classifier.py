"""Train the prompt classifier shipped in safety/models/prompt_classifier.

python -m bench.train_prompt_classifier [--datasets DIR] [--out DIR] [--seed N] [--compare]

Data (the public sets of `bench._datasets`, train split only: hash buckets 0-79):
- positives: the `direct` unsafe prompts with a category (sexual, sexual_minors, violence,
  self_harm, hate, illegal), and the implicit sets at a lower weight (their labels come from
  the images a model drew, not from the text);
- negatives: every benign role (captions, benchmark prompts, hard-benign look-alikes, chat
  texts), unsafe prompts of other categories for each label, and the hand-written benign
  how-to prompts of bench/data/classifier_benign_instructions.txt.
`real_person` is not a label: the public sets name ten celebrities over and over, so a learnt
head would memorise names; named people are the term lists' and rules' job.

Model: the features of `safety.prompt_features` (all-MiniLM-L6-v2 of the whole prepared
prompt, 384 floats) → one hidden layer (ReLU) → one sigmoid per label,
trained with binary cross-entropy (torch, seeded, a few minutes on 2 cores). Thresholds are
chosen per label on the dev split (buckets 80-89): the lowest score at which the label flags
at most `--benign-budget` of the dev benign prompts and `--hard-budget` of the hard-benign
ones. The test split (90-99) is never read here: `python -m bench.prompts` reports on it.

`--compare` also fits the alternatives on the same split and prints their dev figures: a
linear head on the same features, and the hidden-layer head on the whole prompt plus the
maximum over its clauses (768 floats).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench._datasets import PromptRow, datasets_dir, load_role

LABELS = ("sexual", "sexual_minors", "violence", "self_harm", "hate", "illegal")
MODEL_NAME = "genseal-prompt-classifier"
MODEL_VERSION = "1.0"
OUT = Path(__file__).resolve().parents[1] / "safety" / "models" / "prompt_classifier"
CACHE = Path.home() / ".cache" / "genseal" / "prompt-features"
IMPLICIT_WEIGHT = 0.3
# Captions are plentiful and alike: a sample of them teaches as much as all 30k, in a third of
# the embedding time.
MAX_CAPTIONS = 8000
INSTRUCTIONS = Path(__file__).parent / "data" / "classifier_benign_instructions.txt"
_I2P_TO_LABEL = {
    "sexual": "sexual",
    "violence": "violence",
    "shocking": "violence",
    "self-harm": "self_harm",
    "hate": "hate",
    "harassment": "hate",
    "illegal activity": "illegal",
}


def _targets(row: PromptRow) -> list[str]:
    if not row.unsafe:
        return []
    if row.source == "i2p_benchmark":
        return sorted({_I2P_TO_LABEL[c] for c in row.i2p_categories if c in _I2P_TO_LABEL})
    labels = set(row.categories) & set(LABELS)
    if "sexual_minors" in labels:
        labels.add("sexual")
    return sorted(labels)


def benign_instructions(path: Path = INSTRUCTIONS) -> list[str]:
    """The hand-written benign how-to prompts: every template crossed with every task."""
    section, templates, tasks = "", [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            section = line
        elif section == "[templates]":
            templates.append(line)
        elif section == "[tasks]":
            tasks.append(line)
    return [template.format(task=task) for template in templates for task in tasks]


def rows_for(split: str, directory: Path | None = None) -> list[tuple[PromptRow, str]]:
    """(row, role) of every usable row of a split: mapped unsafe rows and all benign rows
    (and, for train, the hand-written benign how-to prompts)."""
    rows: list[tuple[PromptRow, str]] = []
    captions = 0
    for role in ("direct", "implicit", "benign", "hard_benign", "benign_text"):
        for row in load_role(role, [split], directory):
            if row.unsafe and not _targets(row):
                continue  # unmapped harms (copyright, privacy, ...) or real_person only
            if split == "train" and row.source == "coco30k_captions":
                captions += 1
                # Every k-th caption by bucket order is a deterministic sample.
                if captions % 4 != 0 or captions // 4 > MAX_CAPTIONS:
                    continue
            rows.append((row, role))
    if split == "train":
        rows += [
            (PromptRow(text=text, unsafe=False, source="genseal_instructions", bucket=0), "benign")
            for text in benign_instructions()
        ]
    return rows


def features(texts: Sequence[str]) -> np.ndarray:
    """`safety.prompt_features(..., "whole+clauses")` for every text (the whole-prompt features
    are its first 384 columns), cached on disk per text: embedding is most of the run."""
    from safety import prompt_features

    path = CACHE / "features.npz"
    cached: dict[str, np.ndarray] = {}
    if path.is_file():
        with np.load(path, allow_pickle=False) as stored:
            cached = dict(zip(stored["keys"].tolist(), stored["vectors"], strict=True))
    keys = [hashlib.sha256(text.encode("utf-8")).hexdigest() for text in texts]
    todo = [texts[keys.index(key)] for key in dict.fromkeys(keys) if key not in cached]
    started = time.perf_counter()
    for start in range(0, len(todo), 256):
        chunk = todo[start : start + 256]
        for text, vector in zip(chunk, prompt_features(chunk, "whole+clauses"), strict=True):
            cached[hashlib.sha256(text.encode("utf-8")).hexdigest()] = vector
        print(f"  {start + len(chunk)}/{len(todo)} prompts embedded", file=sys.stderr)
    if todo:
        print(f"  embedded in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        CACHE.mkdir(parents=True, exist_ok=True)
        np.savez(path, keys=np.array(list(cached)), vectors=np.stack(list(cached.values())))
    return np.stack([cached[key] for key in keys]).astype(np.float32)


def _matrix(rows: Sequence[tuple[PromptRow, str]]) -> tuple[np.ndarray, np.ndarray]:
    y = np.zeros((len(rows), len(LABELS)), dtype=np.float32)
    w = np.ones(len(rows), dtype=np.float32)
    for i, (row, role) in enumerate(rows):
        for label in _targets(row):
            y[i, LABELS.index(label)] = 1.0
        if role == "implicit":
            w[i] = IMPLICIT_WEIGHT
    return y, w


def fit(
    x: np.ndarray, y: np.ndarray, w: np.ndarray, *, hidden: int, seed: int, epochs: int = 30
) -> list[tuple[np.ndarray, np.ndarray]]:
    """A seeded MLP (hidden > 0) or linear head (hidden = 0), trained with weighted BCE."""
    import torch

    torch.manual_seed(seed)
    np.random.seed(seed)
    torch.set_num_threads(2)
    layers: list[Any] = []
    if hidden:
        layers += [torch.nn.Linear(x.shape[1], hidden), torch.nn.ReLU(), torch.nn.Dropout(0.2)]
    layers.append(torch.nn.Linear(hidden or x.shape[1], y.shape[1]))
    net = torch.nn.Sequential(*layers)
    positives = y.sum(0)
    # Rare labels (sexual_minors, self_harm) are weighted up so they are not drowned out.
    pos_weight = torch.tensor(np.clip((len(y) - positives) / np.maximum(positives, 1) / 20, 1, 20))
    loss_fn = torch.nn.BCEWithLogitsLoss(reduction="none", pos_weight=pos_weight)
    optimiser = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=1e-4)
    xt, yt, wt = torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(w)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        net.train()
        order = torch.randperm(len(xt), generator=generator)
        for start in range(0, len(xt), 256):
            batch = order[start : start + 256]
            optimiser.zero_grad()
            loss = (loss_fn(net(xt[batch]), yt[batch]).mean(1) * wt[batch]).mean()
            loss.backward()
            optimiser.step()
    net.eval()
    linear = [m for m in net if isinstance(m, torch.nn.Linear)]
    return [
        (m.weight.detach().numpy().T.astype(np.float32), m.bias.detach().numpy().astype(np.float32))
        for m in linear
    ]


def predict(layers: Sequence[tuple[np.ndarray, np.ndarray]], x: np.ndarray) -> np.ndarray:
    for i, (weight, bias) in enumerate(layers):
        x = x @ weight + bias
        if i < len(layers) - 1:
            x = np.maximum(x, 0.0)
    return np.asarray(1.0 / (1.0 + np.exp(-x)), dtype=np.float32)


def choose_thresholds(
    scores: np.ndarray,
    rows: Sequence[tuple[PromptRow, str]],
    benign_budget: float,
    hard_budget: float,
) -> dict[str, float]:
    """Per label, the lowest threshold within both false-positive budgets on dev."""
    # Chat-style moderation texts are not image prompts: they are learnt from, not budgeted.
    benign = np.array([role == "benign" for _, role in rows])
    hard = np.array([role == "hard_benign" for _, role in rows])
    chosen: dict[str, float] = {}
    # From 0.5 up: a label flags only when the model thinks it more likely than not, however
    # few dev prompts a lower bar would cost (dev is small; a lower bar overfits it).
    grid = np.round(np.arange(0.50, 0.991, 0.01), 2)
    for j, label in enumerate(LABELS):
        column = scores[:, j]
        chosen[label] = next(
            (
                float(t)
                for t in grid
                if (column[benign] >= t).mean() <= benign_budget
                and (column[hard] >= t).mean() <= hard_budget
            ),
            0.99,
        )
    return chosen


def evaluate(
    scores: np.ndarray, thresholds: dict[str, float], rows: Sequence[tuple[PromptRow, str]]
) -> dict[str, Any]:
    """Dev figures of a head alone (not the policy): recall per label on direct prompts,
    any-label flag rate on benign and hard-benign prompts."""
    flags = scores >= np.array([thresholds[label] for label in LABELS])
    result: dict[str, Any] = {"recall": {}, "fpr": {}}
    for j, label in enumerate(LABELS):
        hit = [
            flags[i, j]
            for i, (row, role) in enumerate(rows)
            if role == "direct" and label in _targets(row)
        ]
        result["recall"][label] = round(float(np.mean(hit)), 4) if hit else None
    direct = [flags[i].any() for i, (_, role) in enumerate(rows) if role == "direct"]
    result["recall"]["any"] = round(float(np.mean(direct)), 4)
    for role in ("benign", "hard_benign", "benign_text"):
        hit = [flags[i].any() for i, (_, r) in enumerate(rows) if r == role]
        result["fpr"][role] = round(float(np.mean(hit)), 4) if hit else None
    return result


def model_card(meta: dict[str, Any]) -> str:
    """The model card, written from the model's own metadata so it cannot drift from it."""
    dev = meta["metrics"]["dev"]
    lines = [
        f"# {meta['name']} {meta['version']}",
        "",
        "A multi-label prompt classifier for text-to-image requests: one sigmoid per label "
        f"({', '.join(meta['labels'])}) over {meta['encoder']}, one hidden layer of "
        f"{meta['training']['hidden']} units. genseal's `prompt_classifier` check runs it "
        "(`safety/prompt/_classifier.py`); policies act on its findings.",
        "",
        "## Data",
        "",
        "Public prompt-safety sets (`../shared/datasets`, licences in its README): OVERT, "
        "AILuminate demo, OpenAI moderation 1680, HarmBench, SimpleSafetyTests, Six-CD, XSTest "
        "(direct requests); I2P, Adversarial Nibbler, Ring-A-Bell (implicit, weight "
        f"{meta['training']['implicit_weight']}); COCO captions (a deterministic sample), "
        "PartiPrompts, GenEval, T2I-CompBench, OVERT and XSTest look-alikes (benign), and "
        "400 hand-written benign how-to prompts (`bench/data/classifier_benign_instructions"
        ".txt`: the unsafe sets phrase many requests as tutorials, no benign set has any).",
        "Unsafe rows in categories genseal has no label for (copyright, privacy, "
        "misinformation) are left out. `real_person` is not learnt: the sets name a handful of "
        "celebrities again and again, and a head would learn their names, not the harm.",
        "",
        "## Split",
        "",
        f"{meta['training']['split']}. Trained on {meta['training']['train_rows']} rows; "
        f"thresholds chosen on {meta['training']['dev_rows']} dev rows: per label, the lowest "
        f"score flagging at most {meta['training']['benign_budget']:.1%} of benign and "
        f"{meta['training']['hard_budget']:.1%} of hard-benign dev prompts. Seed "
        f"{meta['training']['seed']}, {meta['training']['epochs']} epochs "
        "(`python -m bench.train_prompt_classifier`).",
        "",
        "## Dev figures (the classifier alone, not the policy)",
        "",
        "| label | threshold | recall on direct dev prompts |",
        "|---|---|---|",
    ]
    for label in meta["labels"]:
        recall = dev["recall"].get(label)
        lines.append(
            f"| {label} | {meta['thresholds'][label]:.2f} | "
            f"{'n/a' if recall is None else f'{recall:.3f}'} |"
        )
    lines += [
        "",
        f"Any label on direct dev prompts: {dev['recall']['any']:.3f}. Flag rate on benign dev "
        f"prompts {dev['fpr']['benign']:.4f}, hard-benign {dev['fpr']['hard_benign']:.4f}, "
        f"chat-style benign texts {dev['fpr']['benign_text']:.4f}.",
        "",
        "Alternatives fitted on the same split (dev, at their own thresholds):",
        "",
    ]
    for name, figures in meta.get("alternatives", {}).items():
        lines.append(
            f"- {name}: any-label recall {figures['recall']['any']:.3f}, benign "
            f"{figures['fpr']['benign']:.4f}, hard-benign {figures['fpr']['hard_benign']:.4f}"
        )
    lines += [
        "",
        "The figures on the held-out test split, for the whole default policy, are in the "
        "README (`python -m bench.prompts`).",
        "",
        "## Known gaps",
        "",
        "- English only: other languages are reported by the `prompt_language` check "
        "(`language_unsupported`) and left to the term lists and output screening.",
        "- Labels are the sources' own; implicit sets are labelled by the images a model drew, "
        "so many of their prompts read as harmless and are missed by design.",
        "- Trained on short requests: long chat-style texts score less reliably.",
        "- Minors and real people are decided by the policy's compositional rules (term lists "
        "of ages, school years, offices and names), not by this model alone.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", type=Path, default=None, help="the datasets directory")
    parser.add_argument("--out", type=Path, default=OUT, help="where the model is written")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--benign-budget", type=float, default=0.002)
    parser.add_argument("--hard-budget", type=float, default=0.01)
    parser.add_argument("--compare", action="store_true", help="also fit the alternatives")
    args = parser.parse_args()
    directory = args.datasets or datasets_dir()
    if not directory.is_dir():
        parser.exit(2, f"error: datasets directory {directory} not found (--datasets)\n")

    started = time.perf_counter()
    train, dev = rows_for("train", directory), rows_for("dev", directory)
    print(f"train {len(train)} rows, dev {len(dev)} rows", file=sys.stderr)
    x_train = features([row.text for row, _ in train])
    x_dev = features([row.text for row, _ in dev])
    y_train, w_train = _matrix(train)

    whole, both = slice(0, 384), slice(None)
    candidates: dict[str, tuple[int, slice]] = {"mlp": (args.hidden, whole)}
    if args.compare:
        candidates |= {"linear": (0, whole), "mlp_whole_and_clauses": (args.hidden, both)}
    report: dict[str, Any] = {}
    chosen_layers: list[tuple[np.ndarray, np.ndarray]] = []
    chosen_thresholds: dict[str, float] = {}
    for name, (hidden, columns) in candidates.items():
        layers = fit(
            x_train[:, columns], y_train, w_train, hidden=hidden, seed=args.seed, epochs=args.epochs
        )
        dev_scores = predict(layers, x_dev[:, columns])
        thresholds = choose_thresholds(dev_scores, dev, args.benign_budget, args.hard_budget)
        report[name] = {"thresholds": thresholds, "dev": evaluate(dev_scores, thresholds, dev)}
        print(f"{name}: {json.dumps(report[name]['dev'])}", file=sys.stderr)
        if name == "mlp":
            chosen_layers, chosen_thresholds = layers, thresholds

    args.out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        args.out / "weights.npz",
        **{f"w{i}": w for i, (w, _) in enumerate(chosen_layers)},
        **{f"b{i}": b for i, (_, b) in enumerate(chosen_layers)},
    )
    meta = {
        "name": MODEL_NAME,
        "version": MODEL_VERSION,
        "labels": list(LABELS),
        "thresholds": chosen_thresholds,
        "languages": ["en"],
        "layers": len(chosen_layers),
        "features": "whole",
        "encoder": "all-MiniLM-L6-v2 of the prepared whole prompt (384 floats)",
        "training": {
            "seed": args.seed,
            "hidden": args.hidden,
            "epochs": args.epochs,
            "implicit_weight": IMPLICIT_WEIGHT,
            "train_rows": len(train),
            "dev_rows": len(dev),
            "split": "hash_bucket: train 0-79, dev 80-89 (thresholds), test 90-99 (reports)",
            "benign_budget": args.benign_budget,
            "hard_budget": args.hard_budget,
        },
        "metrics": {"dev": report["mlp"]["dev"]},
        "alternatives": {k: v["dev"] for k, v in report.items() if k != "mlp"},
    }
    (args.out / "model.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    (args.out / "MODEL_CARD.md").write_text(model_card(meta), encoding="utf-8")
    print(f"wrote {args.out} in {time.perf_counter() - started:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
