"""The deployment files stay true to the code: compose.yaml and the Dockerfile name settings
that exist and commands that run."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from genseal.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def _compose() -> dict[str, Any]:
    loaded = yaml.safe_load((ROOT / "compose.yaml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def _genseal_commands(service: dict[str, Any]) -> list[list[str]]:
    command = service.get("command", [])
    if command[:2] == ["sh", "-c"]:
        parts = [shlex.split(p) for p in command[2].replace("||", ";").split(";")]
        return [p for p in parts if p and p[0] == "genseal"]
    return [command] if command and command[0] == "genseal" else []


def test_every_setting_the_compose_file_sets_exists() -> None:
    fields = set(Settings.model_fields)
    for name, service in _compose()["services"].items():
        for variable in service.get("environment", {}):
            if variable.startswith("GENSEAL_"):
                assert variable.removeprefix("GENSEAL_").lower() in fields, (name, variable)


def test_every_genseal_command_in_the_compose_file_exists() -> None:
    services = _compose()["services"]
    commands = [c for service in services.values() for c in _genseal_commands(service)]
    assert {c[1] for c in commands} >= {"serve", "worker", "db"}
    for command in commands:
        # The command and its options, up to the first option value, accept --help.
        words = [w for w in command[1:] if not w.startswith("-") and not w.isdigit()]
        done = subprocess.run(
            [sys.executable, "-c", "from api.cli import main; main()", *words[:2], "--help"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, (command, done.stderr)
        for option in (w for w in command if w.startswith("--")):
            assert option in done.stdout, (command, option)


def test_the_dockerfile_installs_the_scale_extra_and_every_package() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert '".[scale]"' in dockerfile
    for package in ("genseal", "gen", "safety", "provenance", "api", "policies"):
        assert f"COPY {package} ./{package}" in dockerfile


def test_the_dockerfile_installs_the_torch_genseal_pins_from_pytorch_s_index() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    pins = re.findall(r'"(torch(?:vision)?==[^"]+)"', (ROOT / "pyproject.toml").read_text())
    assert len(pins) == 2
    for pin in pins:
        assert pin in dockerfile, pin
    assert "ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu" in dockerfile
