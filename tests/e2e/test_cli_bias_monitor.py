"""``genseal bias-monitor``: opt-in, status and summaries, with --json and exit codes."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.cli import app
from genseal.settings import Settings
from safety import BiasMonitor

runner = CliRunner()
FEMALE = {"gender": {"female": 0.9, "male": 0.1}}
MALE = {"gender": {"female": 0.2, "male": 0.8}}


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["bias-monitor", *args])
    return result.exit_code, result.stdout, result.stderr


def _monitor(home: Path) -> BiasMonitor:
    return BiasMonitor(Settings(home=home).store_url)


def _baseline(path: Path, female: float = 0.5) -> Path:
    metrics = {"gender": {"proportions": {"female": female, "male": 1 - female}}}
    path.write_text(json.dumps({"overall": {"metrics": metrics}}))
    return path


def test_enable_status_disable(genseal_home: Path) -> None:
    code, stdout, stderr = invoke("enable", "acme", "--json")
    assert code == 0, stderr
    state = json.loads(stdout)
    assert state["tenant"] == "acme" and state["enabled"] is True
    assert "no tenant 'acme' in the tenant table" in stderr
    code, stdout, _ = invoke("enable", "-")
    assert code == 0 and "bias monitoring on for -" in stdout

    monitor = _monitor(genseal_home)
    for i in range(5):
        monitor.record_distributions("acme", None if i == 0 else FEMALE)
    code, stdout, _ = invoke("status", "--json")
    assert code == 0
    rows = json.loads(stdout)
    assert [(r["tenant"], r["images_30d"], r["no_face_30d"]) for r in rows] == [
        (None, 0, 0),
        ("acme", 5, 1),
    ]
    code, stdout, _ = invoke("status")
    assert code == 0 and "acme" in stdout and "images (30 d)" in stdout

    code, stdout, _ = invoke("disable", "acme")
    assert code == 0 and "bias monitoring off for acme; counts kept" in stdout
    code, stdout, _ = invoke("disable", "acme", "--purge", "--json")
    assert code == 0
    assert json.loads(stdout) == {
        "tenant": "acme",
        "enabled": False,
        "enabled_at": None,
        "was_enabled": False,
        "purged": True,
    }
    assert monitor.summary("acme").images == 0
    code, stdout, _ = invoke("status", "--json")
    assert [r["tenant"] for r in json.loads(stdout)] == [None]


def test_summary_with_a_baseline(genseal_home: Path, tmp_path: Path) -> None:
    invoke("enable", "acme")
    monitor = _monitor(genseal_home)
    for i in range(40):
        monitor.record_distributions("acme", FEMALE if i % 5 else MALE)
    monitor.record_distributions("acme", FEMALE, at=dt.datetime.now(dt.UTC) - dt.timedelta(days=9))

    baseline = _baseline(tmp_path / "results.json")
    code, stdout, stderr = invoke("summary", "acme", "--baseline", str(baseline), "--json")
    assert code == 0, stderr
    body = json.loads(stdout)
    assert body["images"] == 41 and body["window"]["days"] == 30
    assert body["attributes"]["gender"]["drift"]["flagged"] and body["drift"]

    code, stdout, _ = invoke("summary", "acme", "--days", "7", "--json")
    body = json.loads(stdout)
    assert body["images"] == 40 and body["baseline"] is None and not body["drift"]

    code, stdout, _ = invoke("summary", "acme", "--baseline", str(baseline))
    assert code == 0
    assert "acme" in stdout and "41 images" in stdout and "DRIFT" in stdout
    assert "80.5%" in stdout  # 33 of 41 women
    code, stdout, _ = invoke("summary", "acme")
    assert code == 0 and "no baseline" in stdout


def test_summary_reads_the_baseline_setting(
    genseal_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GENSEAL_BIAS_BASELINE", str(_baseline(tmp_path / "r.json", 0.8)))
    code, stdout, _ = invoke("summary", "-", "--json")
    assert code == 0
    body = json.loads(stdout)
    assert body["tenant"] is None and body["enabled"] is False
    assert body["baseline"] == "r.json"
    monkeypatch.setenv("GENSEAL_BIAS_BASELINE", str(tmp_path / "gone.json"))
    code, _, stderr = invoke("summary")
    assert code == 2 and "GENSEAL_BIAS_BASELINE" in stderr and "does not exist" in stderr


def test_bad_input_exits_2_with_a_message(genseal_home: Path, tmp_path: Path) -> None:
    code, _, stderr = invoke("enable", "Not A Tenant")
    assert code == 2 and "invalid tenant name" in stderr
    code, _, stderr = invoke("summary", "acme", "--baseline", str(tmp_path / "nowhere.json"))
    assert code == 2 and "does not exist" in stderr and "Traceback" not in stderr
    (tmp_path / "bad.json").write_text("{")
    code, _, stderr = invoke("summary", "acme", "--baseline", str(tmp_path / "bad.json"))
    assert code == 2 and "not JSON" in stderr
    code, _, _ = invoke("summary", "acme", "--days", "0")
    assert code == 2
    code, _, _ = invoke("summary", "acme", "--days", "367")
    assert code == 2
