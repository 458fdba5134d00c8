"""``genseal serve`` as a process: its stderr carries JSON log lines only, uvicorn's included."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.conftest import _free_port

ROOT = Path(__file__).resolve().parents[2]


def _serve_and_stop(extra_env: dict[str, str]) -> tuple[list[dict[str, Any]], str]:
    """Start `genseal serve`, GET /healthz once it answers, stop it with SIGTERM; its stderr
    lines (each parsed as JSON: a line that is not fails the test) and its stdout."""
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-c", "from api.cli import main; main()", "serve", "--port", str(port)],
        cwd=ROOT,
        env={**os.environ, **extra_env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, process.communicate()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
                    assert r.status == 200
                    break
            except (urllib.error.URLError, ConnectionError):
                assert time.monotonic() < deadline, "genseal serve did not answer /healthz"
                time.sleep(0.25)
        process.terminate()
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    # uvicorn shuts down gracefully, then re-raises the signal it caught.
    assert process.returncode in (0, -signal.SIGTERM), stderr
    lines = []
    for line in stderr.splitlines():
        try:
            lines.append(json.loads(line))
        except json.JSONDecodeError:
            pytest.fail(f"not a JSON log line on stderr: {line!r}")
    return lines, stdout


def test_every_stderr_line_is_json_uvicorn_included(genseal_home: Path) -> None:
    logs, stdout = _serve_and_stop({})
    assert stdout == ""  # the access log no longer goes there
    assert all({"event", "level", "timestamp"} <= set(entry) for entry in logs)
    # A first start creates the development identity: said in a log line, not in prose.
    assert any(e["event"].startswith("created a development signing identity") for e in logs)
    uvicorn = [e["event"] for e in logs if e.get("logger") == "uvicorn.error"]
    assert any("Uvicorn running" in event for event in uvicorn)
    assert any("Finished server process" in event for event in uvicorn)
    [request] = [e for e in logs if e.get("logger") == "uvicorn.access"]
    assert request["path"] == "/healthz" and request["status"] == 200
    assert request["method"] == "GET" and request["level"] == "info"


def test_the_log_level_applies_to_uvicorn_too(genseal_home: Path) -> None:
    logs, _ = _serve_and_stop({"GENSEAL_LOG_LEVEL": "warning"})
    assert {entry["level"] for entry in logs} <= {"warning", "error", "critical"}
    assert not any(entry.get("logger", "").startswith("uvicorn") for entry in logs)


@pytest.mark.parametrize(
    ("trusted", "expected"), [([], [200, 200, 429]), (["127.0.0.1"], [200, 200, 200])]
)
def test_forwarded_addresses_count_only_from_trusted_proxies(
    tmp_path: Path, trusted: list[str], expected: list[int]
) -> None:
    from tests._media import photo
    from tests._scale import serve

    env = {
        **os.environ,
        "GENSEAL_HOME": str(tmp_path / "home"),
        "GENSEAL_VERIFY_RATE_LIMIT": "2/minute",
        "GENSEAL_TRUSTED_PROXIES": json.dumps(trusted),
    }
    image = photo(size=64)
    with serve(env, tmp_path / "serve.log") as (url, _):
        codes = [
            httpx.post(
                f"{url}/v1/verify",
                files={"file": ("x.png", image, "image/png")},
                # Each from "another client": believed only from a trusted proxy.
                headers={"X-Forwarded-For": f"203.0.113.{i}"},
                timeout=60,
            ).status_code
            for i in range(3)
        ]
    assert codes == expected
