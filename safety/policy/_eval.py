"""CEL conditions: compiling and checking them, the variables they see, and the sample inputs
they must run on."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import cel

from genseal.errors import PolicyError

from .._findings import Category, CheckState, Finding, Stage
from .._yaml_lines import LineIndex
from ._cel_syntax import describe_syntax_error
from ._model import Rule
from ._yaml import PolicyProblem, did_you_mean

__all__ = [
    "VARIABLES",
    "RuleOrigin",
    "cel_context",
    "compile_condition",
    "evaluate",
    "probe_inputs",
    "request_facts",
]

# Variables a `when` may use; anything else is a typo the file should not load with.
VARIABLES = frozenset({"findings", "request", "stage", "thresholds"})
MACRO_VAR = re.compile(r"\.\s*(?:all|exists|exists_one|map|filter)\s*\(\s*([A-Za-z_]\w*)\s*,")
_REQUEST_DEFAULTS: dict[str, Any] = {
    "tenant": "",
    "purpose": "",
    "model": "",
    "stage": "",
    "operation": "",
    "has_input_image": False,
    "preset": "",
    "n": 1,
    "has_consent": False,
    "consent": {"subject": "", "reference": "", "scope": ""},
}


# --- evaluating ------------------------------------------------------------------------------


def request_facts(request: Mapping[str, Any], stage: Stage) -> dict[str, Any]:
    """The `request` map conditions see: known keys always present (no null in CEL)."""
    facts = dict(_REQUEST_DEFAULTS)
    for key, value in request.items():
        if value is None:
            continue
        facts[str(key)] = value.value if isinstance(value, Enum) else value
    consent = facts.get("consent")
    if isinstance(consent, Mapping):
        facts["consent"] = {**_REQUEST_DEFAULTS["consent"], **consent}
    facts["stage"] = stage.value
    return facts


def cel_context(
    findings: list[dict[str, Any]],
    stage: Stage,
    request: dict[str, Any],
    thresholds: dict[str, float],
) -> cel.Context:
    # One Context per decision: converting the variables once is ~10x cheaper than per rule.
    return cel.Context(
        variables={
            "findings": findings,
            "request": request,
            "stage": stage.value,
            "thresholds": thresholds,
        }
    )


def evaluate(program: cel.Program, context: cel.Context) -> bool:
    try:
        result = program.execute(context)
    except KeyError as exc:
        # The CEL binding reports a missing map key (a typo'd field) as a bare KeyError.
        raise PolicyError(f"condition failed to evaluate: no such field {exc}") from exc
    except Exception as exc:
        raise PolicyError(f"condition failed to evaluate: {exc}") from exc
    if not isinstance(result, bool):
        raise PolicyError(
            f"condition must evaluate to a bool, got {type(result).__name__} {result!r}"
        )
    return result


def probe_inputs() -> list[tuple[Stage, list[dict[str, Any]]]]:
    """Sample inputs every condition must evaluate on: no findings, and one of every kind."""
    probes: list[tuple[Stage, list[dict[str, Any]]]] = []
    for stage in Stage:
        every_kind = [
            Finding(
                check="probe",
                check_version="0",
                category=category,
                stage=stage,
                state=state,
                score=None if state in (CheckState.NOT_CHECKED, CheckState.ERROR) else 0.5,
                threshold=0.5,
                image_index=None if stage is Stage.PROMPT else 0,
                details={"matched": ["probe"]} if state is CheckState.FLAGGED else {},
            ).as_cel()
            for category in Category
            for state in CheckState
        ]
        probes += [(stage, []), (stage, every_kind)]
    return probes


# --- compiling -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RuleOrigin:
    """Where a rule's text lives, for messages (an overlay's rules live in two files)."""

    path: Path
    lines: LineIndex
    loc: tuple[str | int, ...]


def compile_condition(
    rule: Rule, thresholds: dict[str, float], origin: RuleOrigin
) -> tuple[cel.Program | None, list[PolicyProblem]]:
    """`rule`'s condition compiled, or the problem that stops it loading (CEL syntax, a variable
    the engine does not provide, a condition that is not a bool or fails on a sample input)."""
    when_loc = (*origin.loc, "when")
    line, column = origin.lines.position(when_loc, key=False)
    if line is None:  # an override that does not restate `when`
        line, column = origin.lines.position(origin.loc)

    def problem(message: str, at: tuple[int | None, int | None] = (line, column)) -> PolicyProblem:
        return PolicyProblem(
            file=str(origin.path), line=at[0], column=at[1], rule=rule.id, message=message
        )

    try:
        program = cel.compile(rule.when)
    except Exception as exc:
        syntax = describe_syntax_error(rule.when, str(exc))
        at: tuple[int | None, int | None] = (line, column)
        if syntax.line is not None and syntax.column is not None:
            inner = origin.lines.expression_position(when_loc, syntax.line, syntax.column)
            at = (inner[0] or line, inner[1] or column)
        return None, [problem(f"invalid CEL condition: {syntax.message}", at)]
    bound = set(MACRO_VAR.findall(rule.when))
    unknown = sorted(set(program.variables()) - VARIABLES - bound)
    if unknown:
        return None, [
            problem(
                f"unknown variable(s) {', '.join(unknown)} in condition"
                f" (available: {', '.join(sorted(VARIABLES))})"
                + (did_you_mean(unknown[0], VARIABLES) if len(unknown) == 1 else "")
            )
        ]
    for stage, findings in probe_inputs():
        facts = request_facts({}, stage)
        context = cel_context(findings, stage, facts, thresholds)
        try:
            evaluate(program, context)
        except PolicyError as exc:
            hint = ""
            if isinstance(exc.__cause__, KeyError):
                known = {*facts, *facts["consent"], *(k for f in findings for k in f)}
                hint = did_you_mean(exc.__cause__.args[0], known)
            return None, [problem(f"{exc}{hint} [checked on a sample {stage.value} request]")]
    return program, []
