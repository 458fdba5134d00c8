"""The job layer's seam: who runs the jobs the API accepts.

Two implementations, chosen by ``GENSEAL_JOB_BACKEND`` alone; the job table (``JobStore``) is
the truth for both, the queue only says "run job X":

- ``inprocess`` (``JobRunner``, the embedded default): worker threads inside ``genseal serve``
  claim queued rows. A synchronous request runs in the API process.
- ``celery`` (``CeleryQueue``): ``genseal worker`` processes on other machines receive job ids
  through a Redis broker, routed by model. Every request, synchronous ones too, becomes a job;
  a synchronous request waits for its job's answer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from api.jobs._model import Reply, StoredJob
from api.jobs._operations import Operations
from api.jobs._store import JobStore
from genseal.settings import Settings

__all__ = ["JobQueue", "make_queue"]


class JobQueue(Protocol):
    #: True: synchronous requests run in the API process (``run_inline``); False: they are
    #: dispatched like asynchronous ones and the API waits for the stored answer.
    inline: bool

    def start(self) -> None: ...

    def stop(self, timeout: float = 30.0) -> None: ...

    def check_model(self, model: str | None) -> None:
        """Raise QueueError when no worker could run a job for this model (before queueing)."""
        ...

    def dispatch(self, job_id: str, model: str | None) -> None:
        """Have a worker run this queued job; QueueError when it cannot be handed on."""
        ...

    def worker_name(self, index: int | str) -> str: ...

    async def finished(self, job_id: str, timeout: float) -> None:
        """Return when the job may have finished (a worker said so), or after ``timeout``."""
        ...

    def run_inline(self, job_id: str, worker: str) -> Reply:
        """Run a job this thread already holds (only when ``inline``)."""
        ...


def make_queue(
    settings: Settings,
    jobs: JobStore,
    operations: Operations,
    on_finished: Callable[[StoredJob, Reply], None] | None = None,
) -> JobQueue:
    if settings.job_backend == "celery":
        from api.jobs._celery_queue import CeleryQueue

        return CeleryQueue(settings, jobs)
    from api.jobs._worker import JobRunner

    return JobRunner(
        jobs,
        operations,
        threads=settings.workers,
        lease_seconds=settings.job_lease_seconds,
        on_finished=on_finished,
    )
