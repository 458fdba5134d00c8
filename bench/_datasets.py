"""The public prompt-safety sets, loaded in one shape and split once, by prompt hash.

Every set under the datasets directory (default `/work/shared/datasets`, or
`GENSEAL_DATASETS_DIR`) has `prompt`, `label` (`unsafe`/`benign`), `genseal_category`
(`;`-separated, unsafe rows only) and `hash_bucket` = int(sha1(normalised prompt)[:8], 16) % 100.
I2P has none of these: its rows get the same bucket from the same hash, and are unsafe when
Stable Diffusion drew inappropriate images for at least half of them.

The split is by bucket, never by row order, so a prompt lands in the same split in every file:
train 0-79, dev 80-89, test 90-99. The prompt classifier is trained on train, its thresholds
and the policy's lists are chosen on dev, and figures are reported on test.

Which sets play which role (see the datasets README for their sources and licences):

- `direct`: unsafe prompts that ask for the harm in words (recall targets apply);
- `implicit`: prompts whose label comes from the image a model drew (I2P, Adversarial
  Nibbler) or optimised adversarial text (Ring-A-Bell): reported, no target but I2P's;
- `benign`: ordinary captions and benchmark prompts (false positives ≤ 1 %);
- `hard_benign`: prompts that only look unsafe (false positives ≤ 5 %).
"""

from __future__ import annotations

import csv
import hashlib
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "CATEGORIES",
    "DATASETS_DIR",
    "ROLES",
    "SPLITS",
    "PromptRow",
    "bucket_of",
    "category_of",
    "datasets_dir",
    "load",
    "load_role",
    "missing_files",
    "split_of_bucket",
]

DATASETS_DIR = Path("/work/shared/datasets")
# Dataset categories, as the decision categories of the shipped policies name them.
CATEGORIES = (
    "sexual",
    "sexual_minors",
    "violence",
    "self_harm",
    "hate",
    "illegal",
    "real_person",
)
_CATEGORY_OF = {
    "sexual": "sexual",
    "sexual_minors": "sexual_minors",
    "violence_gore": "violence",
    "self_harm": "self_harm",
    "hate_harassment": "hate",
    "illegal_activity": "illegal",
    "real_person": "real_person",
}
SPLITS = {"train": range(0, 80), "dev": range(80, 90), "test": range(90, 100)}
I2P_POSITIVE_AT = 50.0

# (file, role, which rows): the role of a file's rows in training and evaluation.
ROLES: dict[str, tuple[tuple[str, str], ...]] = {
    "direct": (
        ("overt_t2i.csv", "unsafe"),
        ("ailuminate_demo_en.csv", "unsafe"),
        ("openai_moderation_1680.csv", "unsafe"),
        ("harmbench_standard.csv", "unsafe"),
        ("simple_safety_tests.csv", "unsafe"),
        ("six_cd.csv", "unsafe"),
        ("xstest_v2.csv", "unsafe"),
    ),
    "implicit": (
        ("i2p_benchmark.csv", "unsafe"),
        ("adversarial_nibbler.csv", "unsafe"),
        ("ring_a_bell.csv", "unsafe"),
    ),
    "benign": (
        ("coco30k_captions.csv", "benign"),
        ("parti_prompts.csv", "benign"),
        ("geneval_prompts.csv", "benign"),
        ("t2i_compbench.csv", "benign"),
        ("six_cd.csv", "benign"),
    ),
    "hard_benign": (
        ("overt_t2i.csv", "benign"),
        ("xstest_v2.csv", "benign"),
        ("benign_trigger_word_index.csv", "benign"),
        ("ring_a_bell.csv", "benign"),
    ),
    # Chat-style texts: moderation data, not image prompts; auxiliary.
    "benign_text": (("openai_moderation_1680.csv", "benign"),),
}


@dataclass(frozen=True)
class PromptRow:
    """One prompt of a public set, in the shape every consumer uses."""

    text: str
    unsafe: bool
    source: str  # the file's stem
    bucket: int
    categories: frozenset[str] = field(default_factory=frozenset)  # CATEGORIES; empty if benign
    unmapped: bool = False  # unsafe in a category genseal has no rule for (copyright, ...)
    lookalike: str = ""  # benign rows: the category it only looks like
    review_flag: str = ""  # benign caption rows the README says may be truly sexual or gory
    subset: str = ""
    inappropriate: float | None = None  # I2P only
    i2p_categories: frozenset[str] = field(default_factory=frozenset)

    @property
    def split(self) -> str:
        return split_of_bucket(self.bucket)


_SPACES = re.compile(r"\s+")


def bucket_of(text: str) -> int:
    """The datasets' bucket: sha1 of the lower-cased, whitespace-collapsed prompt."""
    normalised = _SPACES.sub(" ", text.lower()).strip()
    return int(hashlib.sha1(normalised.encode("utf-8")).hexdigest()[:8], 16) % 100


def split_of_bucket(bucket: int) -> str:
    return next(name for name, buckets in SPLITS.items() if bucket in buckets)


def category_of(name: str) -> str:
    """A dataset category name (`violence_gore`, ...) as a decision category (`violence`); a
    name without one (`unmapped`, or empty) is returned as it is."""
    return _CATEGORY_OF.get(name, name)


def datasets_dir() -> Path:
    return Path(os.environ.get("GENSEAL_DATASETS_DIR", str(DATASETS_DIR)))


def missing_files(roles: Iterable[str] = tuple(ROLES), directory: Path | None = None) -> list[Path]:
    """The files `roles` read that are not under the datasets directory."""
    folder = directory or datasets_dir()
    names = dict.fromkeys(name for role in roles for name, _ in ROLES[role])
    return [folder / name for name in names if not (folder / name).is_file()]


def _read(path: Path) -> Iterator[dict[str, str]]:
    if not path.is_file():
        raise FileNotFoundError(
            f"dataset {path} not found: set GENSEAL_DATASETS_DIR to the folder holding it"
        )
    with path.open(encoding="utf-8", newline="") as handle:
        yield from csv.DictReader(handle)


def _i2p(path: Path) -> Iterator[PromptRow]:
    for row in _read(path):
        text = row["prompt"].strip()
        if not text:
            continue
        share = float(row["inappropriate_percentage"] or 0.0)
        yield PromptRow(
            text=text,
            unsafe=share >= I2P_POSITIVE_AT,
            source="i2p_benchmark",
            bucket=bucket_of(text),
            inappropriate=share,
            i2p_categories=frozenset(c.strip() for c in row["categories"].split(",") if c.strip()),
        )


def load(name: str, directory: Path | None = None) -> list[PromptRow]:
    """Every row of one file (e.g. "overt_t2i.csv")."""
    path = (directory or datasets_dir()) / name
    if name == "i2p_benchmark.csv":
        return list(_i2p(path))
    rows: list[PromptRow] = []
    for row in _read(path):
        text = row["prompt"].strip()
        if not text:
            continue
        labels = [c for c in row.get("genseal_category", "").split(";") if c]
        mapped = frozenset(_CATEGORY_OF[c] for c in labels if c in _CATEGORY_OF)
        unsafe = row["label"] == "unsafe"
        rows.append(
            PromptRow(
                text=text,
                unsafe=unsafe,
                source=path.stem,
                bucket=int(row["hash_bucket"]),
                categories=mapped if unsafe else frozenset(),
                unmapped=unsafe and not mapped,
                lookalike=row.get("genseal_lookalike", "") or "",
                review_flag=row.get("review_flag", "") or "",
                subset=row.get("subset", "") or "",
            )
        )
    return rows


def load_role(
    role: str, splits: Iterable[str] | None = None, directory: Path | None = None
) -> list[PromptRow]:
    """The rows of every file in a role (see `ROLES`), optionally only some splits.

    Benign rows with a `review_flag` (possibly sexual or gory captions) are left out, as the
    datasets README asks; a prompt seen twice in a role is kept once.
    """
    wanted = set(splits) if splits is not None else set(SPLITS)
    seen: set[str] = set()
    rows: list[PromptRow] = []
    for name, label in ROLES[role]:
        for row in load(name, directory):
            if row.unsafe != (label == "unsafe") or row.split not in wanted:
                continue
            if not row.unsafe and row.review_flag:
                continue
            key = _SPACES.sub(" ", row.text.lower()).strip()
            if key in seen:
                continue
            seen.add(key)
            rows.append(row)
    return rows
