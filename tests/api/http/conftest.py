"""A deployment the HTTP tests share: a real server per job backend, three tenants."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from api.tenants import IssuedKey, TenantStore
from gen import SealedGenerationService, Settings
from tests.api.conftest import BACKENDS, backend_settings, serving

FAST = {"steps": 2, "seed": 11, "size": "256x256"}
ASYNC = {"Prefer": "respond-async"}


@dataclass
class Deployment:
    url: str
    service: SealedGenerationService
    acme: IssuedKey
    globex: IssuedKey
    slow: IssuedKey

    def headers(self, tenant: IssuedKey, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {tenant.api_key}", **extra}


# One deployment per job backend and module; never longer: an in-process Celery test worker
# must be gone before another module starts its own.
@pytest.fixture(scope="module", params=BACKENDS)
def deployment(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    base = Settings(
        home=tmp_path_factory.mktemp("jobs-home"),
        webhook_allow_private=True,  # the receiver below listens on loopback
        webhook_retry_seconds=0.2,
        rate_limit="1000/minute",
    )
    with backend_settings(base, request.param) as settings:
        tenants = TenantStore(settings.store_url)
        acme, globex = tenants.create("acme"), tenants.create("globex")
        slow = tenants.create("slow", rate_limit="3/minute")
        with serving(settings) as (url, service):
            yield Deployment(url, service, acme, globex, slow)


def wait_for_job(d: Deployment, tenant: IssuedKey, job_id: str, timeout: float = 90) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = httpx.get(f"{d.url}/v1/jobs/{job_id}", headers=d.headers(tenant)).json()
        if job["status"] not in ("queued", "running"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish")
