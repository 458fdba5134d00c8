"""The in-process worker pool of the embedded default: threads that run queued jobs.

Each worker claims a job from the job table, renews its lease while it runs (a heartbeat
thread, so a long generation is not mistaken for a dead worker), and stores the answer. A
reaper puts jobs whose lease expired back in the queue: jobs that were running when a process
died are retried after it (or another process) starts, up to ``job_max_attempts`` times.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import threading
import uuid
from collections.abc import Callable

import structlog

from api.jobs._model import Reply, StoredJob
from api.jobs._operations import Operations
from api.jobs._store import JobStore
from genseal.errors import StoreError

__all__ = ["JobLostError", "JobRunner", "execute_job"]

log = structlog.get_logger("genseal.worker")


class JobLostError(Exception):
    """The job's lease ran out and another worker took it: stop before sealing anything."""


def execute_job(
    jobs: JobStore,
    operations: Operations,
    job: StoredJob,
    worker: str,
    lease_seconds: float,
    *,
    on_finished: Callable[[StoredJob, Reply], None] | None = None,
) -> Reply:
    """Run a job this worker holds: heartbeat while it runs, store the answer, return it.

    The same for in-process threads and Celery workers. The request id is the job's, so a
    retried job seals under the same manifest ids and audit keys (sealing is idempotent).
    """
    state: list[tuple[str, float]] = [("starting", 0.0)]
    done = threading.Event()
    lost = threading.Event()

    def progress(stage: str, fraction: float) -> None:
        if lost.is_set():
            raise JobLostError(f"job {job.id} was handed to another worker")
        state[0] = (stage, round(fraction, 3))

    def heartbeat() -> None:
        while not done.wait(min(lease_seconds / 3, 1.0)):
            try:
                if not jobs.heartbeat(job.id, worker, *state[0]):
                    lost.set()
                    return
            except Exception as exc:
                log.warning("heartbeat failed", job_id=job.id, error=str(exc))

    beat = threading.Thread(target=heartbeat, name=f"genseal-heartbeat-{job.id}", daemon=True)
    beat.start()
    try:
        reply = operations.run(
            job.kind,
            job.request,
            job.input_blob,
            tenant=job.tenant,
            base_url=job.base_url,
            progress=progress,
            request_id=job.id,
        )
    finally:
        done.set()
        beat.join()
    if _transient(reply):
        # The database failed under the job: nothing was released, and the answer is not the
        # job's to keep. Back in the queue (when the database lets us), to run again.
        with contextlib.suppress(StoreError):
            jobs.release(job.id, worker)
        raise StoreError(f"job {job.id} hit an unavailable database; it will run again")
    if jobs.finish(job.id, worker, reply):
        log.info("job finished", job_id=job.id, status=reply.status, attempt=job.attempts)
        if on_finished is not None:
            on_finished(job, reply)
        return reply
    # The lease ran out and the job went to another worker: its answer counts.
    log.warning("job result discarded: no longer ours", job_id=job.id)
    stored = jobs.reply(job.id)
    return stored if stored is not None else reply


def _transient(reply: Reply) -> bool:
    error = reply.body.get("error")
    return reply.status == 503 and isinstance(error, dict) and error.get("code") == StoreError.code


class JobRunner:
    """The in-process ``JobQueue``: worker threads claiming queued rows."""

    inline = True

    def __init__(
        self,
        jobs: JobStore,
        operations: Operations,
        *,
        threads: int,
        lease_seconds: float,
        on_finished: Callable[[StoredJob, Reply], None] | None = None,
        poll_seconds: float = 0.5,
    ) -> None:
        self.jobs = jobs
        self.operations = operations
        self.threads = threads
        self.name = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._lease = lease_seconds
        self._poll = poll_seconds
        self._on_finished = on_finished
        self._wake = threading.Condition()
        self._stop = threading.Event()
        self._pool: list[threading.Thread] = []

    def start(self) -> None:
        requeued, failed = self.jobs.recover_expired()
        if requeued or failed:
            log.warning("recovered interrupted jobs", requeued=requeued, failed=failed)
        self._stop.clear()
        self._pool = [
            threading.Thread(target=self._work, name=f"genseal-worker-{i}", daemon=True)
            for i in range(self.threads)
        ]
        self._pool.append(threading.Thread(target=self._reap, name="genseal-reaper", daemon=True))
        for thread in self._pool:
            thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Finish jobs in hand (up to ``timeout``); queued ones wait for the next start."""
        self._stop.set()
        with self._wake:
            self._wake.notify_all()
        for thread in self._pool:
            thread.join(timeout)

    def check_model(self, model: str | None) -> None:
        """Every model is served here (a missing one fails as the job runs)."""

    def dispatch(self, job_id: str, model: str | None) -> None:
        self.notify()

    async def finished(self, job_id: str, timeout: float) -> None:
        """Jobs a caller waits for run inline here; nothing to be told."""
        await asyncio.sleep(timeout)

    def notify(self) -> None:
        """A job was queued: wake a worker now rather than at its next poll."""
        with self._wake:
            self._wake.notify()

    def worker_name(self, index: int | str) -> str:
        return f"{self.name}/{index}"

    def run_inline(self, job_id: str, worker: str) -> Reply:
        """Run a job this thread already holds (a sync request with an Idempotency-Key)."""
        return self._execute(self.jobs.load(job_id), worker)

    def _work(self) -> None:
        worker = self.worker_name(threading.current_thread().name.rsplit("-", 1)[-1])
        while not self._stop.is_set():
            try:
                job = self.jobs.claim(worker)
            except Exception as exc:  # a database hiccup must not end the worker
                log.warning("claim failed", error=str(exc))
                job = None
            if job is None:
                with self._wake:
                    self._wake.wait(self._poll)
                continue
            try:
                self._execute(job, worker)
            except StoreError as exc:
                log.warning("job put back", job_id=job.id, error=str(exc))
                self._stop.wait(self._poll)

    def _execute(self, job: StoredJob, worker: str) -> Reply:
        return execute_job(
            self.jobs, self.operations, job, worker, self._lease, on_finished=self._on_finished
        )

    def _reap(self) -> None:
        while not self._stop.wait(max(self._lease / 2, 0.5)):
            try:
                requeued, failed = self.jobs.recover_expired()
            except Exception as exc:
                log.warning("reaper failed", error=str(exc))
                continue
            if requeued:
                self.notify()
            if requeued or failed:
                log.warning("recovered interrupted jobs", requeued=requeued, failed=failed)
