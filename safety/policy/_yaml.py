"""Reading policy YAML safely, and reporting what is wrong in it at file:line:column."""

from __future__ import annotations

import types
from collections.abc import Collection, Iterator, Mapping
from difflib import get_close_matches
from enum import Enum
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from .._yaml_lines import FAST_SAFE_LOADER, LineIndex

__all__ = [
    "PolicyProblem",
    "describe_validation",
    "did_you_mean",
    "parse_yaml",
    "yaml_boolean_warnings",
]

Loc = tuple[str | int, ...]

# Plain scalars that are booleans in YAML 1.1. PyYAML reads all but y/n as true/false (y and n
# stay text for it, not for every YAML 1.1 tool); YAML 1.2 tools, editors checking a file
# against the policy schema among them, read every one as text. `true` and `false` are left
# alone: whoever writes them means a boolean.
_YAML11_BOOLEANS = {
    word: word.lower() in ("y", "yes", "on")
    for base in ("y", "yes", "on", "n", "no", "off")
    for word in (base, base.capitalize(), base.upper())
}
_BOOL_TAG = "tag:yaml.org,2002:bool"


class PolicyProblem(BaseModel):
    """One thing wrong (or suspicious) in a policy file, at a place an editor can jump to."""

    model_config = ConfigDict(frozen=True)

    file: str
    line: int | None = None
    column: int | None = None
    rule: str | None = None
    severity: Literal["error", "warning"] = "error"
    message: str

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}:{self.column or 1}"
        subject = f"rule {self.rule!r}: " if self.rule else ""
        level = "warning: " if self.severity == "warning" else ""
        return f"{where}: {level}{subject}{self.message}"


def parse_yaml(text: str, path: Path, schema: type[BaseModel]) -> tuple[Any, list[PolicyProblem]]:
    """`safe_load` plus the checks it skips (duplicate keys, YAML 1.1 booleans where `schema`
    expects text); problems instead of exceptions. The document is None when it is unusable."""
    try:
        document = _safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line, column = (mark.line + 1, mark.column + 1) if mark is not None else (None, None)
        problem = getattr(exc, "problem", None) or str(exc)
        return None, [
            PolicyProblem(
                file=str(path), line=line, column=column, message=f"invalid YAML: {problem}"
            )
        ]
    if not isinstance(document, dict):
        return None, [
            PolicyProblem(
                file=str(path), line=1, column=1, message="a policy file must be a YAML mapping"
            )
        ]
    root = yaml.compose(text, Loader=FAST_SAFE_LOADER)
    # safe_load keeps the last of two equal keys; in a rule that silently drops a condition.
    duplicate = _first_duplicate_key(root)
    if duplicate is not None:
        key, line, column = duplicate
        return None, [
            PolicyProblem(
                file=str(path), line=line, column=column, message=f"duplicate key {key!r}"
            )
        ]
    return document, yaml_boolean_warnings(root, schema, path, document)


def _safe_load(text: str) -> Any:
    try:
        return yaml.load(text, Loader=FAST_SAFE_LOADER)
    except yaml.YAMLError:
        # The pure-Python parser words its errors as the docs show them; it reads what libyaml
        # reads, so it is only asked once libyaml has failed.
        return yaml.safe_load(text)


def _first_duplicate_key(root: yaml.Node | None) -> tuple[str, int, int] | None:
    stack, visited = [root], set()
    while stack:
        node = stack.pop()
        # Aliases share nodes (and may even form cycles): visit each node once.
        if node is None or id(node) in visited:
            continue
        visited.add(id(node))
        if isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for key_node, value_node in node.value:
                if isinstance(key_node, yaml.ScalarNode):
                    if key_node.value in seen:
                        mark = key_node.start_mark
                        return key_node.value, mark.line + 1, mark.column + 1
                    seen.add(key_node.value)
                stack.append(value_node)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
    return None


def did_you_mean(word: object, candidates: Collection[str]) -> str:
    """The hint for a misspelt name: "; did you mean 'x'?" with its closest candidate, or ""."""
    close = get_close_matches(str(word), list(candidates), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def _subject(loc: Loc, document: Mapping[str, Any]) -> tuple[str | None, str]:
    """The rule a location is in (by id, or by number when it has none) and the rest of the
    message's subject: ``field 'a.b': ``."""
    field: Loc = loc
    rule_id: str | None = None
    prefix = ""
    if len(loc) >= 2 and loc[0] in ("rules", "add") and isinstance(loc[1], int):
        field = loc[2:]
        rules = document.get(str(loc[0]))
        if isinstance(rules, list) and loc[1] < len(rules) and isinstance(rules[loc[1]], dict):
            raw_id = rules[loc[1]].get("id")
            rule_id = str(raw_id) if raw_id else None
        if rule_id is None:
            prefix = f"rule #{loc[1] + 1}: "
    elif len(loc) >= 2 and loc[0] == "overrides":
        rule_id = str(loc[1])
        field = loc[2:]
    name = ".".join(str(part) for part in field if part != "[key]")
    return rule_id, prefix + (f"field {name!r}: " if name else "")


def _unwrap_optional(annotation: Any) -> Any:
    if get_origin(annotation) in (Union, types.UnionType):
        members = [a for a in get_args(annotation) if a is not type(None)]
        if len(members) == 1:
            return members[0]
    return annotation


def _annotation_at(annotation: Any, loc: Loc) -> Any:
    """The type expected at `loc` (as pydantic reports it) in `annotation`; None if unknown."""
    parts = list(loc)
    while parts:
        part = parts.pop(0)
        annotation = _unwrap_optional(annotation)
        origin = get_origin(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = annotation.model_fields.get(str(part))
            if field is None:
                return None
            annotation = field.annotation
        elif origin in (list, tuple, set, frozenset) and isinstance(part, int):
            annotation = get_args(annotation)[0]
        elif origin is dict:
            key, value = get_args(annotation)
            if parts[:1] == ["[key]"]:
                parts.pop(0)
                annotation = key
            else:
                annotation = value
        else:
            return None
    return _unwrap_optional(annotation)


def _allowed_values(annotation: Any) -> list[str]:
    """The values an enum or a Literal of strings accepts (nothing for other types)."""
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return [str(member.value) for member in annotation]
    if get_origin(annotation) is Literal:
        return [str(a.value if isinstance(a, Enum) else a) for a in get_args(annotation)]
    return []


def _suggestion(error: Mapping[str, Any], schema: type[BaseModel]) -> str:
    loc = tuple(error["loc"])
    if error["type"] == "extra_forbidden":
        model = _annotation_at(schema, loc[:-1])
        if isinstance(model, type) and issubclass(model, BaseModel):
            return did_you_mean(loc[-1], model.model_fields)
    elif error["type"] in ("enum", "literal_error") and "input" in error:
        return did_you_mean(error["input"], _allowed_values(_annotation_at(schema, loc)))
    return ""


def describe_validation(
    exc: ValidationError,
    path: Path,
    lines: LineIndex,
    document: Mapping[str, Any],
    schema: type[BaseModel],
) -> list[PolicyProblem]:
    """One problem per pydantic error, named by rule and field, at the field's position; a
    misspelt field name or value gets the closest one `schema` knows."""
    problems: list[PolicyProblem] = []
    for error in exc.errors():
        loc = tuple(error["loc"])
        rule_id, subject = _subject(loc, document)
        message = error["msg"].removeprefix("Value error, ")
        allowed = _allowed_values(_annotation_at(schema, loc))
        if error["type"] == "extra_forbidden":
            message = "unknown field"
        elif error["type"] in ("enum", "literal_error") and len(allowed) > 1:
            # pydantic spells a Literal of enum members as their reprs (<Action.ALLOW: ...>).
            listed = f"{', '.join(map(repr, allowed[:-1]))} or {allowed[-1]!r}"
            message = f"Input should be {listed} (got {error['input']!r})"
        elif error["type"] in ("enum", "literal_error") or isinstance(
            error.get("input"),
            bool | int | float,  # e.g. a YAML boolean where text belongs
        ):
            message = f"{message} (got {error['input']!r})"
        line, column = lines.position(loc)
        problems.append(
            PolicyProblem(
                file=str(path),
                line=line,
                column=column,
                rule=rule_id,
                message=f"{subject}{message}{_suggestion(error, schema)}",
            )
        )
    return problems


def yaml_boolean_warnings(
    root: yaml.Node | None, schema: type[BaseModel], path: Path, document: Mapping[str, Any]
) -> list[PolicyProblem]:
    """A warning at every unquoted YAML 1.1 boolean (yes, no, on, off, y, n) where `schema`
    expects text: `message: no` is read as false, though it looks like text (and is, to
    editors that speak YAML 1.2)."""
    problems: list[PolicyProblem] = []
    for node, loc in dict(_text_scalars(root, schema, ())).items():
        # A plain scalar's style is None from PyYAML's parser and '' from libyaml's.
        if node.style or node.value not in _YAML11_BOOLEANS:
            continue
        rule_id, subject = _subject(loc, document)
        if node.tag == _BOOL_TAG:
            truth = "true" if _YAML11_BOOLEANS[node.value] else "false"
            what = f"unquoted {node.value} is read as the boolean {truth}, not as text"
        else:
            what = f"unquoted {node.value} is a boolean to YAML 1.1 tools (genseal reads text)"
        problems.append(
            PolicyProblem(
                file=str(path),
                line=node.start_mark.line + 1,
                column=node.start_mark.column + 1,
                rule=rule_id,
                severity="warning",
                message=f'{subject}{what}; quote it: "{node.value}"',
            )
        )
    return problems


def _expects_text(annotation: Any) -> bool:
    if isinstance(annotation, type) and issubclass(annotation, str):  # str, StrEnum
        return True
    args = get_args(annotation)
    return get_origin(annotation) is Literal and all(isinstance(a, str) for a in args)


def _text_scalars(node: yaml.Node | None, annotation: Any, loc: Loc) -> Iterator[Any]:
    """(scalar node, location) for every scalar of `node` where `annotation` expects text."""
    if get_origin(annotation) in (Union, types.UnionType):
        for member in get_args(annotation):
            yield from _text_scalars(node, member, loc)
    elif isinstance(node, yaml.ScalarNode):
        if _expects_text(annotation):
            yield node, loc
    elif isinstance(node, yaml.SequenceNode) and get_origin(annotation) in (list, tuple, set):
        for index, item in enumerate(node.value):
            yield from _text_scalars(item, get_args(annotation)[0], (*loc, index))
    elif isinstance(node, yaml.MappingNode):
        if get_origin(annotation) is dict:
            key_type, value_type = get_args(annotation)
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode):
                    yield from _text_scalars(key, key_type, (*loc, key.value, "[key]"))
                    yield from _text_scalars(value, value_type, (*loc, key.value))
        elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.value in annotation.model_fields:
                    field = annotation.model_fields[key.value]
                    yield from _text_scalars(value, field.annotation, (*loc, key.value))
