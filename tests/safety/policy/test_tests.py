"""The shipped policies pass their own test cases; the case runner reports failures and gaps."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from genseal.errors import PolicyError
from safety import Action, CaseResult, Policy, default_policy_path, run_policy_tests

POLICIES = default_policy_path().parent


@pytest.mark.parametrize("name", ["default", "strict"])
def test_shipped_policy_passes_its_cases(name: str) -> None:
    results = run_policy_tests(POLICIES / f"{name}_test.yaml")

    failures = [f"{r.name}: {r.error}" for r in results if not r.passed]
    assert failures == []
    assert len(results) >= 2 * len(Policy.load(POLICIES / f"{name}.yaml").rules)


@pytest.mark.parametrize("name", ["default", "strict"])
def test_every_rule_has_a_deciding_and_an_otherwise_case(name: str) -> None:
    # run_policy_tests adds a failed "coverage: <rule>" result for any rule lacking either;
    # checked here explicitly so a gap reads as such.
    results = run_policy_tests(POLICIES / f"{name}_test.yaml")
    assert not [r for r in results if r.name.startswith("coverage:")]


def test_shipped_policies_block_unchecked_outputs() -> None:
    for name in ("default", "strict"):
        rules = {r.id: r for r in Policy.load(default_policy_path(name)).rules}
        assert rules["block-unchecked-output-sexual"].action is Action.BLOCK


POLICY = """\
id: mini
version: "1"
rules:
  - id: block-sexual
    when: 'findings.exists(f, f.category == "sexual" && f.flagged)'
    action: block
    message: no
  - id: block-hate
    when: 'findings.exists(f, f.category == "hate" && f.flagged)'
    action: block
    message: no
"""


def _run(tmp_path: Path, cases: str) -> list[CaseResult]:
    (tmp_path / "mini.yaml").write_text(POLICY.replace("message: no", "message: blocked"))
    (tmp_path / "mini_test.yaml").write_text(textwrap.dedent(cases))
    return run_policy_tests(tmp_path / "mini_test.yaml")


def test_runner_reports_wrong_expectations_and_missing_coverage(tmp_path: Path) -> None:
    results = _run(
        tmp_path,
        """\
        - name: sexual blocks
          covers: block-sexual
          stage: prompt
          findings: [sexual]
          expect: {action: block, rule: block-sexual}
        - name: clean allowed
          covers: block-sexual
          stage: prompt
          findings: ["sexual:clean"]
          expect: {action: allow}
        - name: wrong expectation
          stage: output
          findings: [{category: hate, stage: prompt}]
          expect: {action: allow, rule: null}
        """,
    )

    by_name = {r.name: r for r in results}
    assert by_name["sexual blocks"].passed and by_name["clean allowed"].passed
    wrong = by_name["wrong expectation"]
    assert not wrong.passed
    assert (wrong.actual_action, wrong.actual_rule) == (Action.BLOCK, "block-hate")
    assert wrong.error and "expected allow" in wrong.error
    gap = by_name["coverage: block-hate"]
    assert not gap.passed and gap.error and "no case where it decides" in gap.error
    assert "coverage: block-sexual" not in by_name


def test_runner_rejects_unknown_rules_and_bad_findings(tmp_path: Path) -> None:
    results = _run(
        tmp_path,
        """\
        cases:
          - name: typo in rule id
            stage: prompt
            expect: {action: block, rule: block-sexaul}
          - name: bad finding
            stage: prompt
            findings: ["sexy:flagged"]
            expect: {action: allow}
        """,
    )

    by_name = {r.name: r for r in results}
    assert by_name["typo in rule id"].error == "unknown rule id(s): ['block-sexaul']"
    assert not by_name["bad finding"].passed
    assert "invalid finding" in (by_name["bad finding"].error or "")


def test_runner_raises_on_an_unreadable_test_file(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="not found"):
        run_policy_tests(tmp_path / "absent_test.yaml")
    (tmp_path / "bad_test.yaml").write_text("cases: [{name: x}]\n")
    with pytest.raises(PolicyError, match="invalid policy test file"):
        run_policy_tests(tmp_path / "bad_test.yaml")
