"""`genseal policy lint`: every problem in a policy file, at file:line:column.

Errors are what stops a file loading (YAML, schema, unknown fields and actions, CEL syntax,
unknown variables, conditions that are not bool or fail on sample inputs, duplicate or unknown
rule ids). Warnings are rules that load but cannot do anything:

- **never fires**: false on every sample input (every stage it applies to; no findings, one
  finding of every category/state/stage at low and high scores, all of them together; with and
  without an input image and consent). Rules that compare request fields the samples cannot
  guess (tenant, purpose, model, preset, operation, consent details) are not judged.
- **shadowed**: an earlier enforced rule for the same stage whose action wins (or ties, and
  comes first) holds whenever this one does — the same condition, `true`, or on every sample
  input where this rule fires — so this rule can never decide.

Both warnings come from sampling, not proof: they find the common mistakes (a stage filter that
contradicts the condition, a copy-pasted condition), not every dead rule.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import cel

from genseal.errors import PolicyError

from .._findings import Category, CheckState, Finding, Stage
from .._yaml_lines import LineIndex
from ._engine import Policy, load_policy
from ._eval import probe_inputs, request_facts
from ._tests import run_policy_tests
from ._yaml import PolicyProblem

__all__ = ["lint_policy"]

_UNGUESSABLE = re.compile(r"request\s*\.\s*(tenant|purpose|model|preset|operation|consent)\b")


def lint_policy(path: str | Path) -> list[PolicyProblem]:
    """Errors (the file does not load) and warnings (rules that cannot fire or decide), in
    file order."""
    problems = _lint(Path(path))
    return sorted(problems, key=lambda p: (p.line is None, p.line or 0, p.column or 0))


def _lint(path: Path) -> list[PolicyProblem]:
    if path.name.endswith("_test.yaml"):
        return _lint_test_file(path)
    policy, problems = load_policy(path)
    if policy is None or any(p.severity == "error" for p in problems):
        return problems
    try:
        lines = LineIndex(path.read_text(encoding="utf-8"))
    except OSError:
        lines = LineIndex("")
    locations = _rule_locations(policy)
    contexts = _contexts(policy.thresholds, _check_names(policy))
    fires = {rule.id: _firing(policy, rule.id, contexts) for rule in policy.rules}
    rank = {action: i for i, action in enumerate(policy.spec.precedence)}

    def warn(rule_id: str, message: str) -> None:
        line, column = lines.position(locations[rule_id])
        problems.append(
            PolicyProblem(
                file=str(path),
                line=line,
                column=column,
                rule=rule_id,
                severity="warning",
                message=message,
            )
        )

    for index, rule in enumerate(policy.rules):
        if rule.id not in locations:
            continue  # an unchanged base rule: linted with its own file
        if fires[rule.id] is not None and not fires[rule.id]:
            warn(rule.id, "never fires: the condition is false on every sample input")
            continue
        if rule.mode == "shadow":
            continue
        for earlier in policy.rules[:index]:
            if earlier.mode == "shadow" or rank[earlier.action] > rank[rule.action]:
                continue
            if earlier.stage is not None and earlier.stage is not rule.stage:
                continue
            same = _normal(earlier.when) in (_normal(rule.when), "true")
            mine, theirs = fires[rule.id], fires[earlier.id]
            implied = bool(mine) and mine is not None and theirs is not None and mine <= theirs
            if same or implied:
                warn(
                    rule.id,
                    f"shadowed by earlier rule {earlier.id!r} ({earlier.action.value}): it holds"
                    " whenever this one does, so this rule never decides",
                )
                break
    return problems


def _lint_test_file(path: Path) -> list[PolicyProblem]:
    """A test file given to lint (e.g. `policies/*.yaml`): it must load, with its policy."""
    try:
        run_policy_tests(path)
    except PolicyError as exc:
        return [PolicyProblem(file=str(path), message=str(exc))]
    return []


def _rule_locations(policy: Policy) -> dict[str, tuple[str | int, ...]]:
    """Where each rule defined in this file is (an overlay defines only what it changes)."""
    spec = policy.spec
    found: dict[str, tuple[str | int, ...]] = {}
    for index, rule in enumerate(spec.rules):
        found.setdefault(rule.id, ("rules", index, "id"))
    for index, rule in enumerate(spec.add):
        found.setdefault(rule.id, ("add", index, "id"))
    for rule_id in spec.overrides:
        found.setdefault(rule_id, ("overrides", rule_id))
    return found


def _normal(expression: str) -> str:
    return re.sub(r"\s+", "", expression)


_CHECK_NAME = re.compile(
    r"\.check\s*==\s*[\"']([^\"']+)[\"']|[\"']([^\"']+)[\"']\s*==\s*\w+\.check\b"
)


def _check_names(policy: Policy) -> tuple[str, ...]:
    """The check names conditions compare with (`f.check == "prompt_classifier"`): samples come
    from each of them, or a rule about one check's findings would never fire on a sample."""
    names = {"sample"}
    for rule in policy.rules:
        for match in _CHECK_NAME.finditer(rule.when):
            names.add(match.group(1) or match.group(2))
    return tuple(sorted(names))


def _contexts(
    thresholds: dict[str, float], checks: tuple[str, ...] = ("sample",)
) -> list[tuple[Stage, cel.Context]]:
    # Built once per file: converting the variables dominates the cost of evaluating.
    scores = tuple(sorted({0.0, 0.5, 1.0, *(v for v in thresholds.values() if 0 <= v <= 1)}))
    return [
        (
            stage,
            cel.Context(
                variables={
                    "findings": findings,
                    "request": request_facts(request, stage),
                    "stage": stage.value,
                    "thresholds": thresholds,
                }
            ),
        )
        for stage, findings, request in _samples(scores, checks)
    ]


def _firing(
    policy: Policy, rule_id: str, contexts: list[tuple[Stage, cel.Context]]
) -> frozenset[int] | None:
    """Indices of the sample inputs on which the rule holds; None when it cannot be judged."""
    rule = next(r for r in policy.rules if r.id == rule_id)
    if _UNGUESSABLE.search(rule.when):
        return None
    program: cel.Program = policy._programs[rule_id]
    fired: set[int] = set()
    for index, (stage, context) in enumerate(contexts):
        if rule.stage is not None and rule.stage is not stage:
            continue
        try:
            if program.execute(context) is True:
                fired.add(index)
        except Exception:
            continue  # a sample it cannot run on is not one it fires on
    return frozenset(fired)


@cache
def _samples(
    scores: tuple[float, ...], checks: tuple[str, ...] = ("sample",)
) -> tuple[tuple[Stage, list[dict[str, Any]], dict[str, Any]], ...]:
    """Sample inputs: request variants on the empty and all-kinds finding sets; single
    findings (every category, state, earlier-or-same stage, score) on a plain request; and
    every pair of categories flagged together at one stage, by every check a condition names
    (compositional rules need two findings: a minor and sexual content)."""
    requests = [
        {"has_input_image": image, "has_consent": consent, "n": n}
        for image in (False, True)
        for consent in (False, True)
        for n in (1, 8)
        if n == 1 or (image and consent)
    ]
    samples: list[tuple[Stage, list[dict[str, Any]], dict[str, Any]]] = []
    stages = list(Stage)
    for stage, findings in probe_inputs():
        samples += [(stage, findings, request) for request in requests]
    for position, stage in enumerate(stages):
        plain = {"has_input_image": stage is not Stage.PROMPT}
        seen = stages[: position + 1]
        for score in scores:
            # Errors stay out of the all-kinds set: a rule blocking on any error would hold
            # on every such sample and read as shadowing every rule that needs two findings.
            together = [
                _finding(category, state, at, score)
                for category in Category
                for state in CheckState
                if state is not CheckState.ERROR
                for at in seen
            ]
            samples += [(stage, together, request) for request in requests]
        for category in Category:
            for at in seen:
                for unchecked in (CheckState.NOT_CHECKED, CheckState.ERROR):
                    samples.append((stage, [_finding(category, unchecked, at, 0)], plain))
                for state in (CheckState.FLAGGED, CheckState.CLEAN):
                    for score in scores:
                        single = _finding(category, state, at, score)
                        samples.append((stage, [single], plain))
                        # The same finding beside clean sexual-content checks at every stage
                        # so far, as a screened request has them: without these, a rule on a
                        # lone finding reads as shadowed by the fail-closed rules.
                        screened = [_finding(Category.SEXUAL, CheckState.CLEAN, s, 0) for s in seen]
                        samples.append((stage, [single, *screened], plain))
        screened = [_finding(Category.SEXUAL, CheckState.CLEAN, s, 0) for s in seen]
        categories = list(Category)
        for i, first in enumerate(categories):
            for second in categories[i:]:
                flagged = [
                    _finding(category, CheckState.FLAGGED, stage, 1.0, check)
                    for category in dict.fromkeys((first, second))
                    for check in checks
                ]
                samples.append((stage, [*flagged, *screened], plain))
    return tuple(samples)


def _finding(
    category: Category, state: CheckState, stage: Stage, score: float, check: str = "sample"
) -> dict[str, Any]:
    return Finding(
        check=check,
        check_version="0",
        category=category,
        stage=stage,
        state=state,
        score=None if state in (CheckState.NOT_CHECKED, CheckState.ERROR) else score,
        threshold=0.5,
        image_index=None if stage is Stage.PROMPT else 0,
        details={"matched": ["sample"]} if state is CheckState.FLAGGED else {},
    ).as_cel()
