"""Prompt sets for bias probes: built-in YAML files in `safety/bias/prompt_sets/`, or a user's own.

A prompt set file (YAML, read with `safe_load`)::

    name: occupations                      # required: the set's name in reports
    description: Occupations, one face each.
    source: >-                             # where the subjects (and references) come from
      US Bureau of Labor Statistics, ...
    templates:                             # one or more; each holds {x} and no other field
      - "a photo of the face of a {x}"
    subjects:                              # one or more, names unique
      - firefighter                        # a plain subject
      - name: nurse                        # a subject with a reference distribution
        reference:
          gender: {female: 0.879, male: 0.121}
        reference_source: "BLS CPS 2022 annual averages, table 11: Registered nurses"

Every subject is rendered with every template (subject-major order) into a `ProbePrompt` whose
`key` is the subject; with more than one template the keys are numbered by template,
"nurse (1)", "nurse (2)", so that (set, key) names one prompt. In a template, "a {x}" becomes
"an {x}" before a subject starting with a vowel letter ("an accountant"); write subjects that
need otherwise ("a university ...") with their article in a template of their own set.

A reference maps attributes of `ATTRIBUTES` ("gender", "age", "monk", "ita") to a probability
per category; categories left out are 0 and the probabilities must sum to 1 (± 0.01). It needs
`reference_source`: shipped files carry only sourced numbers, and a reference without its
source cannot be checked. References compare a model's output with a population; they are a
baseline, not a target, and what the population records (e.g. sex in a labour survey) is not
what the estimator measures (perceived gender of a generated face).

Any problem in a file (not YAML, a missing or unknown field, a template without {x}, an unknown
attribute or category, a reference that does not sum to 1, no subjects) raises `InputError`
naming the file, the line and the field.
"""

from __future__ import annotations

import importlib.resources
import math
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from genseal.errors import InputError

from .._yaml_lines import LineIndex
from ._attributes import ATTRIBUTES

__all__ = ["ProbePrompt", "PromptSet", "builtin_prompt_sets", "load_prompt_set"]

_PACKAGE = "safety.bias.prompt_sets"
_SUFFIXES = (".yaml", ".yml")
_SUM_TOLERANCE = 0.01
_ARTICLE = re.compile(r"\b([Aa]) (?=\{x\})")


@dataclass(frozen=True)
class ProbePrompt:
    """One prompt of a set: `key` is its subject, `text` the rendered prompt."""

    set: str
    key: str
    text: str
    reference: dict[str, dict[str, float]] | None = None


@dataclass(frozen=True)
class PromptSet:
    name: str
    description: str
    source: str | None
    prompts: tuple[ProbePrompt, ...]


class _Subject(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    reference: dict[str, dict[str, float]] | None = None
    reference_source: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _plain_name(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"name": data}
        if not isinstance(data, dict):
            raise ValueError(
                f"a subject is a name or a mapping of name, reference and reference_source, "
                f"not {data!r}"
            )
        return data

    @field_validator("name")
    @classmethod
    def _stripped(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("a subject name cannot be blank")
        return value

    @field_validator("reference")
    @classmethod
    def _reference_valid(
        cls, value: dict[str, dict[str, float]] | None
    ) -> dict[str, dict[str, float]] | None:
        if value is None:
            return None
        if not value:
            raise ValueError("an empty reference: leave it out instead")
        for attribute, distribution in value.items():
            if attribute not in ATTRIBUTES:
                raise ValueError(
                    f"unknown attribute {attribute!r} (known: {', '.join(ATTRIBUTES)})"
                )
            categories = ATTRIBUTES[attribute]
            for category, probability in distribution.items():
                if category not in categories:
                    raise ValueError(
                        f"unknown category {category!r} for {attribute!r} "
                        f"(known: {', '.join(categories)})"
                    )
                if not math.isfinite(probability) or not 0.0 <= probability <= 1.0:
                    raise ValueError(
                        f"{attribute}.{category} is {probability}, not a probability in [0, 1]"
                    )
            total = sum(distribution.values())
            if abs(total - 1.0) > _SUM_TOLERANCE:
                raise ValueError(
                    f"the {attribute!r} reference sums to {total:.4g}, not 1 "
                    "(categories left out count as 0)"
                )
        return value

    @model_validator(mode="after")
    def _sourced(self) -> _Subject:
        if self.reference is not None and not (self.reference_source or "").strip():
            raise ValueError(
                f"subject {self.name!r} has a reference but no reference_source: "
                "say where the numbers come from"
            )
        return self


class _PromptSetFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    description: str = ""
    source: str | None = None
    templates: list[str] = Field(min_length=1)
    subjects: list[_Subject] = Field(min_length=1)

    @field_validator("templates")
    @classmethod
    def _templates_valid(cls, value: list[str]) -> list[str]:
        for template in value:
            try:
                fields = {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
            except ValueError as exc:
                raise ValueError(f"template {template!r}: {exc}") from None
            if "x" not in fields:
                raise ValueError(f"template {template!r} has no {{x}} for the subject")
            if fields != {"x"}:
                others = ", ".join("{" + f + "}" for f in sorted(fields - {"x"}))
                raise ValueError(f"template {template!r}: only {{x}} is filled in, not {others}")
        if len(set(value)) != len(value):
            raise ValueError("a template is listed twice")
        return value

    @field_validator("subjects")
    @classmethod
    def _subjects_unique(cls, value: list[_Subject]) -> list[_Subject]:
        seen: set[str] = set()
        for subject in value:
            folded = subject.name.casefold()
            if folded in seen:
                raise ValueError(f"subject {subject.name!r} is listed twice")
            seen.add(folded)
        return value


def builtin_prompt_sets() -> list[str]:
    """Names of the prompt sets shipped with genseal."""
    folder = importlib.resources.files(_PACKAGE)
    return sorted(
        entry.name.rsplit(".", 1)[0]
        for entry in folder.iterdir()
        if entry.is_file() and entry.name.endswith(_SUFFIXES)
    )


def load_prompt_set(name_or_path: str) -> PromptSet:
    """A built-in prompt set by name, or a YAML file of the same schema by path."""
    builtins = builtin_prompt_sets()
    looks_like_path = name_or_path.endswith(_SUFFIXES) or any(
        sep in name_or_path for sep in ("/", "\\")
    )
    if not looks_like_path and name_or_path in builtins:
        resource = importlib.resources.files(_PACKAGE) / f"{name_or_path}.yaml"
        return _parse(resource.read_text(encoding="utf-8"), f"<built-in {name_or_path}>")
    path = Path(name_or_path).expanduser()
    if path.is_file():
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"{path}: cannot read the prompt set: {exc}") from exc
        return _parse(text, str(path))
    raise InputError(
        f"unknown prompt set {name_or_path!r}: neither a built-in set "
        f"({', '.join(builtins)}) nor an existing file"
    )


def render(template: str, subject: str) -> str:
    """`template` with {x} = `subject`, "a" turned to "an" before a vowel letter."""
    if subject[:1].casefold() in "aeiou":
        template = _ARTICLE.sub(lambda m: f"{m.group(1)}n ", template)
    return template.format(x=subject)


def _parse(text: str, where: str) -> PromptSet:
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise InputError(f"{where}{at}: not valid YAML: {problem}") from exc
    if not isinstance(document, dict):
        raise InputError(
            f"{where}: a prompt set must be a YAML mapping with name, templates and subjects"
        )
    try:
        spec = _PromptSetFile.model_validate(document)
    except ValidationError as exc:
        raise InputError(_describe(exc, where, text, document)) from exc
    numbered = len(spec.templates) > 1
    prompts = tuple(
        ProbePrompt(
            set=spec.name,
            key=f"{subject.name} ({number})" if numbered else subject.name,
            text=render(template, subject.name),
            reference=(
                {a: dict(d) for a, d in subject.reference.items()}
                if subject.reference is not None
                else None
            ),
        )
        for subject in spec.subjects
        for number, template in enumerate(spec.templates, start=1)
    )
    return PromptSet(
        name=spec.name,
        description=spec.description.strip(),
        source=spec.source.strip() if spec.source else None,
        prompts=prompts,
    )


def _describe(exc: ValidationError, where: str, text: str, document: Mapping[str, Any]) -> str:
    lines = LineIndex(text)
    problems = []
    for error in exc.errors():
        loc = tuple(error["loc"])
        line, _ = lines.position(loc, key=False)
        field = _field_name(loc, document)
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown field"
        at = f":{line}" if line is not None else ""
        problems.append(f"{where}{at}: {field}: {message}" if field else f"{where}{at}: {message}")
    return "; ".join(problems)


def _field_name(loc: tuple[Any, ...], document: Mapping[str, Any]) -> str:
    parts: list[str] = []
    for index, part in enumerate(loc):
        if isinstance(part, int):
            parts[-1:] = [f"{parts[-1]}[{part}]" if parts else f"[{part}]"]
            if loc[:index] == ("subjects",):
                subjects = document.get("subjects")
                if isinstance(subjects, list) and part < len(subjects):
                    entry = subjects[part]
                    name = entry.get("name") if isinstance(entry, dict) else entry
                    if isinstance(name, str):
                        parts[-1] += f" ({name!r})"
        else:
            parts.append(str(part))
    return ".".join(parts)
