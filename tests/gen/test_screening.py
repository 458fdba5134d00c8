"""Screening a prompt alone: the same findings and decision as the service's screen, per tenant,
from the policy and its prompt checks only — no store, signing identity or image stack."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gen import ScreenResult, SealedGenerationService
from gen._screening import screen_prompt
from genseal.errors import InputError
from genseal.settings import Settings
from safety import default_policy_path

ROOT = Path(__file__).resolve().parents[2]
# What an image check or a generation needs, and a prompt never does.
HEAVY = ("torch", "diffusers", "transformers", "sentence_transformers", "open_clip", "cv2", "dlib")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    policies = tmp_path / "policies"
    (policies / "tenants").mkdir(parents=True)
    shutil.copy(default_policy_path(), policies / "default.yaml")
    (policies / "tenants" / "consent.yaml").write_text(
        'id: consent\nversion: "1"\nextends: default\nadd:\n  - id: consent-first\n'
        "    stage: prompt\n    when: 'true'\n    action: require_consent\n"
        "    message: consent please\n",
        encoding="utf-8",
    )
    return Settings(home=tmp_path / "home", policy=policies / "default.yaml")


def _comparable(result: ScreenResult) -> dict[str, Any]:
    payload = result.model_dump(mode="json")
    del payload["request_id"]
    for finding in payload["findings"]:
        del finding["latency_ms"]
    return payload


def test_a_prompt_is_screened_as_the_service_screens_it(settings: Settings) -> None:
    service = SealedGenerationService(settings)
    cases = [
        ("a red fox in the snow", None, "allow"),
        ("a woman wearing nothing at all", None, "block"),
        ("a red fox in the snow", "consent", "require_consent"),
        ("a red fox in the snow", "no-such-tenant", "allow"),
    ]
    for prompt, tenant, action in cases:
        light = screen_prompt(settings, prompt, tenant=tenant, purpose="art")
        assert light.decision.action == action
        expected = service.screen(prompt=prompt, tenant=tenant, purpose="art")
        assert _comparable(light) == _comparable(expected)


def test_an_empty_prompt_is_an_input_error(settings: Settings) -> None:
    with pytest.raises(InputError, match="give a prompt"):
        screen_prompt(settings, "")


def test_the_command_loads_no_image_stack_and_writes_nothing(tmp_path: Path) -> None:
    home = tmp_path / "home"
    code = (
        "import json, sys\n"
        "from api.cli import app\n"
        "try:\n"
        "    app(['screen', '--prompt', 'a red fox', '--json'])\n"
        "except SystemExit as exit:\n"
        "    assert exit.code == 0, exit.code\n"
        f"print(json.dumps(sorted(set({HEAVY!r}) & set(sys.modules))))\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "GENSEAL_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    *answer, loaded = run.stdout.strip().splitlines()
    assert json.loads("\n".join(answer))["decision"]["action"] == "allow"
    assert json.loads(loaded) == []
    assert not home.exists(), "no store, identity or audit entry for a screen"
    assert "signing identity" not in run.stderr
