"""Evaluating CEL conditions: the variables they see, and the sample inputs they must run on."""

from __future__ import annotations

import re
from collections.abc import Mapping
from enum import Enum
from typing import Any

import cel

from genseal.errors import PolicyError

from ._findings import Category, CheckState, Finding, Stage

__all__ = ["VARIABLES", "cel_context", "evaluate", "probe_inputs", "request_facts"]

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
