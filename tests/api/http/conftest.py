"""What the HTTP tests share: a deployment (a real server per job backend, three tenants), an
open server without API keys and a headless Chromium to drive the pages it serves."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import uvicorn

from api.http import create_app
from api.tenants import IssuedKey, TenantStore
from gen import SealedGenerationService
from genseal.settings import Settings
from tests.api.conftest import BACKENDS, backend_settings, serving

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

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
        webhook_ports=[],  # on a port of its own
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


CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


@dataclass
class OpenServer:
    url: str
    service: SealedGenerationService


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def open_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenServer]:
    """A genseal server without API keys, as an auditor's deployment might run it; up (not
    necessarily ready: nothing is generated through it)."""
    home = tmp_path_factory.mktemp("open-server-home")
    service = SealedGenerationService(Settings(home=home))
    port = _free_port()
    config = uvicorn.Config(create_app(service), host="127.0.0.1", port=port, log_level="warning")
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz").status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.05)
    else:
        raise RuntimeError("the genseal server did not start")
    yield OpenServer(url=url, service=service)
    uv.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    """Debian's headless Chromium through its chromedriver; its performance log records the
    page's network events (``get_log("performance")``)."""
    if shutil.which(CHROMIUM) is None or shutil.which(CHROMEDRIVER) is None:
        reason = (
            f"needs Chromium and its driver ({CHROMIUM}, {CHROMEDRIVER}): "
            "apt-get install chromium chromium-driver"
        )
        # CI installs both (.ci/run): there the pages must be tested, never skipped.
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.fail("Chromium is here but selenium is not: pip install -e '.[dev]'")

    options = webdriver.ChromeOptions()
    # Both paths given: Selenium then never looks for (or downloads) a browser or driver.
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1280,1000",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()
