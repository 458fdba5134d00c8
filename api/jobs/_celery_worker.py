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

With ``GENSEAL_WORKER_METRICS_PORT`` set, the main process serves Prometheus metrics of what
every child did (``api.jobs._metrics``): the children count into files the main process merges.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from dataclasses import dataclass
from typing import Any

import structlog
from celery import Celery, Task
from celery.signals import worker_process_init, worker_process_shutdown

from api._files import ImageFiles, load_secret
from api._metrics import signer_not_after
from api.jobs._celery_app import (
    TASK,
    Advertiser,
    WorkerRegistry,
    celery_app,
    common_queue,
    model_queue,
    process_name,
)
from api.jobs._metrics import (
    WorkerMetrics,
    serve_worker_metrics,
    worker_process_stopped,
)
from api.jobs._model import Reply, StoredJob, status_of
from api.jobs._operations import Operations
from api.jobs._store import JobStore
from api.jobs._worker import execute_job
from gen import SealedGenerationService
from genseal.errors import StoreError
from genseal.settings import Settings

__all__ = ["WorkerProcess", "advertiser", "build_worker_app", "run_worker", "worker_queues"]

log = structlog.get_logger("genseal.worker")

#: How long a task waits before trying again after the database failed it.
_STORE_RETRY_SECONDS = 2.0


@dataclass
class WorkerProcess:
    """What one worker process runs jobs with (made after the fork, once)."""

    service: SealedGenerationService
    jobs: JobStore
    operations: Operations
    registry: WorkerRegistry
    name: str
    metrics: WorkerMetrics

    @classmethod
    def build(
        cls,
        settings: Settings,
        models: list[str],
        *,
        service: SealedGenerationService | None = None,
    ) -> WorkerProcess:
        service = service or SealedGenerationService(settings)
        for model in models:
            service.backend(model)  # loaded now, not on the first job
        database = service.parts.database  # one engine for every store of the process
        jobs = JobStore(
            database,
            lease_seconds=settings.job_lease_seconds,
            max_attempts=settings.job_max_attempts,
        )
        files = ImageFiles(
            database, load_secret(settings.home, "url-signing.key"), settings.image_url_ttl_seconds
        )
        registry = WorkerRegistry(settings.broker_url, settings.broker_namespace)
        # Made once the models are loaded: from here on the process counts as up.
        expiry = signer_not_after(service.identity)
        metrics = WorkerMetrics(signer_expiry=None if expiry is None else expiry.timestamp())
        operations = Operations(service, files, on_result=metrics.observe_generation)
        return cls(service, jobs, operations, registry, process_name("worker"), metrics)

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
            reply = execute_job(
                self.jobs, self.operations, job, self.name, lease, on_finished=self._finished
            )
            self.registry.announce_finished(job_id)
        except StoreError as exc:
            log.warning("database unavailable; job put back", job_id=job_id, error=str(exc))
            raise task.retry(countdown=_STORE_RETRY_SECONDS, max_retries=None) from exc
        return f"finished with HTTP {reply.status}"

    def _finished(self, job: StoredJob, reply: Reply) -> None:
        self.metrics.observe_job(job.kind, status_of(reply))

    @classmethod
    def from_service(cls, service: SealedGenerationService) -> WorkerProcess:
        settings = service.settings
        return cls.build(settings, [], service=service)


_process: WorkerProcess | None = None
_process_lock = threading.Lock()


def build_worker_app(
    settings: Settings, models: list[str], *, process: WorkerProcess | None = None
) -> Celery:
    """The worker's Celery app. ``process``: run jobs with it (one process, e.g. a test's
    service); otherwise each worker process builds its own after the fork."""
    app = celery_app(settings)

    def current() -> WorkerProcess:
        global _process
        if process is not None:
            return process
        with _process_lock:
            if _process is None:
                _process = WorkerProcess.build(settings, models)
            return _process

    # shared=False: a shared task would join every later app, and the first closure would win.
    @app.task(name=TASK, bind=True, shared=False, acks_late=True, reject_on_worker_lost=True)  # type: ignore[untyped-decorator]
    def run_job(self: Task, job_id: str) -> str:
        return current().run(self, job_id)

    if process is None:

        def on_process_init(**_: Any) -> None:
            _share_cores(settings)
            current()

        def on_process_shutdown(**_: Any) -> None:
            worker_process_stopped()
            if _process is not None:
                _process.jobs.close()
                _process.registry.close()

        # weak=False: the handlers are closures that would otherwise be collected.
        worker_process_init.connect(on_process_init, weak=False)
        worker_process_shutdown.connect(on_process_shutdown, weak=False)
    return app


def worker_queues(settings: Settings, models: list[str]) -> list[str]:
    namespace = settings.broker_namespace
    return [common_queue(namespace), *(model_queue(namespace, m) for m in models)]


def advertiser(settings: Settings, name: str, models: list[str], concurrency: int) -> Advertiser:
    info = {
        "models": models,
        "concurrency": concurrency,
        "host": socket.gethostname(),
        "pid": os.getpid(),
    }
    return Advertiser(WorkerRegistry(settings.broker_url, settings.broker_namespace), name, info)


def _share_cores(settings: Settings) -> None:
    import torch

    processes = max(settings.worker_concurrency, 1)
    torch.set_num_threads(max((os.cpu_count() or 1) // processes, 1))


def run_worker(settings: Settings, models: list[str], *, loglevel: str = "INFO") -> None:
    """Run a worker until it is stopped (SIGTERM: finish the jobs in hand, then exit).

    With ``worker_metrics_port`` set, its processes' metrics are served there meanwhile."""
    app = build_worker_app(settings, models)
    name = process_name("genseal")
    with contextlib.ExitStack() as serving:
        if settings.worker_metrics_port:
            # Before the pool forks: the children inherit where to write their values.
            url = serving.enter_context(serve_worker_metrics(settings.worker_metrics_port))
            log.info("serving worker metrics", url=url)
        advertising = advertiser(settings, name, models, settings.worker_concurrency)
        advertising.start()
        try:
            app.worker_main(
                [
                    "worker",
                    f"--loglevel={loglevel}",
                    f"--concurrency={settings.worker_concurrency}",
                    "--pool=prefork",
                    f"--queues={','.join(worker_queues(settings, models))}",
                    f"--hostname={name}",
                    "--without-gossip",
                    "--without-mingle",
                ]
            )
        finally:
            advertising.stop()
            advertising.registry.close()
