"""Settings: one flat object of groups by concern, every variable read through it."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError
from typer.testing import CliRunner

from api.cli import app
from genseal import settings as settings_module
from genseal.settings import LogSettings, Settings

GROUPS = [
    getattr(settings_module, name)
    for name in settings_module.__all__
    if name.endswith("Settings") and name != "Settings"
]


def test_every_field_belongs_to_exactly_one_group() -> None:
    owners: dict[str, list[str]] = {}
    for group in GROUPS:
        assert issubclass(group, BaseModel)
        for field in group.model_fields:
            owners.setdefault(field, []).append(group.__name__)
    assert set(owners) == set(Settings.model_fields)
    assert {field: groups for field, groups in owners.items() if len(groups) > 1} == {}


def test_variables_keep_their_flat_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GENSEAL_JOB_MAX_ATTEMPTS", "5")
    monkeypatch.setenv("GENSEAL_SIGNING_ALG", "ES384")
    monkeypatch.setenv("GENSEAL_LOG_LEVEL", "debug")
    settings = Settings()
    assert (settings.job_max_attempts, settings.signing_alg) == (5, "ES384")
    assert settings.log_level == "debug"


def test_an_unknown_log_level_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GENSEAL_LOG_LEVEL", "chatty")
    with pytest.raises(ValidationError, match="unknown log level"):
        LogSettings()
    result = CliRunner().invoke(app, ["policy", "show"])
    assert result.exit_code == 2
    assert "unknown log level 'chatty'" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
