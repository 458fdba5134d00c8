"""`genseal screen --prompt` on the hand-written regression set: exit codes, the decision's
harm category and message, and the classifier's version in the findings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.cli import app
from tests.safety.test_prompt_regression import regression_cases

runner = CliRunner()
EXIT = {"allow": 0, "flag": 0, "block": 3, "require_consent": 3}


@pytest.mark.parametrize(("group", "prompt", "action"), regression_cases())
def test_screen_decides_the_regression_set(
    genseal_home: Path, group: str, prompt: str, action: str
) -> None:
    result = runner.invoke(app, ["screen", "--prompt", prompt, "--json"])

    assert result.exit_code == EXIT[action], result.stderr
    payload = json.loads(result.stdout)
    decision = payload["decision"]
    if group == "benign":
        assert decision["action"] in ("allow", "flag")
    else:
        assert decision["action"] == action
    if group != "benign":
        assert decision["category"] == group and decision["message"]
    versions = {f["check"]: f["check_version"] for f in payload["findings"]}
    assert "genseal-prompt-classifier" in versions["prompt_classifier"]


def test_screen_prints_the_category_for_people(genseal_home: Path) -> None:
    result = runner.invoke(
        app, ["screen", "--prompt", "a decapitated soldier on the battlefield, blood everywhere"]
    )

    assert result.exit_code == 3
    assert "block (violence)" in result.stdout
    assert "graphic" in result.stdout


def test_a_prompt_longer_than_generation_accepts_is_refused_before_any_check(
    genseal_home: Path,
) -> None:
    result = runner.invoke(app, ["screen", "--prompt", "a red fox " * 30_000])
    assert result.exit_code == 2
    assert "at most 2000 are accepted" in result.stderr
