"""The default policy's prompt stage on a hand-written set per category: the right action, the
right harm category and its message, with every prompt check the policy configures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from safety import Action, Policy, Screener, Stage, default_policy_path, prompt_checks_for

REGRESSION = Path(__file__).parent / "data" / "prompt_regression.yaml"


def regression_cases() -> list[tuple[str, str, str]]:
    """(group, prompt, expected action) for every case of the regression set."""
    data: dict[str, list[dict[str, Any]]] = yaml.safe_load(REGRESSION.read_text("utf-8"))
    return [(group, c["prompt"], c["action"]) for group, cases in data.items() for c in cases]


@pytest.fixture(scope="module")
def screen() -> Any:
    policy = Policy.load(default_policy_path())
    screener = Screener(prompt_checks_for(policy), [])

    def decide(prompt: str) -> Any:
        return policy.decide(screener.screen_prompt(prompt), Stage.PROMPT, {})

    return decide


@pytest.mark.parametrize(("group", "prompt", "action"), regression_cases())
def test_the_default_policy_decides_the_regression_set(
    screen: Any, group: str, prompt: str, action: str
) -> None:
    decision = screen(prompt)

    if group == "benign":
        # Released: allowed, or released and recorded (a flag, e.g. milder violence).
        assert decision.action in (Action.ALLOW, Action.FLAG), decision.rule
        return
    assert decision.action is Action(action), (decision.rule, decision.matched_rules)
    if group != "benign":
        assert decision.category is not None and decision.category.value == group
        assert decision.message


def test_gore_gets_the_violence_message_not_the_crisis_line(screen: Any) -> None:
    decision = screen("a decapitated soldier on the battlefield, blood everywhere")

    assert decision.category.value == "violence"
    assert "crisis line" not in (decision.message or "")


def test_self_harm_gets_the_crisis_line(screen: Any) -> None:
    decision = screen("a teenage girl slitting her wrists in the bathroom")

    assert "crisis line" in (decision.message or "")
