"""How the service carries an input decision over to the decisions on its outputs."""

from __future__ import annotations

from typing import Any

import pytest

from gen._decisions import carry
from safety import Action, Decision, Policy, Stage, default_policy_path


@pytest.fixture(scope="module")
def policy() -> Policy:
    return Policy.load(default_policy_path())


def _decision(action: Action, stage: Stage, **fields: Any) -> Decision:
    return Decision(
        action=action,
        stage=stage,
        rule=fields.pop("rule", None),
        policy_id="default",
        policy_version="1",
        policy_sha256="0" * 64,
        **fields,
    )


def test_the_consent_an_input_needed_is_listed_on_its_outputs(policy: Policy) -> None:
    consented = _decision(
        Action.ALLOW, Stage.INPUT, consent_satisfied=["require-consent-real-person"]
    )
    output = _decision(Action.FLAG, Stage.OUTPUT, rule="note-output", consent_satisfied=["x"])
    carried = carry(policy, consented, output)
    assert carried.consent_satisfied == ["require-consent-real-person", "x"]
    assert (carried.action, carried.rule, carried.stage) == (
        Action.FLAG,
        "note-output",
        Stage.OUTPUT,
    )

    both = output.model_copy(update={"consent_satisfied": ["require-consent-real-person"]})
    assert carry(policy, consented, both).consent_satisfied == ["require-consent-real-person"]


def test_without_consent_the_output_decision_is_kept_as_it_is(policy: Policy) -> None:
    output = _decision(Action.ALLOW, Stage.OUTPUT)
    assert carry(policy, _decision(Action.ALLOW, Stage.INPUT), output) is output


def test_a_review_of_the_input_still_wins_over_a_weaker_output_decision(policy: Policy) -> None:
    review = _decision(
        Action.REVIEW, Stage.INPUT, rule="review-input", consent_satisfied=["consent-rule"]
    )
    assert carry(policy, review, _decision(Action.ALLOW, Stage.OUTPUT)) is review
    block = _decision(Action.BLOCK, Stage.OUTPUT, rule="block-output", message="no")
    carried = carry(policy, review, block)
    assert carried.action is Action.BLOCK and carried.consent_satisfied == ["consent-rule"]
