"""Reading policy YAML safely, and reporting what is wrong in it at file:line:column."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from .._yaml_lines import LineIndex

__all__ = ["PolicyProblem", "describe_validation", "parse_yaml"]


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


def parse_yaml(text: str, path: Path) -> tuple[Any, list[PolicyProblem]]:
    """`safe_load` plus the checks it skips (duplicate keys); problems instead of exceptions."""
    try:
        document = yaml.safe_load(text)
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
    # safe_load keeps the last of two equal keys; in a rule that silently drops a condition.
    duplicate = _first_duplicate_key(yaml.compose(text, Loader=yaml.SafeLoader))
    if duplicate is not None:
        key, line, column = duplicate
        return None, [
            PolicyProblem(
                file=str(path), line=line, column=column, message=f"duplicate key {key!r}"
            )
        ]
    return document, []


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


def describe_validation(
    exc: ValidationError, path: Path, lines: LineIndex, document: Mapping[str, Any]
) -> list[PolicyProblem]:
    """One problem per pydantic error, named by rule and field, at the field's position."""
    problems: list[PolicyProblem] = []
    for error in exc.errors():
        loc = tuple(error["loc"])
        field: tuple[Any, ...] = loc
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
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown field"
        elif error["type"] in ("enum", "literal_error") and "input" in error:
            message = f"{message} (got {error['input']!r})"
        line, column = lines.position(loc)
        subject = f"field {name!r}: " if name else ""
        problems.append(
            PolicyProblem(
                file=str(path),
                line=line,
                column=column,
                rule=rule_id,
                message=f"{prefix}{subject}{message}",
            )
        )
    return problems
