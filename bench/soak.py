"""A soak of a real ``genseal serve`` under load and under attack at once.

    python -m bench.soak [--runs SECONDS]      or      genseal bench soak --runs 60 --json

``runs`` is the seconds of load (default 20; the hardening target is 60). At once, for that long:

- ``--clients`` (32) generating clients of tenant ``acme``, each submitting an asynchronous
  generation (tiny, 256², 2 steps) with a webhook to a well-behaved receiver, waiting for it to
  finish, and starting the next (closed loop, so the queue stays bounded);
- tenant ``slowpoke``: 4 clients doing the same with a webhook to a receiver that answers its
  status line and then trickles a byte every two seconds;
- one slow reader: a connection that asks for the OpenAPI document and reads it a byte a second;
- a flood of ``/v1/verify`` (16 concurrent senders, no key) against the real per-address limit
  (``GENSEAL_VERIFY_RATE_LIMIT``, 120/minute here): answers are 200 or 429, never 5xx.

Then every accepted job is drained (bounded), and the report says: ``server_errors`` (5xx and
dropped connections; 0 when healthy), ``jobs_lost`` (accepted, never terminal), the webhook
latency of the well-behaved tenant from each job's end to its delivery (``acme_webhook_p99_ms``:
what the trickling receiver must not stretch), how the flood was answered, and the server's
peak resident memory (``VmHWM``).
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import json
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from bench._harness import machine
from bench.load import Server, genseal_serve, percentile

_TERMINAL = frozenset({"succeeded", "blocked", "failed"})
_JOB = {"prompt": "a ceramic figurine of a fox", "size": "256x256", "steps": 2}
_VERIFY_LIMIT = "120/minute"


def run(runs: int = 20, *, clients: int = 32, drain_seconds: float = 300.0) -> dict[str, Any]:
    return soak(clients=clients, seconds=float(runs), drain_seconds=drain_seconds)


@dataclass
class _Tally:
    statuses: collections.Counter[str] = field(default_factory=collections.Counter)
    verify_statuses: collections.Counter[str] = field(default_factory=collections.Counter)
    jobs: dict[str, str] = field(default_factory=dict)  # job id → tenant
    transport_errors: int = 0

    def answered(self, status: int) -> None:
        self.statuses[str(status)] += 1


def soak(
    *, clients: int = 32, seconds: float = 60.0, drain_seconds: float = 300.0
) -> dict[str, Any]:
    from api.tenants import TenantStore
    from genseal.settings import Settings

    workdir = Path(tempfile.mkdtemp(prefix="genseal-soak-"))
    env = {
        "GENSEAL_WEBHOOK_ALLOW_PRIVATE": "true",
        "GENSEAL_WEBHOOK_PORTS": "[]",
        "GENSEAL_VERIFY_RATE_LIMIT": _VERIFY_LIMIT,
    }
    with (
        _receiver() as (fast_url, arrivals),
        _trickler() as slow_url,
        genseal_serve(workdir, extra_env=env) as server,
    ):
        slowpoke = TenantStore(Settings(home=server.home).store_url).create("slowpoke")
        keys = {"acme": server.api_key, "slowpoke": slowpoke.api_key}
        tally, elapsed = asyncio.run(_attack(server, keys, clients, seconds, fast_url, slow_url))
        finished = asyncio.run(_drain(server, keys, tally.jobs, drain_seconds))
        _await_webhooks(arrivals, finished, tally.jobs, timeout=60.0)
        peak_mb = _peak_memory_mb(server.process.pid)
    acme_jobs = [job for job, tenant in tally.jobs.items() if tenant == "acme"]
    lags = [
        (arrivals[job] - finished[job][1]) * 1000
        for job in acme_jobs
        if job in arrivals and finished.get(job, ("", None))[1] is not None
    ]
    lost = sum(1 for job in tally.jobs if finished.get(job, ("unseen", None))[0] not in _TERMINAL)
    server_errors = sum(n for status, n in tally.statuses.items() if status.startswith("5"))
    return {
        "name": "soak",
        "runs": len(lags),
        "median_ms": round(statistics.median(lags), 1) if lags else 0.0,
        "p90_ms": round(percentile(lags, 90), 1),
        "headline_is": "acme's webhook latency, from each job's end to its delivery",
        "acme_webhook_p99_ms": round(percentile(lags, 99), 1),
        "acme_webhooks_delivered": f"{len(lags)}/{len(acme_jobs)}",
        "clients": clients,
        "seconds": seconds,
        "elapsed_s": round(elapsed, 1),
        "server_errors": server_errors + tally.transport_errors,
        "transport_errors": tally.transport_errors,
        "status_counts": dict(sorted(tally.statuses.items())),
        "verify_flood_statuses": dict(sorted(tally.verify_statuses.items())),
        "jobs_accepted": len(tally.jobs),
        "jobs_lost": lost,
        "server_peak_memory_mb": peak_mb,
        "machine": machine(),
    }


# -- the actors ----------------------------------------------------------------------------------


async def _attack(
    server: Server,
    keys: dict[str, str],
    clients: int,
    seconds: float,
    fast_url: str,
    slow_url: str,
) -> tuple[_Tally, float]:
    tally = _Tally()
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=clients + 32)
    async with httpx.AsyncClient(base_url=server.url, timeout=300, limits=limits) as http:
        sealed = await _sealed_png(http, keys["acme"])
        actors = [
            *(_generator(http, keys["acme"], fast_url, deadline, tally) for _ in range(clients)),
            *(_generator(http, keys["slowpoke"], slow_url, deadline, tally) for _ in range(4)),
            *(_verifier(http, sealed, deadline, tally) for _ in range(16)),
            _slow_reader(server.url, deadline),
        ]
        started = time.monotonic()
        await asyncio.gather(*actors)
    return tally, time.monotonic() - started


async def _generator(
    http: httpx.AsyncClient, key: str, webhook: str, deadline: float, tally: _Tally
) -> None:
    headers = {"Authorization": f"Bearer {key}", "Prefer": "respond-async"}
    tenant = "slowpoke" if webhook.endswith("/slow") else "acme"
    while time.monotonic() < deadline:
        try:
            answer = await http.post(
                "/v1/images/generations", json={**_JOB, "webhook": webhook}, headers=headers
            )
        except httpx.TransportError:
            tally.transport_errors += 1
            continue
        tally.answered(answer.status_code)
        if answer.status_code != 202:
            await asyncio.sleep(0.5)
            continue
        job_id = answer.json()["id"]
        tally.jobs[job_id] = tenant
        while time.monotonic() < deadline + 300:
            await asyncio.sleep(0.5)
            state = await http.get(f"/v1/jobs/{job_id}", headers={"Authorization": f"Bearer {key}"})
            if state.status_code != 200 or state.json()["status"] in _TERMINAL:
                break


async def _verifier(http: httpx.AsyncClient, image: bytes, deadline: float, tally: _Tally) -> None:
    while time.monotonic() < deadline:
        try:
            answer = await http.post("/v1/verify", files={"file": ("x.png", image, "image/png")})
        except httpx.TransportError:
            tally.transport_errors += 1
            continue
        tally.answered(answer.status_code)
        tally.verify_statuses[str(answer.status_code)] += 1
        if answer.status_code == 429:
            await asyncio.sleep(0.2)


async def _slow_reader(url: str, deadline: float) -> None:
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"GET /openapi.json HTTP/1.1\r\nHost: soak\r\nConnection: close\r\n\r\n")
    await writer.drain()
    with suppress(OSError, asyncio.IncompleteReadError):
        while time.monotonic() < deadline and await reader.read(1):
            await asyncio.sleep(1.0)
    writer.close()


async def _sealed_png(http: httpx.AsyncClient, key: str) -> bytes:
    import base64

    answer = await http.post(
        "/v1/images/generations", json=_JOB, headers={"Authorization": f"Bearer {key}"}
    )
    answer.raise_for_status()
    return base64.b64decode(answer.json()["data"][0]["b64_json"])


async def _drain(
    server: Server, keys: dict[str, str], jobs: dict[str, str], seconds: float
) -> dict[str, tuple[str, float | None]]:
    """Each job's final status and when it finished (Unix time)."""
    found: dict[str, tuple[str, float | None]] = {}
    deadline = time.monotonic() + seconds
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
        while time.monotonic() < deadline:
            for job_id, tenant in jobs.items():
                if found.get(job_id, ("", None))[0] in _TERMINAL:
                    continue
                answer = await http.get(
                    f"/v1/jobs/{job_id}", headers={"Authorization": f"Bearer {keys[tenant]}"}
                )
                if answer.status_code == 200:
                    body = answer.json()
                    ended = body.get("finished_at")
                    found[job_id] = (
                        body["status"],
                        dt.datetime.fromisoformat(ended).timestamp() if ended else None,
                    )
            if all(found.get(j, ("", None))[0] in _TERMINAL for j in jobs):
                break
            await asyncio.sleep(1.0)
    return found


def _await_webhooks(
    arrivals: dict[str, float],
    finished: dict[str, tuple[str, float | None]],
    jobs: dict[str, str],
    timeout: float,
) -> None:
    owed = {j for j, tenant in jobs.items() if tenant == "acme" and j in finished}
    deadline = time.monotonic() + timeout
    while not owed <= arrivals.keys() and time.monotonic() < deadline:
        time.sleep(0.2)


def _peak_memory_mb(pid: int) -> float | None:
    with suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    return None


# -- the receivers -------------------------------------------------------------------------------


@contextmanager
def _receiver() -> Iterator[tuple[str, dict[str, float]]]:
    """A well-behaved webhook endpoint; yields its URL and each job id's arrival time."""
    arrivals: dict[str, float] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            with suppress(ValueError, KeyError):
                arrivals.setdefault(json.loads(body)["id"], time.time())
            self.send_response(204)
            self.end_headers()

        def log_message(self, *_: Any) -> None:
            pass

    with _serving(ThreadingHTTPServer(("127.0.0.1", 0), Handler)) as port:
        yield f"http://127.0.0.1:{port}/fast", arrivals


@contextmanager
def _trickler() -> Iterator[str]:
    """A hostile webhook endpoint: a status line, then a byte every two seconds."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["content-length"]))
            with suppress(OSError):
                self.wfile.write(b"HTTP/1.1 200 OK\r\n")
                for _ in range(120):
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    time.sleep(2.0)

        def log_message(self, *_: Any) -> None:
            pass

    with _serving(ThreadingHTTPServer(("127.0.0.1", 0), Handler)) as port:
        yield f"http://127.0.0.1:{port}/slow"


@contextmanager
def _serving(http: ThreadingHTTPServer) -> Iterator[int]:
    http.daemon_threads = True
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(http.server_address[1])
    finally:
        http.shutdown()
        http.server_close()


if __name__ == "__main__":
    from bench._cli import main

    main(run)
