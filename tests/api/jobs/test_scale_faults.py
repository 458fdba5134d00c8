"""Faults at scale, with real processes: ``genseal serve`` and ``genseal worker`` (celery job
backend) on a Redis server of the test's own and a PostgreSQL database reached through a proxy
that can cut it off.

Each test ends the same way: every accepted job completed exactly once as the client sees it
(one answer, one manifest and one ``released`` audit entry per delivered image) and the audit
chain verifies.
"""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from api.tenants._store import TenantStore
from tests._scale import (
    RedisServer,
    TcpProxy,
    api,
    free_port,
    genseal_env,
    kill_group,
    wait_ready,
    worker,
)
from tests.conftest import throwaway_postgres

pytestmark = pytest.mark.services

LONG = {"size": "256x256", "steps": 40, "seed": 5}  # seconds of generating: time to strike
SHORT = {"size": "256x256", "steps": 2}


@dataclass
class Scale:
    home: Path
    database_url: str  # through the proxy
    direct_url: str  # straight to PostgreSQL, for the test's own reads
    redis: RedisServer
    proxy: TcpProxy
    headers: dict[str, str]
    logs: Path

    def env(self, **extra: str) -> dict[str, str]:
        return genseal_env(self.home, self.database_url, self.redis.url, **extra)

    def log(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    def tail(self) -> str:
        return "\n".join(
            f"--- {path.name}\n{path.read_text(errors='replace')[-3000:]}"
            for path in sorted(self.logs.glob("*.log"))
        )


@pytest.fixture
def scale(tmp_path: Path) -> Iterator[Scale]:
    with throwaway_postgres() as direct:
        url = make_url(direct)
        proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
        proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        redis = RedisServer(tmp_path / "redis")
        redis.start()
        issued = TenantStore(direct).create("acme")
        logs = tmp_path / "logs"
        logs.mkdir()
        try:
            yield Scale(
                home=tmp_path / "home",
                database_url=proxied,
                direct_url=direct,
                redis=redis,
                proxy=proxy,
                headers={"Authorization": f"Bearer {issued.api_key}"},
                logs=logs,
            )
        finally:
            redis.stop()
            proxy.close()


def submit(url: str, s: Scale, prompt: str, fields: dict[str, Any]) -> str:
    answer = httpx.post(
        f"{url}/v1/images/generations",
        json={"prompt": prompt, **fields},
        headers={**s.headers, "Prefer": "respond-async"},
        timeout=30,
    )
    assert answer.status_code == 202, answer.text
    return str(answer.json()["id"])


def job(url: str, s: Scale, job_id: str) -> dict[str, Any]:
    answer = httpx.get(f"{url}/v1/jobs/{job_id}", headers=s.headers, timeout=30)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def wait_generating(url: str, s: Scale, job_id: str, *, before: float = 0.7) -> None:
    """Until the job is in the middle of generating (where a fault does the most harm)."""
    deadline = time.monotonic() + 180
    while True:
        state = job(url, s, job_id)
        if state["stage"] == "generating" and 0.1 < state["progress"] < before:
            return
        assert state["status"] in ("queued", "running"), (state, s.tail())
        assert time.monotonic() < deadline, (state, s.tail())
        time.sleep(0.05)


def wait_finished(url: str, s: Scale, job_ids: list[str], timeout: float = 240) -> list[Any]:
    deadline = time.monotonic() + timeout
    while True:
        states = [job(url, s, job_id) for job_id in job_ids]
        if all(state["status"] not in ("queued", "running") for state in states):
            return states
        assert time.monotonic() < deadline, ([st["status"] for st in states], s.tail())
        time.sleep(0.3)


def assert_exactly_once(
    url: str, s: Scale, finished: list[dict[str, Any]], also_delivered: tuple[str, ...] = ()
) -> None:
    """Every job succeeded once: one manifest and one released entry per delivered image,
    nothing else sealed, no job left running, and the audit chain verifies."""
    assert [state["status"] for state in finished] == ["succeeded"] * len(finished), s.tail()
    delivered = [image["manifest_id"] for state in finished for image in state["result"]["data"]]
    delivered += also_delivered
    assert len(set(delivered)) == len(delivered)

    engine = create_engine(s.direct_url)
    with engine.connect() as connection:
        released = connection.execute(
            text("SELECT manifest_id FROM genseal_audit WHERE event = 'released'")
        ).scalars()
        manifests = connection.execute(text("SELECT id FROM genseal_manifests")).scalars()
        released_ids, manifest_ids = sorted(released), sorted(manifests)
        unfinished = connection.execute(
            text("SELECT count(*) FROM genseal_jobs WHERE status IN ('queued', 'running')")
        ).scalar()
    engine.dispose()
    assert released_ids == sorted(delivered)
    assert manifest_ids == sorted(delivered)
    assert unfinished == 0

    sealed = base64.b64decode(finished[0]["result"]["data"][0]["b64_json"])
    report = httpx.post(f"{url}/v1/verify", files={"file": ("x.png", sealed)}, timeout=60).json()
    assert report["c2pa"]["state"] == "trusted"
    assert report["recovery"]["manifest_id"] == delivered[0]

    chain = subprocess.run(
        [sys.executable, "-c", "from api.cli import main; main()", "audit", "verify", "--json"],
        env=s.env(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert chain.returncode == 0, chain.stdout + chain.stderr


def test_a_worker_killed_mid_job_leaves_it_to_another_that_completes_it_once(
    scale: Scale,
) -> None:
    with api(scale.env(), scale.log("api")) as url:
        with worker(scale.env(), scale.log("worker-1")) as first:
            wait_ready(url)
            interrupted = submit(url, scale, "a harbour in fog", LONG)
            wait_generating(url, scale, interrupted)
            kill_group(first)  # kill -9, the worker and every process it forked
        # Accepted while no worker is alive (the registry still lists the dead one for a while).
        later = [submit(url, scale, f"a lighthouse, take {i}", SHORT) for i in range(2)]
        with worker(scale.env(), scale.log("worker-2")):
            finished = wait_finished(url, scale, [interrupted, *later])
        assert finished[0]["attempts"] == 2, finished[0]
        assert_exactly_once(url, scale, finished)
    assert "recovered interrupted jobs" in scale.log("api").read_text()


def test_jobs_queued_when_redis_restarts_are_not_lost(scale: Scale) -> None:
    import redis

    # Two processes, each with its own models and signer made after the fork.
    two = scale.env(GENSEAL_WORKER_CONCURRENCY="2")
    with api(scale.env(), scale.log("api")) as url, worker(two, scale.log("worker")):
        wait_ready(url)
        running = [submit(url, scale, f"a harbour in fog, take {i}", LONG) for i in range(2)]
        wait_generating(url, scale, running[0])
        wait_generating(url, scale, running[1], before=0.85)  # still generating, the two at once
        queued = [submit(url, scale, f"a lighthouse, take {i}", SHORT) for i in range(3)]
        broker = redis.Redis.from_url(scale.redis.url)
        assert broker.llen("genseal.model.tiny") == 3  # behind the two being generated
        broker.close()

        scale.redis.kill()  # kill -9: only the append-only file survives
        time.sleep(1)
        scale.redis.start()

        finished = wait_finished(url, scale, [*running, *queued])
        assert_exactly_once(url, scale, finished)
    engine = create_engine(scale.direct_url)
    with engine.connect() as connection:
        processes = connection.execute(text("SELECT DISTINCT worker FROM genseal_jobs")).scalars()
        assert len(set(processes)) == 2  # both processes sealed (each signer works)
    engine.dispose()


def test_postgresql_down_for_seconds_is_503_then_heals_by_itself(scale: Scale) -> None:
    with (
        api(scale.env(), scale.log("api")) as url,
        worker(scale.env(), scale.log("worker")),
    ):
        wait_ready(url)
        in_flight = submit(url, scale, "a harbour in fog", LONG)
        wait_generating(url, scale, in_flight)

        scale.proxy.cut()
        try:
            refused = httpx.post(
                f"{url}/v1/images/generations",
                json={"prompt": "a lighthouse", **SHORT},
                headers={**scale.headers, "Prefer": "respond-async"},
                timeout=60,
            )
            assert refused.status_code == 503, refused.text
            assert refused.headers["Retry-After"] == "5"
            error = refused.json()["error"]
            assert error["code"] == "store_unavailable"
            assert "database" in error["message"]
            assert httpx.get(f"{url}/readyz", timeout=60).status_code == 503
            time.sleep(4)
        finally:
            scale.proxy.restore()

        # No restart: the next requests find the database again.
        deadline = time.monotonic() + 60
        while True:
            answer = httpx.post(
                f"{url}/v1/images/generations",
                json={"prompt": "a lighthouse", **SHORT},
                headers=scale.headers,
                timeout=120,
            )
            if answer.status_code == 200:
                break
            assert answer.status_code == 503 and time.monotonic() < deadline, answer.text
            time.sleep(0.5)
        after = answer.json()["data"][0]["manifest_id"]

        [finished] = wait_finished(url, scale, [in_flight])
        assert_exactly_once(url, scale, [finished], also_delivered=(after,))
        engine = create_engine(scale.direct_url)
        with engine.connect() as connection:
            jobs = connection.execute(text("SELECT count(*) FROM genseal_jobs")).scalar()
        engine.dispose()
        assert jobs == 2  # the in-flight job and the one after; the refused one left nothing


def test_a_worker_process_killed_outright_is_replaced_and_runs_the_next_job(scale: Scale) -> None:
    port = free_port()
    metrics = f"http://127.0.0.1:{port}/metrics"
    with (
        api(scale.env(), scale.log("api")) as url,
        worker(scale.env(GENSEAL_WORKER_METRICS_PORT=str(port)), scale.log("worker")) as main,
    ):
        wait_ready(url)
        first = _wait_for_one_ready_child(main, metrics, exclude=None)
        os.kill(first, signal.SIGKILL)
        # The replacement loads its models before it reports ready; the pool must wait for
        # it rather than kill it after Celery's default 4 s.
        second = _wait_for_one_ready_child(main, metrics, exclude=first)
        assert second != first
        job_id = submit(url, scale, "a lighthouse after the storm", SHORT)
        finished = wait_finished(url, scale, [job_id])
        assert finished[0]["status"] == "succeeded", finished[0]


def _wait_for_one_ready_child(
    main: subprocess.Popen[bytes], metrics: str, *, exclude: int | None, timeout: float = 240
) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert main.poll() is None, "the worker exited"
        children = [pid for pid in _children(main.pid) if pid != exclude]
        try:
            body = httpx.get(metrics, timeout=5).text
        except httpx.TransportError:
            body = ""
        if len(children) == 1 and "genseal_worker_processes 1.0" in body:
            return children[0]
        time.sleep(0.5)
    raise AssertionError(f"no ready worker process within {timeout} s")


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with suppress(OSError):
            found += [int(p) for p in (task / "children").read_text().split()]
    return found
