"""What the API and the workers agree on when jobs travel through Celery: broker settings,
the task's name, queue routing by model, and the registry of live workers.

Delivery guarantees come from these settings together with the job table:

- ``task_acks_late``: a job message is acknowledged after its answer is stored, never before;
  a worker that dies mid-job leaves it unacknowledged, and Redis delivers it again once
  ``visibility_timeout`` passes (``GENSEAL_BROKER_VISIBILITY_TIMEOUT_SECONDS``).
- ``task_reject_on_worker_lost``: a worker child killed mid-job sends its message straight back.
- ``worker_prefetch_multiplier = 1``: a process holds one job at a time, none waits behind a
  long generation while another worker idles.
- Redis itself must keep what it holds (``appendonly yes``), or a restart empties the queues;
  the README's "Running at scale" lists the server settings.

A message only says "run job X". Whoever claims the row first runs it (``JobStore.claim_id``);
a second delivery finds it taken or done, so a job completes once however often it is sent.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import structlog
from celery import Celery

from genseal.errors import QueueError
from genseal.settings import Settings

__all__ = [
    "TASK",
    "Advertiser",
    "WorkerRegistry",
    "celery_app",
    "common_queue",
    "finished_channel",
    "model_queue",
    "process_name",
]

log = structlog.get_logger("genseal.worker")

TASK = "genseal.run_job"


def common_queue(namespace: str) -> str:
    """Jobs any worker can run (sealing an uploaded image needs no model)."""
    return namespace


def model_queue(namespace: str, model: str) -> str:
    """The queue of jobs for one model: only workers that load it consume it."""
    return f"{namespace}.model.{model}"


def finished_channel(namespace: str) -> str:
    """Where workers announce finished jobs (Redis pub/sub), so waiting requests wake at once."""
    return f"{namespace}:finished"


def celery_app(settings: Settings) -> Celery:
    app = Celery("genseal", broker=settings.broker_url, set_as_current=False)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        task_default_queue=common_queue(settings.broker_namespace),
        task_create_missing_queues=True,
        task_serializer="json",
        accept_content=["json"],
        broker_transport_options={
            "visibility_timeout": settings.broker_visibility_timeout_seconds,
        },
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=3.0,
        # A publish that cannot reach the broker fails fast as a 503, not a hanging request.
        task_publish_retry_policy={
            "max_retries": 2,
            "interval_start": 0.2,
            "interval_step": 0.5,
            "interval_max": 1.0,
        },
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        # A replacement child loads its models before it reports ready; with Celery's 4 s
        # default the pool kills it, and every replacement after it, for ever.
        worker_proc_alive_timeout=settings.worker_start_timeout_seconds,
    )
    return app


class WorkerRegistry:
    """Live workers and the models they serve, as short-lived keys in the broker's Redis.

    A worker re-advertises every ``ttl / 3`` seconds; a key not renewed expires, so a dead
    worker drops out within ``ttl`` seconds. The API reads the registry before queueing a job
    for a model, so a job nobody could run is refused (503) instead of waiting forever.
    """

    def __init__(self, broker_url: str, namespace: str, *, ttl: float = 30.0) -> None:
        import redis

        self.ttl = ttl
        self._prefix = f"{namespace}:worker:"
        self._finished = finished_channel(namespace)
        self._redis = redis.Redis.from_url(
            broker_url, socket_connect_timeout=3, socket_timeout=3, health_check_interval=10
        )
        self._cache: tuple[float, dict[str, dict[str, Any]]] | None = None

    def advertise(self, name: str, info: dict[str, Any]) -> None:
        key = self._prefix + name
        self._redis.set(key, json.dumps(info), px=int(self.ttl * 1000))

    def withdraw(self, name: str) -> None:
        self._redis.delete(self._prefix + name)

    def workers(self, *, max_age: float = 2.0) -> dict[str, dict[str, Any]]:
        """Live workers by name (cached for ``max_age`` seconds)."""
        now = time.monotonic()
        if self._cache is not None and now - self._cache[0] < max_age:
            return self._cache[1]
        try:
            keys = list(self._redis.scan_iter(match=self._prefix + "*", count=500))
            values = self._redis.mget(keys) if keys else []
        except Exception as exc:  # redis raises its own tree; all mean "unreachable"
            raise QueueError(f"the job broker is unreachable: {exc}") from exc
        found: dict[str, dict[str, Any]] = {}
        for key, value in zip(keys, values, strict=True):
            if value is not None:
                name = key.decode()[len(self._prefix) :]
                found[name] = json.loads(value)
        self._cache = (now, found)
        return found

    def models(self) -> dict[str, int]:
        """How many worker processes serve each model."""
        served: dict[str, int] = {}
        for info in self.workers().values():
            for model in info.get("models", []):
                served[model] = served.get(model, 0) + int(info.get("concurrency", 1))
        return served

    def announce_finished(self, job_id: str) -> None:
        """Tell waiting API replicas a job's answer is stored (best effort: they also poll)."""
        try:
            self._redis.publish(self._finished, job_id)
        except Exception as exc:  # redis raises its own tree; a missed notice costs a poll
            log.warning("could not announce a finished job", job_id=job_id, error=str(exc))

    def finished_jobs(self, stop: threading.Event) -> Iterator[str]:
        """Ids of jobs workers announce as finished, until ``stop`` (reconnecting as needed)."""
        while not stop.is_set():
            try:
                pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(self._finished)
                while not stop.is_set():
                    message = pubsub.get_message(timeout=1.0)
                    if message is not None and isinstance(message.get("data"), bytes):
                        yield message["data"].decode()
            except Exception as exc:  # the broker restarting: subscribe again shortly
                log.warning("lost the finished-jobs channel", error=str(exc))
                stop.wait(1.0)

    def close(self) -> None:
        self._redis.close()


class Advertiser:
    """Keeps one worker's registry entry alive from a thread, and removes it on stop."""

    def __init__(self, registry: WorkerRegistry, name: str, info: dict[str, Any]) -> None:
        self.registry, self.name, self.info = registry, name, info
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="genseal-advertise", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        with contextlib.suppress(Exception):  # the broker may be gone; the key expires anyway
            self.registry.withdraw(self.name)

    def _run(self) -> None:
        while True:
            try:
                self.registry.advertise(self.name, self.info)
            except Exception as exc:  # the broker may be restarting; keep trying
                log.warning("could not advertise the worker", error=str(exc))
            if self._stop.wait(self.registry.ttl / 3):
                return


def process_name(role: str) -> str:
    return f"{role}@{socket.gethostname()}:{os.getpid()}"
