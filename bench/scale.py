"""Scale-out of the celery job backend on loopback: throughput per worker process count, and
what the queue adds to one request.

    python -m bench.scale [--workers 1,2,4] [--jobs 24] [--sync-runs 20] [--json]
    genseal bench scale [--runs JOBS] --json          (runs = jobs per worker count)

Everything runs on this machine: a ``redis-server`` of the benchmark's own on a free port
(append-only, fsync every second, in a temporary directory), a throwaway PostgreSQL database
(created on ``GENSEAL_BENCH_POSTGRES_URL``'s server, default the local ``postgres`` user, and
dropped at the end), ``genseal serve`` and ``genseal worker`` subprocesses, each in its own
process group and stopped with SIGTERM (SIGKILL after 60 s). No tenant is created, so
authentication is open. Every request is the tiny model at 256x256 (the smallest size the
watermark accepts), 2 steps.

1. **Workers.** One celery ``genseal serve`` stays up. For each N of ``--workers``, a fresh
   ``genseal worker --concurrency N`` starts; the benchmark waits until it is advertised, until
   ``/readyz`` answers 200, for 2 warm-up jobs, and until its processes are idle (model loading
   done in each). Then ``--jobs`` async jobs (``Prefer: respond-async``, distinct seeds) are
   submitted at once (concurrent requests) and polled until none is queued or running. Per
   job, from the job JSON (server clocks): latency = ``finished_at - created_at``, queue wait =
   ``started_at - created_at``, run = ``finished_at - started_at``. Per N: wall seconds from
   the first ``created_at`` to the last ``finished_at``, throughput, p50/p90/p99 latency,
   failures (any status but ``succeeded``), ``attempts`` (every job must have 1) and how many
   distinct worker processes ran jobs (from ``genseal_jobs.worker``).
2. **Queue overhead.** With the one-process worker still up (and warm), an in-process
   ``genseal serve`` starts beside it (SQLite in a temporary home; a sync request runs inline
   in the API process). The same synchronous request (fixed seed) goes to the two servers in
   turn, one request at a time, 2 warm-ups then ``--sync-runs`` each, timed at the client from
   sending to having read the whole answer. Alternating keeps other load on the machine from
   favouring one backend. ``queue_overhead_ms`` is the celery median minus the in-process
   median (``queue_overhead_min_ms``: the same for the fastest runs, less sensitive to other
   load on the machine): publishing the job to Redis, the worker's claim of the job row in
   PostgreSQL, storing the reply there, and the worker's notice on a Redis channel that wakes
   the waiting request (which also reads the job table every second); PostgreSQL in place of
   SQLite is in it too, and the
   generation itself runs in another process (torch threads and caches of its own). For
   reference, ``async_job_ms`` is the same request sent async, one job at a time (the servers
   in turn), as ``finished_at - created_at`` (in-process: the API's own worker threads).

The client, the API, Redis, PostgreSQL and the workers share the machine's cores, so N
processes on a 2-core machine cannot give N times the throughput (N=1 already has torch on both
cores); and with the tiny model at 2 steps a job is short, so the queue's fixed cost is a large
share of it. With a real model, generation dominates both.

The JSON: ``name``, ``runs`` / ``median_ms`` / ``p90_ms`` (the celery synchronous path),
``workers`` (per N), ``queue_overhead_ms``, ``sync`` and ``async_job_ms`` (both backends),
``log_problems`` (error lines in the logs), ``log_warnings`` (warning events counted by name)
and ``machine`` (with the load average before and after: other work on the machine shows).
Logs stay in a temporary directory whose path is printed when something fails.
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, AsyncExitStack, ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench._harness import machine
from bench.load import percentile

_SIZE = "256x256"
_STEPS = 2
_PROMPT = "a paper boat on a pond"
_SYNC_SEED = 7
_UNLIMITED = "1000000/minute"
_READY_SECONDS = 180.0
_JOBS_SECONDS = 600.0
_TIMEOUT = httpx.Timeout(300.0)
_POLL_SECONDS = 0.05
_PENDING = frozenset({"queued", "running"})
_ADMIN_URL = os.environ.get(
    "GENSEAL_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
_PROBLEM = re.compile(r'"level": ?"(error|critical)"|Traceback|Timed out waiting for UP|ERROR/')
_WARNING = re.compile(r'"event": ?"([^"]+)", "level": ?"warning"')


class BenchFailure(RuntimeError):
    pass


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- processes -----------------------------------------------------------------------------------


@contextmanager
def _process(
    command: list[str], env: dict[str, str], log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """A subprocess in its own process group, its output in ``log``; always stopped."""
    with log.open("ab") as sink:
        process = subprocess.Popen(
            command, env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        yield process
    finally:
        _stop(process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the whole group (a worker's children finish their job first), then SIGKILL."""
    if process.poll() is None:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
    with suppress(ProcessLookupError):  # children the leader left behind
        os.killpg(process.pid, signal.SIGKILL)


def _genseal(
    args: list[str], env: dict[str, str], log: Path
) -> AbstractContextManager[subprocess.Popen[bytes]]:
    return _process([sys.executable, "-c", "from api.cli import main; main()", *args], env, log)


@contextmanager
def _redis(directory: Path, log: Path) -> Iterator[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise BenchFailure("redis-server is not installed (Debian package redis-server)")
    directory.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory)]
    command += ["--save", "", "--appendonly", "yes", "--appendfsync", "everysec"]
    with _process(command, dict(os.environ), log) as process:
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(64).startswith(b"+PONG"):
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise BenchFailure(f"redis-server did not start (log: {log})")
            time.sleep(0.1)
        yield f"redis://127.0.0.1:{port}/0"


@contextmanager
def _postgres() -> Iterator[str]:
    """A new database on the admin URL's server, dropped afterwards (even with connections)."""
    import psycopg
    from sqlalchemy.engine import make_url

    admin = make_url(_ADMIN_URL)
    name = f"genseal_bench_scale_{uuid.uuid4().hex[:10]}"
    conninfo = admin.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True, connect_timeout=5) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
        try:
            yield admin.set(database=name).render_as_string(hide_password=False)
        finally:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def _serve(env: dict[str, str], log: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = _free_port()
    with _genseal(["serve", "--port", str(port)], env, log) as process:
        url = f"http://127.0.0.1:{port}"
        _wait_200(url + "/healthz", [process])
        yield url, process


def _wait_200(url: str, processes: list[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + _READY_SECONDS
    while True:
        if any(p.poll() is not None for p in processes):
            raise BenchFailure(f"a process exited while waiting for {url}")
        with suppress(httpx.TransportError):
            if httpx.get(url, timeout=10).status_code == 200:
                return
        if time.monotonic() > deadline:
            raise BenchFailure(f"{url} did not answer 200 in {_READY_SECONDS:.0f} s")
        time.sleep(0.2)


def _wait_advertised(broker_url: str, namespace: str, pid: int) -> None:
    """Until the worker with this pid is in the registry (not a stopped one's leftover)."""
    from api.jobs import WorkerRegistry

    registry = WorkerRegistry(broker_url, namespace)
    try:
        deadline = time.monotonic() + _READY_SECONDS
        while not any(info.get("pid") == pid for info in registry.workers(max_age=0).values()):
            if time.monotonic() > deadline:
                raise BenchFailure(f"worker {pid} was not advertised in {_READY_SECONDS:.0f} s")
            time.sleep(0.2)
    finally:
        registry.close()


def _cpu_seconds(pid: int) -> tuple[int, float]:
    """(children, CPU seconds of the process and its children) from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return 0, 0.0
    total = 0.0
    for each in [str(pid), *children]:
        with suppress(OSError):
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return len(children), total


def _wait_idle(pid: int, processes: int) -> None:
    """Until the worker has its ``processes`` children and they use under 10 % of a core: each
    has loaded the model (``/readyz`` answers as soon as the worker is advertised)."""
    deadline = time.monotonic() + _READY_SECONDS
    before = _cpu_seconds(pid)[1]
    while time.monotonic() < deadline:
        time.sleep(1.0)
        children, now = _cpu_seconds(pid)
        if children == processes and now - before < 0.1:
            return
        before = now
    raise BenchFailure(f"worker {pid} did not settle with {processes} processes")


# -- requests ------------------------------------------------------------------------------------


def _body(seed: int) -> dict[str, Any]:
    return {"prompt": _PROMPT, "size": _SIZE, "steps": _STEPS, "seed": seed}


def _when(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value)


def _ms(start: str, end: str) -> float:
    return (_when(end) - _when(start)).total_seconds() * 1000


async def _submit(http: httpx.AsyncClient, seed: int) -> str:
    response = await http.post(
        "/v1/images/generations", json=_body(seed), headers={"Prefer": "respond-async"}
    )
    if response.status_code != 202:
        raise BenchFailure(f"async submit answered {response.status_code}: {response.text[:300]}")
    return str(response.json()["id"])


async def _finish(http: httpx.AsyncClient, ids: list[str], every: float) -> list[dict[str, Any]]:
    """Poll the jobs until none is queued or running (bounded)."""
    done: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + _JOBS_SECONDS
    while len(done) < len(ids):
        for job_id in [i for i in ids if i not in done]:
            response = await http.get(f"/v1/jobs/{job_id}")
            if response.status_code != 200:
                raise BenchFailure(f"GET job answered {response.status_code}: {response.text}")
            job = response.json()
            if job["status"] not in _PENDING:
                done[job_id] = job
        if len(done) < len(ids):
            if time.monotonic() > deadline:
                raise BenchFailure(f"{len(ids) - len(done)} jobs unfinished after the bound")
            await asyncio.sleep(every)
    return [done[i] for i in ids]


async def _batch(url: str, seeds: list[int], every: float = 0.5) -> list[dict[str, Any]]:
    """Submit one job per seed at once, then wait for all."""
    limits = httpx.Limits(max_connections=len(seeds) + 4)
    async with httpx.AsyncClient(base_url=url, timeout=_TIMEOUT, limits=limits) as http:
        ids = await asyncio.gather(*(_submit(http, seed) for seed in seeds))
        return await _finish(http, list(ids), every)


async def _one_by_one(urls: dict[str, str], runs: int) -> dict[str, list[dict[str, Any]]]:
    """The fixed request as ``runs`` async jobs per server, each submitted when the last one
    finished, taking the servers in turn."""
    done: dict[str, list[dict[str, Any]]] = {name: [] for name in urls}
    async with AsyncExitStack() as stack:
        clients = {
            name: await stack.enter_async_context(httpx.AsyncClient(base_url=url, timeout=_TIMEOUT))
            for name, url in urls.items()
        }
        for _ in range(runs):
            for name, http in clients.items():
                job_id = await _submit(http, _SYNC_SEED)
                done[name] += await _finish(http, [job_id], _POLL_SECONDS)
    return done


def _sync_paths(urls: dict[str, str], runs: int, warmup: int = 2) -> dict[str, dict[str, Any]]:
    """The fixed sync request ``runs`` times per server (after ``warmup``), the servers in
    turn so that both see the same machine; client-timed to the whole answer read."""
    samples: dict[str, list[float]] = {name: [] for name in urls}
    with ExitStack() as stack:
        clients = {
            name: stack.enter_context(httpx.Client(base_url=url, timeout=_TIMEOUT))
            for name, url in urls.items()
        }
        for i in range(warmup + runs):
            for name, http in clients.items():
                start = time.perf_counter()
                response = http.post("/v1/images/generations", json=_body(_SYNC_SEED))
                ms = (time.perf_counter() - start) * 1000
                if response.status_code != 200:
                    raise BenchFailure(
                        f"{name} sync answered {response.status_code}: {response.text}"
                    )
                if i >= warmup:
                    samples[name].append(ms)
    return {name: _stats(values) for name, values in samples.items()}


def _stats(values: list[float]) -> dict[str, Any]:
    return {
        "runs": len(values),
        "median_ms": round(statistics.median(values), 1),
        "p90_ms": round(percentile(values, 90), 1),
        "min_ms": round(min(values), 1),
        "max_ms": round(max(values), 1),
    }


def _job_latency(jobs: list[dict[str, Any]]) -> dict[str, Any]:
    wait = [_ms(j["created_at"], j["started_at"]) for j in jobs]
    return {
        **_stats([_ms(j["created_at"], j["finished_at"]) for j in jobs]),
        "queue_wait_median_ms": round(statistics.median(wait), 1),
    }


def _round_summary(jobs: list[dict[str, Any]], processes_used: int) -> dict[str, Any]:
    finished = [j for j in jobs if j.get("finished_at")]
    latency = [_ms(j["created_at"], j["finished_at"]) for j in finished]
    wait = [_ms(j["created_at"], j["started_at"]) for j in finished if j.get("started_at")]
    running = [_ms(j["started_at"], j["finished_at"]) for j in finished if j.get("started_at")]
    first = min(_when(j["created_at"]) for j in jobs)
    last = max((_when(j["finished_at"]) for j in finished), default=first)
    wall = (last - first).total_seconds()
    return {
        "jobs": len(jobs),
        "wall_s": round(wall, 2),
        "throughput_jobs_per_s": round(len(finished) / wall, 3) if wall > 0 else 0.0,
        "p50_ms": round(percentile(latency, 50), 1),
        "p90_ms": round(percentile(latency, 90), 1),
        "p99_ms": round(percentile(latency, 99), 1),
        "queue_wait_p50_ms": round(percentile(wait, 50), 1),
        "run_p50_ms": round(percentile(running, 50), 1),
        "failures": sum(1 for j in jobs if j["status"] != "succeeded"),
        "attempts_all_1": all(j["attempts"] == 1 for j in jobs),
        "max_attempts": max(int(j["attempts"]) for j in jobs),
        "processes_used": processes_used,
    }


def _processes_used(database_url: str, ids: list[str]) -> int:
    from sqlalchemy import bindparam, create_engine, text

    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            query = text("SELECT COUNT(DISTINCT worker) FROM genseal_jobs WHERE id IN :ids")
            query = query.bindparams(bindparam("ids", expanding=True))
            return int(connection.execute(query, {"ids": ids}).scalar_one())
    finally:
        engine.dispose()


# -- the benchmark -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Celery:
    url: str
    api: subprocess.Popen[bytes]
    env: dict[str, str]
    database_url: str
    namespace: str
    logs: Path


def _base_env(home: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("GENSEAL_DATABASE_URL", "GENSEAL_BROKER_URL", "GENSEAL_API_KEYS")
    }
    return {
        **env,
        "GENSEAL_HOME": str(home),
        "GENSEAL_RATE_LIMIT": _UNLIMITED,
        "GENSEAL_VERIFY_RATE_LIMIT": _UNLIMITED,
        "GENSEAL_LOG_LEVEL": os.environ.get("GENSEAL_LOG_LEVEL", "info"),
        **extra,
    }


def _overhead(celery_url: str, workdir: Path, runs: int) -> dict[str, dict[str, Any]]:
    """With one warm celery worker: an in-process ``genseal serve`` beside it, and the fixed
    request sent to both in turn, sync then async."""
    env = _base_env(workdir / "home-inprocess", GENSEAL_JOB_BACKEND="inprocess")
    with _serve(env, workdir / "logs" / "serve-inprocess.log") as (url, api):
        _wait_200(url + "/readyz", [api])
        urls = {"inprocess": url, "celery_1_worker": celery_url}
        sync = _sync_paths(urls, runs)
        jobs = asyncio.run(_one_by_one(urls, runs))
    return {"sync": sync, "async_job_ms": {n: _job_latency(j) for n, j in jobs.items()}}


@contextmanager
def _worker(celery: Celery, processes: int) -> Iterator[None]:
    log = celery.logs / f"worker-{processes}.log"
    args = ["worker", "--concurrency", str(processes)]
    with _genseal(args, celery.env, log) as worker:
        _wait_advertised(celery.env["GENSEAL_BROKER_URL"], celery.namespace, worker.pid)
        _wait_200(celery.url + "/readyz", [celery.api, worker])
        asyncio.run(_batch(celery.url, [1, 2], every=0.1))  # warm-up
        _wait_idle(worker.pid, processes)
        yield


def _scale_round(celery: Celery, processes: int, jobs: int) -> dict[str, Any]:
    seeds = [processes * 100_000 + i for i in range(jobs)]
    done = asyncio.run(_batch(celery.url, seeds))
    used = _processes_used(celery.database_url, [j["id"] for j in done])
    return _round_summary(done, used)


def _log_findings(logs: Path) -> tuple[dict[str, Any], dict[str, dict[str, int]]]:
    """Error lines (count and the first two) and warning events (by name), per log file."""
    problems: dict[str, Any] = {}
    warnings: dict[str, dict[str, int]] = {}
    for path in sorted(logs.glob("*.log")):
        lines = path.read_text(errors="replace").splitlines()
        bad = [line for line in lines if _PROBLEM.search(line)]
        if bad:
            problems[path.name] = {"lines": len(bad), "first": [line[:300] for line in bad[:2]]}
        events = collections.Counter(m.group(1) for m in map(_WARNING.search, lines) if m)
        if events:
            warnings[path.name] = dict(events.most_common())
    return problems, warnings


def _cpu_model() -> str:
    with suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "unknown"


def scale(*, workers: list[int], jobs: int, sync_runs: int) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="genseal-scale-"))
    logs = workdir / "logs"
    logs.mkdir()
    load_before = os.getloadavg()
    started = time.monotonic()
    rounds: dict[str, Any] = {}
    try:
        with ExitStack() as stack:
            broker = stack.enter_context(_redis(workdir / "redis", logs / "redis.log"))
            database_url = stack.enter_context(_postgres())
            namespace = f"bench-scale-{uuid.uuid4().hex[:8]}"
            env = _base_env(
                workdir / "home-celery",
                GENSEAL_JOB_BACKEND="celery",
                GENSEAL_DATABASE_URL=database_url,
                GENSEAL_BROKER_URL=broker,
                GENSEAL_BROKER_NAMESPACE=namespace,
            )
            url, api = stack.enter_context(_serve(env, logs / "serve-celery.log"))
            celery = Celery(url, api, env, database_url, namespace, logs)
            paths: dict[str, dict[str, Any]] = {}
            for n in workers:
                with _worker(celery, n):
                    rounds[str(n)] = _scale_round(celery, n, jobs)
                    if n == 1:  # the worker is warm already
                        paths = _overhead(url, workdir, sync_runs)
            if not paths:
                with _worker(celery, 1):
                    paths = _overhead(url, workdir, sync_runs)
    except BaseException:
        print(f"bench.scale failed; logs in {logs}:", file=sys.stderr)
        for path in sorted(logs.glob("*.log")):
            print(f"  {path}", file=sys.stderr)
        raise
    sync_celery = paths["sync"]["celery_1_worker"]
    sync_inprocess = paths["sync"]["inprocess"]
    overhead = sync_celery["median_ms"] - sync_inprocess["median_ms"]
    overhead_min = sync_celery["min_ms"] - sync_inprocess["min_ms"]
    problems, warnings = _log_findings(logs)
    return {
        "name": "scale",
        "runs": sync_celery["runs"],
        "median_ms": sync_celery["median_ms"],
        "p90_ms": sync_celery["p90_ms"],
        "request": f"tiny model, {_SIZE}, {_STEPS} steps",
        "workers": rounds,
        "queue_overhead_ms": round(overhead, 1),
        "queue_overhead_min_ms": round(overhead_min, 1),
        **paths,
        "log_problems": problems,
        "log_warnings": warnings,
        "logs": str(logs),
        "elapsed_s": round(time.monotonic() - started, 1),
        "machine": {
            **machine(),
            "cpu_model": _cpu_model(),
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
        },
    }


def run(runs: int = 24) -> dict[str, Any]:
    """``genseal bench scale --runs N``: N jobs per worker count (1, 2, 4), 20 sync runs."""
    return scale(workers=[1, 2, 4], jobs=runs, sync_runs=20)


def _print_text(result: dict[str, Any]) -> None:
    print(f"{'N':>3} {'jobs':>5} {'jobs/s':>7} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} fail")
    for n, r in result["workers"].items():
        print(
            f"{n:>3} {r['jobs']:>5} {r['throughput_jobs_per_s']:>7.2f} {r['p50_ms']:>8.0f}"
            f" {r['p90_ms']:>8.0f} {r['p99_ms']:>8.0f} {r['failures']}"
        )
    sync = result["sync"]
    print(
        f"sync median: in-process {sync['inprocess']['median_ms']:.0f} ms, celery"
        f" {sync['celery_1_worker']['median_ms']:.0f} ms; queue overhead"
        f" {result['queue_overhead_ms']:.0f} ms"
    )


if __name__ == "__main__":
    import argparse
    import json

    parser = argparse.ArgumentParser(description="bench.scale")
    parser.add_argument(
        "--workers", default="1,2,4", help="worker process counts, comma-separated (default 1,2,4)"
    )
    parser.add_argument("--jobs", type=int, default=24, help="async jobs per count (default 24)")
    parser.add_argument(
        "--sync-runs", type=int, default=20, help="timed sync requests per backend (default 20)"
    )
    parser.add_argument("--json", action="store_true", help="print the JSON result")
    args = parser.parse_args()
    counts = [int(n) for n in args.workers.split(",") if n.strip()]
    result = scale(workers=counts, jobs=args.jobs, sync_runs=args.sync_runs)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        _print_text(result)
