"""``genseal worker``: what it refuses before it starts, with a message and exit code 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.cli import app

runner = CliRunner()


def test_worker_needs_the_celery_backend(genseal_home: Path) -> None:
    result = runner.invoke(app, ["worker"])
    assert result.exit_code == 2
    assert "GENSEAL_JOB_BACKEND=celery" in result.stderr


def test_worker_refuses_a_model_it_cannot_load_offline(
    genseal_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GENSEAL_JOB_BACKEND", "celery")
    monkeypatch.setenv("HF_HUB_CACHE", str(genseal_home / "empty-cache"))
    result = runner.invoke(app, ["worker", "--model", "nobody/has-these-weights"])
    assert result.exit_code == 2
    assert "nobody/has-these-weights" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_worker_help_says_how_jobs_are_acknowledged() -> None:
    result = runner.invoke(app, ["worker", "--help"])
    assert result.exit_code == 0
    assert "--concurrency" in result.stdout and "--model" in result.stdout
    assert "acknowledge" in result.stdout
