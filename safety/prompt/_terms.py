"""Prompt screening against a policy's term lists and regular expressions."""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from genseal.errors import PolicyError

from .._findings import Category, CheckState, Finding, Stage
from .._normalize import matching_forms, term_pattern, term_regex

if TYPE_CHECKING:
    from ..policy import Policy

__all__ = ["TermListCheck"]

_CODE_VERSION = "1"


class TermListCheck:
    """Flags a prompt per category when it contains a listed term or matches a listed regex.

    Terms are matched as whole words after normalisation (see `safety._normalize`), so
    obfuscations like "n.u.d.e", "nuuude", "nud3" or "ｎｕｄｅ" match "nude" while "class",
    "Scunthorpe" and "analysis" match nothing. Regexes are compiled once, case-insensitively,
    and searched in the normalised prompt. Exception phrases ("naked mole rat") are blanked
    out of the prompt first, so the words inside them count for no category. One finding per
    configured category: flagged with the matched terms in `details["matched"]` (score 1.0),
    or clean (score 0.0).
    """

    name = "prompt_terms"

    def __init__(
        self,
        terms: Mapping[Category, Sequence[str]],
        patterns: Mapping[Category, Sequence[str]] | None = None,
        exceptions: Sequence[str] = (),
    ) -> None:
        patterns = patterns or {}
        blanked: list[str] = []
        for phrase in exceptions:
            try:
                blanked.append(f"(?:{term_pattern(phrase)})")
            except ValueError as exc:
                raise PolicyError(f"prompt_term_exceptions: {exc}") from exc
        self._exceptions = re.compile("|".join(blanked)) if blanked else None
        self.categories: tuple[Category, ...] = tuple(
            dict.fromkeys([*(Category(c) for c in terms), *(Category(c) for c in patterns)])
        )
        # Each term's own pattern is compiled only when its category's alternation matched:
        # most prompts match none, and compiling hundreds costs a one-off `screen` its start.
        self._terms: dict[Category, list[tuple[str, str]]] = {}
        self._patterns: dict[Category, list[re.Pattern[str]]] = {}
        for category, words in terms.items():
            compiled: list[tuple[str, str]] = []
            for term in words:
                try:
                    compiled.append((term, term_pattern(term)))
                except ValueError as exc:
                    raise PolicyError(f"prompt_terms.{category}: {exc}") from exc
            self._terms[Category(category)] = compiled
        # One pass per category first: most prompts match no term of a category, and one
        # alternation is searched far faster than hundreds of patterns one by one.
        self._any_term: dict[Category, re.Pattern[str]] = {
            category: re.compile("|".join(f"(?:{source})" for _, source in compiled))
            for category, compiled in self._terms.items()
            if compiled
        }
        for category, sources in patterns.items():
            regexes: list[re.Pattern[str]] = []
            for source in sources:
                try:
                    regexes.append(re.compile(source, re.IGNORECASE))
                except re.error as exc:
                    raise PolicyError(
                        f"prompt_patterns.{category}: invalid regex {source!r}: {exc}"
                    ) from exc
            self._patterns[Category(category)] = regexes
        # The lists are policy data: the version pins them so an audit record says which ran.
        digest = hashlib.sha256(
            json.dumps(
                {
                    "terms": {str(c): list(v) for c, v in terms.items()},
                    "patterns": {str(c): list(v) for c, v in patterns.items()},
                    "exceptions": list(exceptions),
                },
                sort_keys=True,
            ).encode()
        ).hexdigest()
        self.version = f"{_CODE_VERSION}+lists.{digest[:12]}"

    @classmethod
    def from_policy(cls, policy: Policy) -> TermListCheck:
        """The prompt check a policy's `prompt_terms` and `prompt_patterns` describe."""
        return cls(policy.prompt_terms, policy.prompt_patterns, policy.prompt_term_exceptions)

    def matches(self, prompt: str) -> dict[Category, list[str]]:
        """Matched terms (and `/regex/` sources) per category, in list order."""
        forms = tuple(self._without_exceptions(form) for form in matching_forms(prompt))
        found: dict[Category, list[str]] = {}
        for category in self.categories:
            any_term = self._any_term.get(category)
            hits = (
                [
                    term
                    for term, _ in self._terms.get(category, [])
                    if any(term_regex(term).search(form) for form in forms)
                ]
                if any_term is not None and any(any_term.search(form) for form in forms)
                else []
            )
            hits += [
                f"/{rx.pattern}/"
                for rx in self._patterns.get(category, [])
                if any(rx.search(form) for form in forms)
            ]
            found[category] = hits
        return found

    def _without_exceptions(self, form: str) -> str:
        return self._exceptions.sub(" ", form) if self._exceptions is not None else form

    def check(self, prompt: str) -> list[Finding]:
        start = time.perf_counter()
        found = self.matches(prompt)
        elapsed_ms = (time.perf_counter() - start) * 1000.0
        findings: list[Finding] = []
        for category in self.categories:
            hits = found[category]
            findings.append(
                Finding(
                    check=self.name,
                    check_version=self.version,
                    category=category,
                    stage=Stage.PROMPT,
                    state=CheckState.FLAGGED if hits else CheckState.CLEAN,
                    score=1.0 if hits else 0.0,
                    threshold=1.0,
                    reason=(
                        f"prompt matches {category.value} terms: " + ", ".join(hits)
                        if hits
                        else None
                    ),
                    latency_ms=elapsed_ms,
                    details={"matched": hits},
                )
            )
        return findings
