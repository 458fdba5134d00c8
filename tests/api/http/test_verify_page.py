"""The auditor's page, ``GET /verify``, driven in headless Chromium against a real server."""

from __future__ import annotations

import base64
import io
import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from PIL import Image

from api.http import create_app
from api.http._verify_page import verify_page_router
from gen import GenerationRequest, SealedGenerationService, Settings
from provenance import C2paSigner, SealClaim, init_identity
from tests._media import photo

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# Each case is one upload and one render: seconds at most, even on a busy machine.
WAIT_SECONDS = 20


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Page:
    url: str
    service: SealedGenerationService
    files: Path


@pytest.fixture(scope="module")
def page_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Page]:
    """A genseal server without API keys, as an auditor's deployment might run it."""
    home = tmp_path_factory.mktemp("verify-page-home")
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
    yield Page(url=url, service=service, files=tmp_path_factory.mktemp("verify-page-files"))
    uv.should_exit = True
    thread.join(timeout=10)


@dataclass
class Sealed:
    data: bytes
    manifest_id: str
    decision: str


@pytest.fixture(scope="module")
def sealed(page_server: Page) -> Sealed:
    """An image the server generated and sealed."""
    result = page_server.service.generate(
        GenerationRequest(prompt="a lighthouse", size=(256, 256), steps=2, seed=7)
    )
    assert result.status == "released", result.decision
    image = result.images[0]
    return Sealed(image.data, image.manifest_id, image.decision.action.value)


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    if shutil.which(CHROMIUM) is None or shutil.which(CHROMEDRIVER) is None:
        reason = (
            f"needs Chromium and its driver ({CHROMIUM}, {CHROMEDRIVER}): "
            "apt-get install chromium chromium-driver"
        )
        # CI installs both (.ci/run): there the page must be tested, never skipped.
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
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def write(page: Page, name: str, data: bytes) -> str:
    path = page.files / name
    path.write_bytes(data)
    return str(path)


def manifest_store(page: Page, manifest_id: str) -> bytes:
    """The sidecar an auditor downloads from GET /v1/manifests/{id}."""
    record = page.service.store.get(manifest_id)
    assert record is not None
    return record.manifest_store


def strip(data: bytes) -> bytes:
    """Decode and re-save: what a platform that drops metadata does."""
    image = Image.open(io.BytesIO(data))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def verify_in_page(
    driver: WebDriver, page: Page, image: str, sidecar: str | None = None
) -> str | None:
    """Open the page, choose the files, wait for the report or an error; return the badge text
    (None when the page shows an error instead)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(f"{page.url}/verify")
    if sidecar is not None:
        driver.find_element(By.ID, "manifest").send_keys(sidecar)
    driver.find_element(By.ID, "file").send_keys(image)

    def settled(d: WebDriver) -> bool:
        return bool(
            d.find_element(By.ID, "report").is_displayed()
            or d.find_element(By.ID, "error").is_displayed()
        )

    WebDriverWait(driver, WAIT_SECONDS).until(settled)
    if driver.find_element(By.ID, "error").is_displayed():
        return None
    return text(driver, "state")


def text(driver: WebDriver, testid: str) -> str:
    from selenium.webdriver.common.by import By

    element = driver.find_element(By.CSS_SELECTOR, f'[data-testid="{testid}"]')
    return str(element.text if element.is_displayed() else "")


def shown(driver: WebDriver, testid: str) -> bool:
    from selenium.webdriver.common.by import By

    return bool(driver.find_element(By.CSS_SELECTOR, f'[data-testid="{testid}"]').is_displayed())


def test_the_page_is_static_offline_and_locked_down(page_server: Page) -> None:
    response = httpx.get(f"{page_server.url}/verify")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    policy = response.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "connect-src 'self'" in policy
    assert "unsafe-inline" not in policy and "'sha256-" in policy
    # Nothing is loaded from anywhere else: it works on a machine without internet.
    assert "http://" not in response.text and "https://" not in response.text
    assert ".innerHTML" not in response.text


def test_the_page_is_documented_under_provenance() -> None:
    app = FastAPI()
    app.include_router(verify_page_router())
    operation = app.openapi()["paths"]["/verify"]["get"]
    assert operation["tags"] == ["provenance"] and operation["summary"]
    assert "text/html" in operation["responses"]["200"]["content"]


def test_an_image_sealed_by_the_server_is_trusted(
    browser: WebDriver, page_server: Page, sealed: Sealed
) -> None:
    data, manifest_id = sealed.data, sealed.manifest_id
    assert verify_in_page(browser, page_server, write(page_server, "sealed.png", data)) == "trusted"
    assert text(browser, "signer") == "genseal development signer"
    assert text(browser, "c2pa-source") == "embedded in the file"
    assert text(browser, "digital-source-type").endswith("/trainedAlgorithmicMedia")
    assert "c2pa.created" in text(browser, "actions")
    assert text(browser, "moderation-decision") == sealed.decision
    assert text(browser, "moderation-policy")
    assert text(browser, "watermark-detected") == "yes"
    # The stored manifest was found too, by the manifest itself among other evidence.
    assert shown(browser, "recovered")
    assert text(browser, "recovered-id") == manifest_id
    assert text(browser, "evidence").startswith("manifest")
    assert shown(browser, "preview")


def test_a_stripped_copy_is_recovered_from_the_store(
    browser: WebDriver, page_server: Page, sealed: Sealed
) -> None:
    data, manifest_id = sealed.data, sealed.manifest_id
    path = write(page_server, "stripped.png", strip(data))
    assert verify_in_page(browser, page_server, path) == "recovered"
    assert not shown(browser, "recovered")  # the badge itself says it
    assert text(browser, "recovered-id") == manifest_id
    assert "watermark" in text(browser, "evidence")
    assert text(browser, "distance").endswith("/ 256 bits")
    assert text(browser, "pixels-altered").startswith("unknown")
    assert text(browser, "moderation-decision") == sealed.decision
    assert "no Content Credentials" in text(browser, "summary")


def test_a_photo_from_elsewhere_has_no_provenance(browser: WebDriver, page_server: Page) -> None:
    path = write(page_server, "photo.png", photo("coffee"))
    assert verify_in_page(browser, page_server, path) == "no provenance"
    assert not shown(browser, "recovered")
    assert text(browser, "watermark-detected") == "no"


def test_a_file_that_is_no_image_shows_the_error(browser: WebDriver, page_server: Page) -> None:
    path = write(page_server, "notes.txt", b"these are not the pixels you are looking for\n")
    assert verify_in_page(browser, page_server, path) is None
    assert "not an image" in text(browser, "error")
    assert not shown(browser, "report")


def test_a_sidecar_is_verified_against_the_file(
    browser: WebDriver, page_server: Page, sealed: Sealed
) -> None:
    data, manifest_id = sealed.data, sealed.manifest_id
    sidecar_bytes = manifest_store(page_server, manifest_id)
    sidecar = write(page_server, f"{manifest_id}.c2pa", sidecar_bytes)
    image = write(page_server, "sealed-again.png", data)
    assert verify_in_page(browser, page_server, image, sidecar) == "trusted"
    assert text(browser, "c2pa-source") == "sidecar manifest (.c2pa)"
    # genseal's manifests bind the file with the manifest inside: a stripped copy does not
    # satisfy them, and the page says so while recovery still names the sealed manifest.
    stripped = write(page_server, "stripped-again.png", strip(data))
    assert verify_in_page(browser, page_server, stripped, sidecar) == "invalid"
    assert "assertion.dataHash.mismatch" in text(browser, "status-codes")
    assert shown(browser, "recovered")
    assert text(browser, "recovered-id") == manifest_id
    # The attestation shown is genseal's stored one, not the one that failed to hold.
    assert text(browser, "moderation-from").startswith("the manifest genseal stored")


_DROP = """
const [zone, files] = [document.getElementById("drop"), arguments[0]];
const transfer = new DataTransfer();
for (const [name, type, b64] of files) {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  transfer.items.add(new File([bytes], name, {type: type}));
}
const init = {dataTransfer: transfer, bubbles: true, cancelable: true};
zone.dispatchEvent(new DragEvent("drop", init));
"""


def test_an_image_and_its_sidecar_dropped_together(
    browser: WebDriver, page_server: Page, sealed: Sealed
) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    sidecar = manifest_store(page_server, sealed.manifest_id)
    browser.get(f"{page_server.url}/verify")
    files = [
        (f"{sealed.manifest_id}.c2pa", "", base64.b64encode(sidecar).decode()),
        ("dropped.png", "image/png", base64.b64encode(sealed.data).decode()),
    ]
    browser.execute_script(_DROP, files)
    WebDriverWait(browser, WAIT_SECONDS).until(lambda d: shown(d, "report"))
    assert text(browser, "state") == "trusted"
    assert text(browser, "c2pa-source") == "sidecar manifest (.c2pa)"
    assert shown(browser, "clear-manifest")


def test_a_garbage_sidecar_shows_the_error(
    browser: WebDriver, page_server: Page, sealed: Sealed
) -> None:
    image = write(page_server, "sealed-third.png", sealed.data)
    sidecar = write(page_server, "garbage.c2pa", b"not a manifest store at all")
    assert verify_in_page(browser, page_server, image, sidecar) is None
    assert "sidecar" in text(browser, "error")


def test_report_strings_are_shown_as_text_never_markup(
    browser: WebDriver, page_server: Page, tmp_path: Path
) -> None:
    # Anyone can sign a manifest and write anything in it; this signer is not trusted here.
    signer = C2paSigner(init_identity(tmp_path / "stranger"))
    hostile = '<img src=x onerror="document.title=\'pwned\'"><b id="pwned">bold</b>'
    claim = SealClaim(
        genseal_id="gs_stranger",
        title=hostile,
        software_agent=hostile,
        model_id="tiny",
        kind="created",
        moderation={"decision": hostile, "policy": {"id": hostile, "version": 1}, "checks": []},
        soft_binding_alg="org.example",
        soft_binding_value="00000000",
    )
    signed = signer.sign(photo("chelsea"), "image/png", claim)
    path = write(page_server, "stranger.png", signed.data)
    assert verify_in_page(browser, page_server, path) == "valid"
    assert shown(browser, "state-note")  # a warning: intact, but not a trusted signer
    assert text(browser, "moderation-decision") == hostile
    assert "does not trust" in text(browser, "moderation")
    assert browser.execute_script("return document.getElementById('pwned')") is None
    assert browser.title != "pwned"
