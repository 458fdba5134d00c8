"""A real genseal HTTP server on a free loopback port, shared by the API tests of a module.

Every such server runs on both job backends (``BACKENDS``): the embedded default (SQLite, the
in-process worker) and the one at scale (PostgreSQL, a Celery worker on a real Redis broker,
its queues in a namespace of their own).
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from api.http import create_app
from api.jobs._celery_worker import WorkerProcess, advertiser, build_worker_app, worker_queues
from gen import SealedGenerationService
from genseal.settings import Settings
from tests.conftest import require_redis, throwaway_postgres

API_KEY = "sk-genseal-test"


@dataclass
class Server:
    url: str
    service: SealedGenerationService


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running(app: Any) -> Iterator[str]:
    """Serve ``app`` on a free loopback port; yields its base URL."""
    port = _free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    # Ready, not only up: tests must not race the warm-up (model, classifiers, workers).
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=10).status_code == 200:
                break
            time.sleep(0.2)
        except httpx.TransportError:
            time.sleep(0.05)
    else:
        raise RuntimeError("the genseal server did not start")
    try:
        yield url
    finally:
        uv.should_exit = True
        thread.join(timeout=30)


BACKENDS = [
    pytest.param("embedded", id="embedded"),
    pytest.param("scale", id="scale", marks=pytest.mark.services),
]


@contextmanager
def backend_settings(settings: Settings, backend: str) -> Iterator[Settings]:
    """``settings`` for the backend: as given, or on a fresh PostgreSQL database with the
    Celery job backend on the test Redis."""
    if backend == "embedded":
        yield settings
        return
    broker = require_redis()
    with throwaway_postgres() as database:
        yield settings.model_copy(
            update={
                "database_url": database,
                "job_backend": "celery",
                "broker_url": broker,
                "broker_namespace": f"genseal-test-{uuid.uuid4().hex[:8]}",
            }
        )


@contextmanager
def celery_worker(service: SealedGenerationService) -> Iterator[None]:
    """A Celery worker in this process (two threads) running jobs with ``service``."""
    from celery.contrib.testing.worker import start_worker

    settings = service.settings
    models = [settings.model]
    app = build_worker_app(settings, models, process=WorkerProcess.from_service(service))
    name = f"test-{uuid.uuid4().hex[:6]}@{socket.gethostname()}"
    advertising = advertiser(settings, name, models, 2)
    advertising.start()
    try:
        with start_worker(
            app,
            pool="threads",
            concurrency=2,
            perform_ping_check=False,
            queues=worker_queues(settings, models),
            hostname=name,
            loglevel="WARNING",
            shutdown_timeout=60,
        ):
            yield
    finally:
        advertising.stop()
        advertising.registry.close()


@contextmanager
def serving(
    settings: Settings, **app_options: Any
) -> Iterator[tuple[str, SealedGenerationService]]:
    """A service and its HTTP app (and, with the celery backend, a worker) on loopback."""
    service = SealedGenerationService(settings)
    app = create_app(service, **app_options)
    if settings.job_backend != "celery":
        with running(app) as url:
            yield url, service
        return
    with celery_worker(service), running(app) as url:
        yield url, service


@pytest.fixture(scope="module", params=BACKENDS)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    home: Path = tmp_path_factory.mktemp("api-home")
    base = Settings(home=home, api_keys=[API_KEY])
    with backend_settings(base, request.param) as settings, serving(settings) as (url, service):
        yield Server(url=url, service=service)
