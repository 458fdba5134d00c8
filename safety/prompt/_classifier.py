"""The trained prompt classifier: a multi-label head over sentence embeddings.

Term lists catch the words a policy names and the semantic check the concepts it describes;
this check has learnt, from public prompt-safety sets, what unsafe requests look like. A prompt
is prepared as the semantic check prepares it (normalised, leetspeak spelled out, negated
phrases dropped: `semantic_units`), embedded with all-MiniLM-L6-v2 (the whole prompt; a model
may also ask for its clauses, max-pooled) and scored by a small network, one sigmoid output
per label. A label
is flagged at or above its threshold: the model's own (chosen on the dev split, see the model
card) unless the policy sets `thresholds.classifier_<label>`.

The model lives in a directory: `model.json` (name, version, labels, thresholds, the
languages it was trained on, the figures of its card) and `weights.npz` (the layers, float32).
The shipped one is `safety/models/prompt_classifier` (policy: `prompt_classifier: builtin`);
`bench/train_prompt_classifier.py` rebuilds it. Missing or corrupt files raise `CheckError`
at load, and `check` then reports ERROR findings: the policy fails closed.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from genseal.errors import CheckError

from .._findings import Category, CheckState, Finding, Stage, prompt_errors
from ._minilm import shared_encoder
from ._semantic import semantic_units

if TYPE_CHECKING:
    from ..policy import Policy

__all__ = ["BUILTIN_MODEL", "ClassifierModel", "PromptClassifierCheck", "prompt_features"]

_CODE_VERSION = "1"
BUILTIN_MODEL = Path(__file__).resolve().parents[1] / "models" / "prompt_classifier"
THRESHOLD_KEY = "classifier"
_RETRAIN_HINT = "reinstall genseal, or rebuild it: python -m bench.train_prompt_classifier"


FEATURES = ("whole", "whole+clauses")


def prompt_features(
    prompts: Sequence[str], features: str = "whole", encoder_path: Path | None = None
) -> np.ndarray:
    """The classifier's input per prompt: the embedding of the whole prepared prompt (384
    floats), and for `whole+clauses` also the maximum over its clauses' embeddings (768)."""
    if features not in FEATURES:
        raise CheckError(f"unknown prompt classifier features {features!r}")
    units = [semantic_units(p)[0] or [""] for p in prompts]
    if features == "whole":
        units = [u[:1] for u in units]
    texts = list(dict.fromkeys(t for u in units for t in u))
    index = {t: i for i, t in enumerate(texts)}
    embedded = shared_encoder(encoder_path).encode(texts)
    rows = []
    for prompt_units in units:
        vectors = embedded[[index[t] for t in prompt_units]]
        parts = [vectors[0]] if features == "whole" else [vectors[0], vectors.max(axis=0)]
        rows.append(np.concatenate(parts))
    return np.asarray(rows, dtype=np.float32)


@dataclass(frozen=True)
class ClassifierModel:
    """A loaded classifier: a multi-layer perceptron from features to one logit per label."""

    name: str
    version: str
    labels: tuple[str, ...]
    thresholds: dict[str, float]
    languages: tuple[str, ...]
    features: str
    layers: tuple[tuple[np.ndarray, np.ndarray], ...]
    card: dict[str, Any]

    @classmethod
    def load(cls, directory: Path) -> ClassifierModel:
        meta_path, weights_path = directory / "model.json", directory / "weights.npz"
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            with np.load(weights_path, allow_pickle=False) as weights:
                count = int(meta["layers"])
                layers = tuple(
                    (
                        np.asarray(weights[f"w{i}"], dtype=np.float32),
                        np.asarray(weights[f"b{i}"], dtype=np.float32),
                    )
                    for i in range(count)
                )
            labels = tuple(str(label) for label in meta["labels"])
            model = cls(
                name=str(meta["name"]),
                version=str(meta["version"]),
                labels=labels,
                thresholds={k: float(v) for k, v in meta["thresholds"].items()},
                languages=tuple(meta.get("languages", ["en"])),
                features=str(meta.get("features", "whole")),
                layers=layers,
                card=dict(meta.get("metrics", {})),
            )
        except FileNotFoundError as exc:
            raise CheckError(
                f"prompt classifier files missing in {directory}: {exc.filename}",
                hint=_RETRAIN_HINT,
            ) from exc
        except Exception as exc:
            raise CheckError(
                f"prompt classifier in {directory} is unreadable: {type(exc).__name__}: {exc}",
                hint=_RETRAIN_HINT,
            ) from exc
        model._check_shapes(directory)
        return model

    def _check_shapes(self, directory: Path) -> None:
        if self.features not in FEATURES:
            raise CheckError(
                f"prompt classifier in {directory}: unknown features {self.features!r}",
                hint=_RETRAIN_HINT,
            )
        width = self.layers[0][0].shape[0] if self.layers else 0
        if width != (384 if self.features == "whole" else 768):
            raise CheckError(
                f"prompt classifier in {directory}: its first layer does not take "
                f"{self.features} features",
                hint=_RETRAIN_HINT,
            )
        for w, b in self.layers:
            if w.ndim != 2 or w.shape[0] != width or b.shape != (w.shape[1],):
                raise CheckError(f"prompt classifier in {directory} has inconsistent layers")
            width = w.shape[1]
        if width != len(self.labels) or set(self.thresholds) != set(self.labels):
            raise CheckError(
                f"prompt classifier in {directory}: outputs, labels and thresholds disagree",
                hint=_RETRAIN_HINT,
            )
        for label in self.labels:
            Category(label)  # every label must be a category the policies can name

    def scores(self, features: np.ndarray) -> np.ndarray:
        """Sigmoid probabilities, one column per label."""
        x = features
        for i, (w, b) in enumerate(self.layers):
            x = x @ w + b
            if i < len(self.layers) - 1:
                x = np.maximum(x, 0.0)
        return np.asarray(1.0 / (1.0 + np.exp(-x)), dtype=np.float32)


_MODELS: dict[Path, ClassifierModel] = {}
_MODELS_LOCK = threading.Lock()


def _shared_model(directory: Path) -> ClassifierModel:
    resolved = directory.resolve()
    with _MODELS_LOCK:
        if resolved not in _MODELS:
            _MODELS[resolved] = ClassifierModel.load(resolved)
        return _MODELS[resolved]


class PromptClassifierCheck:
    """One finding per label of the model: flagged at or above the label's threshold.

    `details` carries the model's name and version, the score of every label and, when
    flagged, `matched` = [label]. The model and the encoder load on first use (or `load()`),
    once per process.
    """

    name = "prompt_classifier"

    def __init__(
        self,
        model_dir: str | Path = BUILTIN_MODEL,
        thresholds: Mapping[str, float] | None = None,
    ) -> None:
        self.model_dir = Path(model_dir)
        self._overrides = {str(k): float(v) for k, v in (thresholds or {}).items()}
        for label, value in self._overrides.items():
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"classifier threshold for {label} must be within [0, 1]")
        meta = _read_meta(self.model_dir)
        self.categories: tuple[Category, ...] = tuple(Category(label) for label in meta["labels"])
        self.model_name = str(meta["name"])
        self.model_version = str(meta["version"])
        self.languages: tuple[str, ...] = tuple(meta.get("languages", ["en"]))
        self.version = f"{_CODE_VERSION}+{self.model_name}.{self.model_version}"

    @classmethod
    def from_policy(cls, policy: Policy) -> PromptClassifierCheck:
        """The classifier a policy names (`prompt_classifier`; the policy resolves a relative
        directory against its file), at its thresholds."""
        spec = policy.prompt_classifier
        if spec is None:
            raise CheckError(f"policy {policy.id!r} configures no prompt_classifier")
        directory = BUILTIN_MODEL if spec == "builtin" else Path(spec)
        prefix = f"{THRESHOLD_KEY}_"
        overrides = {
            key.removeprefix(prefix): value
            for key, value in policy.thresholds.items()
            if key.startswith(prefix)
        }
        return cls(directory, overrides)

    @property
    def thresholds(self) -> dict[str, float]:
        model = self.model()
        return {
            label: self._overrides.get(label, model.thresholds[label]) for label in model.labels
        }

    def model(self) -> ClassifierModel:
        return _shared_model(self.model_dir)

    def load(self) -> None:
        """Load the model and the encoder now; raises `CheckError` if either cannot be."""
        self.check_many(["warm up"], raise_errors=True)

    def check(self, prompt: str) -> list[Finding]:
        return self.check_many([prompt])[0]

    def check_many(
        self, prompts: Sequence[str], *, raise_errors: bool = False
    ) -> list[list[Finding]]:
        """`check` for several prompts in one encoder batch."""
        start = time.perf_counter()
        try:
            model = self.model()
            thresholds = self.thresholds
            scores = model.scores(prompt_features(prompts, model.features))
        except Exception as exc:
            if raise_errors:
                raise
            elapsed = (time.perf_counter() - start) * 1000.0 / max(1, len(prompts))
            reason = f"the prompt classifier could not run: {type(exc).__name__}: {exc}"
            return [self._errors(reason, elapsed) for _ in prompts]
        elapsed = (time.perf_counter() - start) * 1000.0 / max(1, len(prompts))
        return [
            self._findings(
                model,
                thresholds,
                {lb: float(s) for lb, s in zip(model.labels, row, strict=True)},
                elapsed,
            )
            for row in scores
        ]

    def _findings(
        self,
        model: ClassifierModel,
        thresholds: dict[str, float],
        scores: dict[str, float],
        elapsed: float,
    ) -> list[Finding]:
        rounded = {label: round(value, 4) for label, value in scores.items()}
        findings = []
        for label in model.labels:
            score, threshold = scores[label], thresholds[label]
            flagged = score >= threshold
            findings.append(
                Finding(
                    check=self.name,
                    check_version=self.version,
                    category=Category(label),
                    stage=Stage.PROMPT,
                    state=CheckState.FLAGGED if flagged else CheckState.CLEAN,
                    score=score,
                    threshold=threshold,
                    reason=(
                        f"the prompt classifier scores {label} at {score:.2f} (>= {threshold:.2f})"
                        if flagged
                        else None
                    ),
                    latency_ms=elapsed,
                    details={
                        "model": model.name,
                        "model_version": model.version,
                        "matched": [label] if flagged else [],
                        "scores": rounded,
                    },
                )
            )
        return findings

    def _errors(self, reason: str, elapsed: float) -> list[Finding]:
        details = {"model": self.model_name, "model_version": self.model_version}
        return prompt_errors(self.name, self.version, self.categories, reason, elapsed, details)


def _read_meta(directory: Path) -> dict[str, Any]:
    path = directory / "model.json"
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(meta, dict) or not meta.get("labels"):
            raise ValueError("no labels")
        for label in meta["labels"]:
            Category(label)
    except FileNotFoundError as exc:
        raise CheckError(
            f"prompt classifier not found: {path} is missing", hint=_RETRAIN_HINT
        ) from exc
    except (ValueError, TypeError) as exc:
        raise CheckError(
            f"prompt classifier {path} is unreadable: {exc}", hint=_RETRAIN_HINT
        ) from exc
    return meta
