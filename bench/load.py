"""A bounded load test of a real ``genseal serve`` on loopback: latency, throughput, exactly-once.

    python -m bench.load [--clients 32] [--seconds 60]      or      genseal bench load --json

For ``genseal bench load`` the ``runs`` option means *seconds* of load (its default of 20 runs
gives a 20 s test with 32 clients).

What it does:

1. Starts ``genseal serve`` in a subprocess on 127.0.0.1 with a fresh temporary
   ``GENSEAL_HOME``, one tenant (so authentication is on and every image request carries a
   Bearer key) and rate limits raised far above what the test can send, then waits for
   ``/healthz`` and ``/readyz`` (the model warm-up). The server log goes to a file in the
   temporary directory; its path is printed when something fails.
2. Generates one sealed 256² PNG (the smallest size the watermark accepts) to verify later.
3. Runs ``--clients`` concurrent clients for ``--seconds`` seconds (one ``httpx.AsyncClient``).
   Each client repeats a seeded, fixed rotation of four requests: a synchronous generation
   (tiny model, 2 steps, 256²), an asynchronous one (``Prefer: respond-async`` with a unique
   ``Idempotency-Key``: the 202 submit is what is timed) and two verifications of the sealed
   PNG (``POST /v1/verify``, no key). Latency is measured from sending a request to having read
   its whole response. When the time is up no new request starts; those in flight finish and
   are counted.
4. Polls every accepted job until it is terminal (bounded by ``--drain-seconds``), replays
   three idempotency keys, stops the server and reads its manifest store.

The client runs on the same machine as the server, so on a small machine the numbers are those
of the server *and* the load generator sharing the CPUs; they are a floor, not a capacity.

Guarantees checked (the JSON reports each; a healthy run has the first four at 0 / true):

- ``server_errors``: responses with a 5xx status, and transport failures (timeouts, dropped
  connections) in ``transport_errors``. 429s are counted apart, in ``rate_limited``: with the
  raised limits there should be none.
- ``jobs_lost``: accepted jobs (202 with an id) that never reached a terminal status
  (succeeded, blocked, failed) within the drain bound, or that the server no longer knows.
- ``idempotent_replays_ok``: the same ``Idempotency-Key`` with the same body, sent again,
  answers the first job's id with ``Idempotent-Replayed: true``, and generates nothing.
- ``duplicate_manifests``: manifest ids released more than once (in the audit log, or handed
  to clients by two responses). ``audit_matches_released`` says the number of ``released``
  audit entries with a manifest equals the number of images clients received (sync 200
  responses, succeeded jobs and the one sealed before the load), and that they are the same
  ids, each present in the manifest store: every image delivered was sealed and recorded
  exactly once, and nothing was sealed that nobody received. ``audit_chain_intact``: the
  hash chain of the audit log verifies end to end after the load.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import math
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx

from bench._harness import machine

Kind = Literal["sync", "async", "verify"]
KINDS: tuple[Kind, ...] = ("sync", "async", "verify")
# One client cycle: 1 sync generation, 1 async generation, 2 verifications.
_CYCLE: tuple[Kind, ...] = ("sync", "async", "verify", "verify")
_EXPECTED: dict[Kind, int] = {"sync": 200, "async": 202, "verify": 200}
_TERMINAL = frozenset({"succeeded", "blocked", "failed"})
_PROMPTS = (
    "a ceramic figurine of a fox",
    "a ceramic figurine of an owl on a branch",
    "a watercolour of a lighthouse at dawn",
    "a bowl of lemons on a wooden table",
    "a paper boat on a pond",
    "a knitted teapot cosy, studio photo",
    "a mountain cabin in the snow",
    "a glass jar of marbles in sunlight",
)
_SIZE = "256x256"
_STEPS = 2
_UNLIMITED = "1000000/minute"
_READY_SECONDS = 180.0
_TIMEOUT_SECONDS = 300.0
_SEED = 20240601


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0-100) of ``values``; 0.0 for none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


# -- the server ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Server:
    url: str
    home: Path
    log: Path
    api_key: str
    process: subprocess.Popen[bytes]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerFailure(RuntimeError):
    def __init__(self, message: str, log: Path) -> None:
        super().__init__(f"{message} (server log: {log})")
        self.log = log


@contextmanager
def genseal_serve(workdir: Path, *, extra_env: dict[str, str] | None = None) -> Iterator[Server]:
    """A ``genseal serve`` subprocess with a fresh home and one tenant; always terminated.
    ``extra_env``: settings of the run's own (they win over the load test's)."""
    from api.tenants import TenantStore
    from genseal.settings import Settings

    home, log = workdir / "home", workdir / "server.log"
    issued = TenantStore(Settings(home=home).store_url).create("acme")
    port = _free_port()
    env = {
        **os.environ,
        "GENSEAL_HOME": str(home),
        "GENSEAL_RATE_LIMIT": _UNLIMITED,
        "GENSEAL_VERIFY_RATE_LIMIT": _UNLIMITED,
        "GENSEAL_LOG_LEVEL": os.environ.get("GENSEAL_LOG_LEVEL", "info"),
        **(extra_env or {}),
    }
    command = [sys.executable, "-c", "from api.cli import main; main()", "serve"]
    with log.open("ab") as sink:
        process = subprocess.Popen(
            [*command, "--port", str(port)], env=env, stdout=sink, stderr=subprocess.STDOUT
        )
    server = Server(f"http://127.0.0.1:{port}", home, log, issued.api_key, process)
    try:
        _wait_ready(server)
        yield server
    finally:
        stop(server)


def _wait_ready(server: Server) -> None:
    deadline = time.monotonic() + _READY_SECONDS
    for path in ("/healthz", "/readyz"):
        while True:
            if server.process.poll() is not None:
                raise ServerFailure(
                    f"genseal serve exited with {server.process.returncode}", server.log
                )
            try:
                if httpx.get(server.url + path, timeout=10).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise ServerFailure(
                    f"{path} did not answer 200 in {_READY_SECONDS:.0f} s", server.log
                )
            time.sleep(0.2)


def stop(server: Server) -> None:
    process = server.process
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


# -- the load ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    kind: Kind
    status: int  # 0: no HTTP answer (timeout, connection error)
    ms: float
    error: str | None = None


@dataclass(frozen=True)
class Accepted:
    job_id: str
    key: str
    body: dict[str, Any]


@dataclass
class Outcome:
    samples: list[Sample] = field(default_factory=list)
    accepted: list[Accepted] = field(default_factory=list)
    # Manifest ids of the images clients received, in the order received (repeats kept).
    delivered: list[str] = field(default_factory=list)
    verify_untrusted: int = 0
    missing_job_ids: int = 0


def _generation(client: int, n: int, rng: random.Random) -> dict[str, Any]:
    return {
        "prompt": rng.choice(_PROMPTS),
        "size": _SIZE,
        "steps": _STEPS,
        "seed": client * 1_000_000 + n,
    }


def _manifest_ids(body: Any) -> list[str]:
    data = body.get("data") if isinstance(body, dict) else None
    return [str(item["manifest_id"]) for item in data or [] if "manifest_id" in item]


async def _client(
    http: httpx.AsyncClient,
    index: int,
    deadline: float,
    sealed: bytes,
    headers: dict[str, str],
    run_id: str,
    outcome: Outcome,
) -> None:
    rng = random.Random(_SEED + index)
    offset = rng.randrange(len(_CYCLE))  # clients start at different points of the rotation
    loop = asyncio.get_running_loop()
    n = 0
    while loop.time() < deadline:
        kind = _CYCLE[(offset + n) % len(_CYCLE)]
        n += 1
        body = _generation(index, n, rng)
        key = f"load-{run_id}-{index}-{n}"
        start = time.perf_counter()
        try:
            if kind == "verify":
                response = await http.post(
                    "/v1/verify", files={"file": ("sealed.png", sealed, "image/png")}
                )
            elif kind == "async":
                response = await http.post(
                    "/v1/images/generations",
                    json=body,
                    headers={**headers, "Prefer": "respond-async", "Idempotency-Key": key},
                )
            else:
                response = await http.post("/v1/images/generations", json=body, headers=headers)
        except httpx.HTTPError as exc:
            ms = (time.perf_counter() - start) * 1000
            outcome.samples.append(Sample(kind, 0, ms, f"{type(exc).__name__}: {exc}"))
            continue
        ms = (time.perf_counter() - start) * 1000
        outcome.samples.append(Sample(kind, response.status_code, ms))
        if response.status_code == 200 and kind == "sync":
            outcome.delivered += _manifest_ids(response.json())
        elif response.status_code == 202 and kind == "async":
            job_id = response.json().get("id")
            if job_id:
                outcome.accepted.append(Accepted(str(job_id), key, body))
            else:
                outcome.missing_job_ids += 1
        elif response.status_code == 200 and kind == "verify":
            c2pa = response.json().get("c2pa") or {}
            if c2pa.get("state") != "trusted":
                outcome.verify_untrusted += 1


async def _load(
    server: Server, clients: int, seconds: float, sealed: bytes
) -> tuple[Outcome, float]:
    headers = {"Authorization": f"Bearer {server.api_key}"}
    limits = httpx.Limits(max_connections=clients + 8, max_keepalive_connections=clients + 8)
    outcome = Outcome()
    run_id = uuid.uuid4().hex[:8]
    async with httpx.AsyncClient(
        base_url=server.url, limits=limits, timeout=httpx.Timeout(_TIMEOUT_SECONDS)
    ) as http:
        loop = asyncio.get_running_loop()
        started = loop.time()
        deadline = started + seconds
        await asyncio.gather(
            *(_client(http, i, deadline, sealed, headers, run_id, outcome) for i in range(clients))
        )
        elapsed = loop.time() - started
    return outcome, elapsed


# -- after the load: jobs, idempotency -----------------------------------------------------------


@dataclass
class Drain:
    status: dict[str, str] = field(default_factory=dict)  # job id → last status seen
    delivered: list[str] = field(default_factory=list)
    server_errors: int = 0
    seconds: float = 0.0


async def _drain(server: Server, accepted: list[Accepted], bound: float) -> Drain:
    """Poll every accepted job until it is terminal, or the bound passes."""
    headers = {"Authorization": f"Bearer {server.api_key}"}
    drain = Drain()
    gate = asyncio.Semaphore(16)
    loop = asyncio.get_running_loop()
    started = loop.time()
    deadline = started + bound

    async def follow(http: httpx.AsyncClient, job_id: str) -> None:
        while True:
            async with gate:
                try:
                    response = await http.get(f"/v1/jobs/{job_id}", headers=headers)
                except httpx.HTTPError:
                    response = None
            if response is not None:
                if response.status_code >= 500:
                    drain.server_errors += 1
                elif response.status_code == 404:
                    drain.status[job_id] = "not_found"
                    return
                elif response.status_code == 200:
                    job = response.json()
                    drain.status[job_id] = str(job["status"])
                    if job["status"] in _TERMINAL:
                        if job["status"] == "succeeded":
                            drain.delivered += _manifest_ids(job.get("result"))
                        return
            if loop.time() > deadline:
                return
            await asyncio.sleep(0.5)

    async with httpx.AsyncClient(base_url=server.url, timeout=httpx.Timeout(60)) as http:
        await asyncio.gather(*(follow(http, job.job_id) for job in accepted))
    drain.seconds = loop.time() - started
    return drain


async def _replay(server: Server, accepted: list[Accepted], count: int = 3) -> tuple[int, int]:
    """Re-send ``count`` accepted requests with their keys: (replayed correctly, tried)."""
    headers = {"Authorization": f"Bearer {server.api_key}", "Prefer": "respond-async"}
    chosen = random.Random(_SEED).sample(accepted, min(count, len(accepted)))
    ok = 0
    async with httpx.AsyncClient(base_url=server.url, timeout=httpx.Timeout(60)) as http:
        for job in chosen:
            response = await http.post(
                "/v1/images/generations",
                json=job.body,
                headers={**headers, "Idempotency-Key": job.key},
            )
            if (
                response.status_code == 202
                and response.json().get("id") == job.job_id
                and response.headers.get("Idempotent-Replayed") == "true"
            ):
                ok += 1
    return ok, len(chosen)


def _sealed_png(server: Server) -> tuple[bytes, str]:
    """One sync generation before the load: the PNG the verifications send, and its id."""
    response = httpx.post(
        server.url + "/v1/images/generations",
        json={"prompt": _PROMPTS[0], "size": _SIZE, "steps": _STEPS, "seed": 0},
        headers={"Authorization": f"Bearer {server.api_key}"},
        timeout=_TIMEOUT_SECONDS,
    )
    if response.status_code != 200:
        raise ServerFailure(
            f"the first generation answered {response.status_code}: {response.text[:300]}",
            server.log,
        )
    [image] = response.json()["data"]
    return base64.b64decode(image["b64_json"]), str(image["manifest_id"])


# -- the store, after the server stopped ---------------------------------------------------------


@dataclass(frozen=True)
class Ledger:
    released: list[str]  # manifest ids of `released` audit entries, oldest first
    events: dict[str, int]
    chain_break: str | None
    missing_in_store: int


def _ledger(home: Path, delivered: list[str]) -> Ledger:
    from genseal.settings import Settings
    from provenance import AuditEntry, ManifestStore

    store = ManifestStore(Settings(home=home).store_url)
    try:
        entries: list[AuditEntry] = []
        before: int | None = None
        while True:
            page = store.audit_entries(limit=500, before_seq=before)
            entries += page
            if len(page) < 500:
                break
            before = page[-1].seq
        entries.reverse()
        released = [e.manifest_id for e in entries if e.event == "released" and e.manifest_id]
        events = collections.Counter(str(e.event) for e in entries)
        missing = sum(1 for manifest_id in set(delivered) if store.get(manifest_id) is None)
        return Ledger(released, dict(events), store.audit_chain_break(), missing)
    finally:
        store.close()


# -- the report ----------------------------------------------------------------------------------


def _ms(value: float) -> float:
    return round(value, 1)


def _summary(samples: list[Sample], elapsed: float, expected: int | None) -> dict[str, Any]:
    latencies = [s.ms for s in samples]
    statuses = collections.Counter(str(s.status) for s in samples)
    errors = sum(1 for s in samples if expected is not None and s.status != expected)
    return {
        "count": len(samples),
        "throughput_per_s": round(len(samples) / elapsed, 2) if elapsed > 0 else 0.0,
        "p50_ms": _ms(percentile(latencies, 50)),
        "p90_ms": _ms(percentile(latencies, 90)),
        "p99_ms": _ms(percentile(latencies, 99)),
        "max_ms": _ms(max(latencies, default=0.0)),
        "errors": errors,
        "statuses": dict(sorted(statuses.items())),
    }


def run(runs: int = 20, *, clients: int = 32, drain_seconds: float = 300.0) -> dict[str, Any]:
    """``runs`` is the number of *seconds* of load (``genseal bench load --runs 60``)."""
    return load(clients=clients, seconds=float(runs), drain_seconds=drain_seconds)


def load(
    *, clients: int = 32, seconds: float = 60.0, drain_seconds: float = 300.0
) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="genseal-load-"))
    log = workdir / "server.log"
    try:
        with genseal_serve(workdir) as server:
            sealed, first_id = _sealed_png(server)
            outcome, elapsed = asyncio.run(_load(server, clients, seconds, sealed))
            drain = asyncio.run(_drain(server, outcome.accepted, drain_seconds))
            replayed, replays = asyncio.run(_replay(server, outcome.accepted))
        delivered = [first_id, *outcome.delivered, *drain.delivered]
        ledger = _ledger(server.home, delivered)
    except BaseException:
        print(f"genseal load: server log at {log}", file=sys.stderr)
        raise

    samples = outcome.samples
    latencies = [s.ms for s in samples]
    statuses = collections.Counter(str(s.status) for s in samples)
    transport = [s for s in samples if s.status == 0]
    server_errors = sum(1 for s in samples if s.status >= 500)
    job_states = collections.Counter(
        drain.status.get(job.job_id, "unseen") for job in outcome.accepted
    )
    terminal = sum(n for state, n in job_states.items() if state in _TERMINAL)
    released_twice = sum(n - 1 for n in collections.Counter(ledger.released).values() if n > 1)
    delivered_twice = sum(n - 1 for n in collections.Counter(delivered).values() if n > 1)
    audit_matches = (
        len(ledger.released) == len(delivered)
        and set(ledger.released) == set(delivered)
        and ledger.missing_in_store == 0
    )
    return {
        "name": "load",
        "runs": len(samples),
        "median_ms": _ms(statistics.median(latencies)) if latencies else 0.0,
        "p90_ms": _ms(percentile(latencies, 90)),
        "p99_ms": _ms(percentile(latencies, 99)),
        "throughput_per_s": round(len(samples) / elapsed, 2) if elapsed > 0 else 0.0,
        "clients": clients,
        "seconds": seconds,
        "elapsed_s": round(elapsed, 1),
        "mix": "per client cycle: 1 sync generation, 1 async submit, 2 verifies",
        "request": f"tiny model, {_SIZE}, {_STEPS} steps; verify of a sealed {_SIZE} PNG",
        "kinds": {
            kind: _summary([s for s in samples if s.kind == kind], elapsed, _EXPECTED[kind])
            for kind in KINDS
        },
        "status_counts": dict(sorted(statuses.items())),
        "server_errors": server_errors + drain.server_errors,
        "rate_limited": statuses.get("429", 0),
        "transport_errors": len(transport),
        "transport_error_examples": sorted({s.error or "" for s in transport})[:3],
        "verify_untrusted": outcome.verify_untrusted,
        "jobs_accepted": len(outcome.accepted),
        "jobs_succeeded": job_states.get("succeeded", 0),
        "jobs_blocked": job_states.get("blocked", 0),
        "jobs_failed": job_states.get("failed", 0),
        "jobs_lost": len(outcome.accepted) - terminal + outcome.missing_job_ids,
        "jobs_unfinished_states": {
            state: n for state, n in sorted(job_states.items()) if state not in _TERMINAL
        },
        "drain_s": round(drain.seconds, 1),
        "idempotent_replays": f"{replayed}/{replays}",
        "idempotent_replays_ok": replayed == replays,
        "released_images": len(delivered),
        "audit_released_entries": len(ledger.released),
        "audit_events": dict(sorted(ledger.events.items())),
        "audit_matches_released": audit_matches,
        "duplicate_manifests": released_twice + delivered_twice,
        "manifests_missing_in_store": ledger.missing_in_store,
        "audit_chain_intact": ledger.chain_break is None,
        "audit_chain_break": ledger.chain_break,
        "server_log": str(log),
        "machine": machine(),
    }


if __name__ == "__main__":
    import argparse
    import json

    from genseal.logs import configure_logging

    parser = argparse.ArgumentParser(description="bench.load")
    parser.add_argument("--clients", type=int, default=32, help="concurrent clients (default 32)")
    parser.add_argument("--seconds", type=float, default=60.0, help="seconds of load (default 60)")
    parser.add_argument(
        "--drain-seconds",
        type=float,
        default=300.0,
        help="bound on waiting for accepted jobs after the load (default 300)",
    )
    args = parser.parse_args()
    configure_logging("warning")
    result = load(clients=args.clients, seconds=args.seconds, drain_seconds=args.drain_seconds)
    print(json.dumps(result, indent=2))
