"""The Celery ``JobQueue``: the API hands job ids to ``genseal worker`` processes via Redis.

The API side only publishes, routes and watches: it checks that a live worker serves the
requested model before it accepts a job, publishes the job's id to that model's queue, and
runs a reaper that puts jobs whose worker stopped renewing the lease back in the queue and
publishes them again. Workers (``api.jobs._celery_worker``) claim the row, run it, store the answer
and announce it on a Redis channel; the API reads answers from the job table, and a request
waiting for one wakes on the announcement instead of polling on a timer.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading

import structlog

from api.jobs._celery_app import (
    TASK,
    WorkerRegistry,
    celery_app,
    common_queue,
    model_queue,
    process_name,
)
from api.jobs._model import Reply
from api.jobs._store import JobStore
from genseal.errors import QueueError, StoreError
from genseal.settings import Settings

__all__ = ["CeleryQueue"]

log = structlog.get_logger("genseal.queue")


class CeleryQueue:
    inline = False

    def __init__(self, settings: Settings, jobs: JobStore) -> None:
        self.jobs = jobs
        self.settings = settings
        self.app = celery_app(settings)
        self.registry = WorkerRegistry(settings.broker_url, settings.broker_namespace)
        self.name = process_name("api")
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        # Requests waiting for a job's answer, woken when a worker announces it.
        self._waiters: dict[str, list[tuple[asyncio.AbstractEventLoop, asyncio.Event]]] = {}
        self._waiters_lock = threading.Lock()

    def start(self) -> None:
        self._stop.clear()
        self._threads = [
            threading.Thread(target=self._reap, name="genseal-reaper", daemon=True),
            threading.Thread(target=self._listen, name="genseal-finished", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout)
        self.registry.close()

    async def finished(self, job_id: str, timeout: float) -> None:
        event = asyncio.Event()
        waiter = (asyncio.get_running_loop(), event)
        with self._waiters_lock:
            self._waiters.setdefault(job_id, []).append(waiter)
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), timeout)
        finally:
            with self._waiters_lock:
                waiting = self._waiters.get(job_id, [])
                if waiter in waiting:
                    waiting.remove(waiter)
                if not waiting:
                    self._waiters.pop(job_id, None)

    def _listen(self) -> None:
        for job_id in self.registry.finished_jobs(self._stop):
            with self._waiters_lock:
                waiting = list(self._waiters.get(job_id, []))
            for loop, event in waiting:
                loop.call_soon_threadsafe(event.set)

    def worker_name(self, index: int | str) -> str:
        return f"{self.name}/{index}"

    def run_inline(self, job_id: str, worker: str) -> Reply:
        raise QueueError("with the celery job backend, jobs run on genseal workers only")

    def check_model(self, model: str | None) -> None:
        workers = self.registry.workers()
        if not workers:
            raise QueueError(
                "no genseal worker is running; start one with `genseal worker` "
                "(GENSEAL_JOB_BACKEND=celery, the same GENSEAL_BROKER_URL)"
            )
        if model is None:
            return
        served = self.registry.models()
        if model not in served:
            raise QueueError(
                f"no genseal worker serves model {model!r} (served: "
                f"{', '.join(sorted(served)) or 'none'}); start one with "
                f"`genseal worker --model {model}`"
            )

    def dispatch(self, job_id: str, model: str | None) -> None:
        namespace = self.settings.broker_namespace
        queue = common_queue(namespace) if model is None else model_queue(namespace, model)
        try:
            self.app.send_task(TASK, args=[job_id], queue=queue, retry=True)
        except Exception as exc:  # kombu and redis errors alike: the broker is unreachable
            raise QueueError(f"could not hand the job to the broker: {exc}") from exc

    def _reap(self) -> None:
        interval = max(self.settings.job_lease_seconds / 2, 0.5)
        while not self._stop.wait(interval):
            try:
                requeued, failed = self.jobs.recover_expired()
                for job_id in requeued:
                    self.dispatch(job_id, route_of(self.jobs, job_id, self.settings.model))
            except (StoreError, QueueError) as exc:
                log.warning("reaper failed", error=str(exc))
                continue
            if requeued or failed:
                log.warning("recovered interrupted jobs", requeued=requeued, failed=failed)


def route_of(jobs: JobStore, job_id: str, default_model: str) -> str | None:
    """The model whose queue a stored job goes to (None: any worker)."""
    job = jobs.load(job_id)
    if job.kind == "seal":
        return None
    model = job.request.get("model")
    return model if isinstance(model, str) and model else default_model
