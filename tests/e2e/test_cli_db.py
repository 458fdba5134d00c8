"""``genseal db``: upgrade, current (exit 1 when behind), history; clear errors, no tracebacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import genseal.db
from api.cli import app
from genseal.settings import Settings
from provenance import ManifestStore

runner = CliRunner()


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["db", *args])
    return result.exit_code, result.stdout, result.stderr


def _genseal(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The installed `genseal` entry point, beside this interpreter."""
    command = Path(sys.executable).with_name("genseal")
    return subprocess.run(
        [str(command), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=120,
        check=False,
    )


def test_current_upgrade_current_through_the_entry_point(genseal_home: Path) -> None:
    env = {"GENSEAL_HOME": str(genseal_home)}
    behind = _genseal("db", "current", env=env)
    assert behind.returncode == 1, behind.stderr
    assert "none (empty, or made before migrations)" in behind.stdout
    assert "run `genseal db upgrade`" in behind.stderr
    assert "Traceback" not in behind.stderr

    upgraded = _genseal("db", "upgrade", "--json", env=env)
    assert upgraded.returncode == 0, upgraded.stderr
    report = json.loads(upgraded.stdout)
    assert report["from"] is None and report["to"] == report["head"] == genseal.db.head()
    assert report["upgraded"] is True
    assert report["database"] == Settings(home=genseal_home).store_url

    at_head = _genseal("db", "current", "--json", env=env)
    assert at_head.returncode == 0, at_head.stderr
    assert json.loads(at_head.stdout) == {
        "database": Settings(home=genseal_home).store_url,
        "current": genseal.db.head(),
        "head": genseal.db.head(),
        "at_head": True,
    }


def test_upgrade_twice_and_json(genseal_home: Path) -> None:
    code, stdout, stderr = invoke("current", "--json")
    assert code == 1
    assert json.loads(stdout)["current"] is None and json.loads(stdout)["at_head"] is False
    assert "genseal db upgrade" in stderr

    code, stdout, _ = invoke("upgrade")
    assert code == 0 and f"to {genseal.db.head()} (head)" in stdout
    code, stdout, _ = invoke("upgrade", "--json")
    assert code == 0 and json.loads(stdout)["upgraded"] is False
    code, stdout, _ = invoke("upgrade")
    assert code == 0 and "is already at revision" in stdout
    code, stdout, _ = invoke("current")
    assert code == 0 and f"revision: {genseal.db.head()} (head)" in stdout
    # The upgraded database is the one the components use.
    store = ManifestStore(Settings(home=genseal_home).store_url, auto_upgrade=False)
    try:
        assert store.verify_audit_chain()
    finally:
        store.close()


def test_upgrade_to_a_named_revision(genseal_home: Path) -> None:
    first = genseal.db.history()[-1].revision
    code, stdout, stderr = invoke("upgrade", "--revision", first, "--json")
    assert code == 0, stderr
    assert json.loads(stdout)["to"] == first
    code, _, stderr = invoke("upgrade", "--revision", "nope")
    assert code == 2 and "no schema revision 'nope'" in stderr and "genseal db history" in stderr


def test_history(genseal_home: Path) -> None:
    code, stdout, _ = invoke("history", "--json")
    assert code == 0
    revisions = json.loads(stdout)
    assert revisions[0]["revision"] == genseal.db.head() and revisions[0]["head"] is True
    assert revisions[-1]["down_revision"] is None
    assert revisions[-1]["message"].startswith("Baseline")
    code, stdout, _ = invoke("history")
    assert code == 0 and f"<base> -> {revisions[-1]['revision']}" in stdout


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("not a url", "invalid database URL"),
        (
            "postgresql+psycopg://genseal@127.0.0.1:1/genseal",
            "cannot read the schema revision of the database at",
        ),
    ],
)
@pytest.mark.parametrize("command", ["current", "upgrade"])
def test_a_bad_or_unreachable_database_is_a_message_not_a_traceback(
    genseal_home: Path, monkeypatch: pytest.MonkeyPatch, url: str, message: str, command: str
) -> None:
    pytest.importorskip("psycopg")
    monkeypatch.setenv("GENSEAL_DATABASE_URL", url)
    code, stdout, stderr = invoke(command)
    assert code == 1
    assert message in stderr and "Traceback" not in stderr + stdout


def test_a_postgresql_database(genseal_home: Path, pg_url: str) -> None:
    env = {"GENSEAL_DATABASE_URL": pg_url}
    behind = _genseal("db", "current", env=env)
    assert behind.returncode == 1 and "genseal db upgrade" in behind.stderr
    assert _genseal("db", "upgrade", env=env).returncode == 0
    assert _genseal("db", "current", env=env).returncode == 0
    assert genseal.db.current(pg_url) == genseal.db.head()
