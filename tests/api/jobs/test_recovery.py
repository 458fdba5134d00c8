"""A job survives its server being killed mid-generation: real processes, kill -9, restart.

The same run checks that the signing key never leaves the key files: not in any log line of
either process, nor in any response.
"""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from api.tenants._store import TenantStore
from genseal.settings import Settings
from tests._scale import serve


@contextmanager
def genseal_serve(home: Path, log: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    env = {
        **os.environ,
        "GENSEAL_HOME": str(home),
        # Short, so that a killed server's job is requeued soon after the restart; long enough
        # that a heartbeat delayed on a loaded 2-core machine does not hand a live job on.
        "GENSEAL_JOB_LEASE_SECONDS": "8",
        "GENSEAL_LOG_LEVEL": "debug",
    }
    with serve(env, log) as running:
        yield running


def test_a_job_running_when_its_server_is_killed_completes_after_restart(tmp_path: Path) -> None:
    home, log = tmp_path / "home", tmp_path / "server.log"
    issued = TenantStore(Settings(home=home).store_url).create("acme")
    headers = {"Authorization": f"Bearer {issued.api_key}"}
    responses: list[bytes] = []

    with genseal_serve(home, log) as (url, process):
        accepted = httpx.post(
            f"{url}/v1/images/generations",
            # Enough steps that the kill lands in the middle of generating.
            json={"prompt": "a harbour in fog", "size": "256x256", "steps": 40, "seed": 5},
            headers={**headers, "Prefer": "respond-async"},
        )
        assert accepted.status_code == 202
        job_id = accepted.json()["id"]
        deadline = time.monotonic() + 120
        while True:
            job = httpx.get(f"{url}/v1/jobs/{job_id}", headers=headers).json()
            if job["stage"] == "generating" and 0.1 < job["progress"] < 0.7:
                break
            assert job["status"] in ("queued", "running"), (job, log.read_text()[-4000:])
            assert time.monotonic() < deadline, job
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.wait(10)

    with genseal_serve(home, log) as (url, _):
        deadline = time.monotonic() + 300
        while True:
            answer = httpx.get(f"{url}/v1/jobs/{job_id}", headers=headers)
            responses.append(answer.content)
            job = answer.json()
            if job["status"] not in ("queued", "running"):
                break
            assert time.monotonic() < deadline, job
            time.sleep(0.2)
        assert job["status"] == "succeeded", job
        assert job["attempts"] == 2
        [image] = job["result"]["data"]
        sealed = base64.b64decode(image["b64_json"])
        report = httpx.post(f"{url}/v1/verify", files={"file": ("x.png", sealed)})
        responses.append(report.content)
        assert report.json()["c2pa"]["state"] == "trusted"
        audit = httpx.get(f"{url}/v1/audit?limit=500", headers=headers)
        responses.append(audit.content)
        released = [e for e in audit.json()["data"] if e["event"] == "released"]
        assert [e["manifest_id"] for e in released] == [image["manifest_id"]]  # exactly once

    chain = subprocess.run(
        [sys.executable, "-c", "from api.cli import main; main()", "audit", "verify", "--json"],
        env={**os.environ, "GENSEAL_HOME": str(home)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert chain.returncode == 0, chain.stdout + chain.stderr

    logs = log.read_bytes()
    assert b"recovered interrupted jobs" in logs
    for secret in _key_material(home / "keys"):
        assert secret not in logs
        assert all(secret not in body for body in responses)


def _key_material(keys: Path) -> list[bytes]:
    """Every base64 line of every private key file (a leak would show at least one)."""
    found: list[bytes] = []
    for path in keys.glob("*.key"):
        text: Any = path.read_bytes()
        lines = [line for line in text.splitlines() if line and not line.startswith(b"-----")]
        assert lines, path
        found += [line for line in lines if len(line) >= 16]
    assert found
    return found
