"""``genseal worker``: a Celery worker that runs generation jobs (prefork, one job per process).

Each worker *process* builds its own ``SealedGenerationService`` after the fork
(``worker_process_init``): models are loaded once per process and stay loaded, and the C2PA
signer is made in the process that signs (a c2pa-python Context/Signer made before ``fork`` is
invalid in the child). Torch gets the machine's cores divided among the processes.

The worker consumes one queue per model it serves (``--model``, loaded at start) plus the common
queue, and advertises itself and its models in the registry while it runs, so the API routes a
job only where its model is loaded.

A task is ``run_job(job_id)``: claim the row (``JobStore.claim_id``), run it, store the answer,
and only then is the message acknowledged (late ack). A delivery that finds the job running
under another worker's live lease comes back when that lease would run out; one that finds it
done is a duplicate and does nothing. A database outage puts the task back with a delay.
"""

from __future__ import annotations

import contextlib
import os
import threading
from dataclasses import dataclass
from typing import Any

import structlog
from celery import Celery, Task
from celery.signals import worker_process_init, worker_process_shutdown

from api._celery_app import (
    COMMON_QUEUE,
    TASK,
    WorkerRegistry,
    celery_app,
    model_queue,
    process_name,
)
from api._files import ImageFiles, load_secret
from api._jobs import JobStore
from api._operations import Operations
from api._worker import execute_job
from gen import SealedGenerationService, Settings
from genseal.errors import StoreError

__all__ = ["WorkerProcess", "build_worker_app", "run_worker"]

log = structlog.get_logger("genseal.worker")

#: How long a task waits before trying again after the database failed it.
_STORE_RETRY_SECONDS = 2.0


@dataclass
class WorkerProcess:
    """What one worker process runs jobs with (made after the fork, once)."""

    service: SealedGenerationService
    jobs: JobStore
    operations: Operations
    name: str

    @classmethod
    def build(cls, settings: Settings, models: list[str]) -> WorkerProcess:
        service = SealedGenerationService(settings)
        for model in models:
            service.backend(model)  # loaded now, not on the first job
        url = settings.store_url
        jobs = JobStore(
            url, lease_seconds=settings.job_lease_seconds, max_attempts=settings.job_max_attempts
        )
        files = ImageFiles(
            url, load_secret(settings.home, "url-signing.key"), settings.image_url_ttl_seconds
        )
        return cls(service, jobs, Operations(service, files), process_name("worker"))

    def run(self, task: Task, job_id: str) -> str:
        lease = self.service.settings.job_lease_seconds
        try:
            job = self.jobs.claim_id(job_id, self.name)
            if job is None:
                left = self.jobs.lease_left(job_id)
                if left is not None:
                    # Running elsewhere: look again when its lease would have run out, in
                    # case that worker died with it.
                    raise task.retry(countdown=left + 1.0, max_retries=None)
                return "done already"
            reply = execute_job(self.jobs, self.operations, job, self.name, lease)
        except StoreError as exc:
            log.warning("database unavailable; job put back", job_id=job_id, error=str(exc))
            raise task.retry(countdown=_STORE_RETRY_SECONDS, max_retries=None) from exc
        return f"finished with HTTP {reply.status}"


_process: WorkerProcess | None = None
_process_lock = threading.Lock()


def build_worker_app(settings: Settings, models: list[str]) -> Celery:
    app = celery_app(settings)

    def current() -> WorkerProcess:
        global _process
        with _process_lock:
            if _process is None:
                _process = WorkerProcess.build(settings, models)
            return _process

    @app.task(name=TASK, bind=True, acks_late=True, reject_on_worker_lost=True)  # type: ignore[untyped-decorator]
    def run_job(self: Task, job_id: str) -> str:
        return current().run(self, job_id)

    def on_process_init(**_: Any) -> None:
        _share_cores(settings)
        current()

    def on_process_shutdown(**_: Any) -> None:
        if _process is not None:
            _process.jobs.close()

    # weak=False: the handlers are closures that would otherwise be collected.
    worker_process_init.connect(on_process_init, weak=False)
    worker_process_shutdown.connect(on_process_shutdown, weak=False)
    return app


def _share_cores(settings: Settings) -> None:
    import torch

    processes = max(settings.worker_concurrency, 1)
    torch.set_num_threads(max((os.cpu_count() or 1) // processes, 1))


def run_worker(settings: Settings, models: list[str], *, loglevel: str = "INFO") -> None:
    """Run a worker until it is stopped (SIGTERM: finish the jobs in hand, then exit)."""
    app = build_worker_app(settings, models)
    name = process_name("genseal")
    registry = WorkerRegistry(settings.broker_url)
    stop = threading.Event()
    info = {
        "models": models,
        "concurrency": settings.worker_concurrency,
        "host": os.uname().nodename,
        "pid": os.getpid(),
    }

    def advertise() -> None:
        while True:
            try:
                registry.advertise(name, info)
            except Exception as exc:  # the broker may be restarting; keep trying
                log.warning("could not advertise the worker", error=str(exc))
            if stop.wait(registry.ttl / 3):
                return

    advertiser = threading.Thread(target=advertise, name="genseal-advertise", daemon=True)
    advertiser.start()
    queues = ",".join([COMMON_QUEUE, *(model_queue(m) for m in models)])
    try:
        app.worker_main(
            [
                "worker",
                f"--loglevel={loglevel}",
                f"--concurrency={settings.worker_concurrency}",
                "--pool=prefork",
                f"--queues={queues}",
                f"--hostname={name}",
                "--without-gossip",
                "--without-mingle",
            ]
        )
    finally:
        stop.set()
        advertiser.join(5)
        with contextlib.suppress(Exception):
            registry.withdraw(name)
        registry.close()
