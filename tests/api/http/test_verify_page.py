"""The auditor's page, ``GET /verify``, driven in headless Chromium against a real server."""

from __future__ import annotations

import base64
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
from fastapi import FastAPI
from PIL import Image

from api.http._verify_page import verify_page_router
from gen import ConsentAttestation, GenerationRequest, SealedGenerationService
from provenance import C2paSigner, SealClaim, init_identity
from tests._media import photo
from tests.api.http.conftest import OpenServer

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

# Each case is one upload and one render: seconds at most, even on a busy machine.
WAIT_SECONDS = 20


@dataclass
class Page:
    url: str
    service: SealedGenerationService
    files: Path


@pytest.fixture(scope="module")
def page_server(open_server: OpenServer, tmp_path_factory: pytest.TempPathFactory) -> Page:
    """The open server, and a folder for the files the browser uploads to it."""
    files = tmp_path_factory.mktemp("verify-page-files")
    return Page(url=open_server.url, service=open_server.service, files=files)


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
def sealed_with_consent(page_server: Page) -> Sealed:
    """An image sealed for a request that carried a consent attestation."""
    consent = ConsentAttestation(subject="user-7", reference="consent-record-1")
    result = page_server.service.generate(
        GenerationRequest(
            prompt="a portrait of a lighthouse keeper",
            size=(256, 256),
            steps=2,
            seed=8,
            consent=consent,
        )
    )
    assert result.status == "released", result.decision
    image = result.images[0]
    return Sealed(image.data, image.manifest_id, image.decision.action.value)


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


def items(driver: WebDriver, testid: str) -> list[str]:
    from selenium.webdriver.common.by import By

    found = driver.find_elements(By.CSS_SELECTOR, f'[data-testid="{testid}"] li')
    return [str(item.text) for item in found]


def rendered(driver: WebDriver, testid: str) -> bool:
    """Whether the page built an element for ``testid`` (parts of the report only some reports
    have are left out, not hidden)."""
    from selenium.webdriver.common.by import By

    return bool(driver.find_elements(By.CSS_SELECTOR, f'[data-testid="{testid}"]'))


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
    assert not rendered(browser, "consent")  # none was given
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
    assert not shown(browser, "warnings-box")


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


def test_the_warnings_and_the_consent_of_a_sealed_image_are_shown(
    browser: WebDriver, page_server: Page, sealed_with_consent: Sealed
) -> None:
    data = sealed_with_consent.data
    report = httpx.post(f"{page_server.url}/v1/verify", files={"file": ("c.png", data)}).json()
    path = write(page_server, "consented.png", data)
    assert verify_in_page(browser, page_server, path) == "trusted"
    # Every warning of the report, as the report words it: this server signs without a TSA.
    assert shown(browser, "warnings-box")
    assert items(browser, "warnings") == report["warnings"]
    assert any("no RFC 3161 time-stamp" in warning for warning in report["warnings"])
    assert text(browser, "consent-subject") == "user-7"
    assert text(browser, "consent-reference") == "consent-record-1"
    assert text(browser, "consent-scope") == "image-to-image"
    # A stripped copy carries no manifest; the consent stays on record in the one genseal
    # stored.
    stripped = write(page_server, "consented-stripped.png", strip(data))
    assert verify_in_page(browser, page_server, stripped) == "recovered"
    assert text(browser, "moderation-from").startswith("the manifest genseal stored")
    assert text(browser, "consent-subject") == "user-7"
    assert text(browser, "consent-reference") == "consent-record-1"


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
        moderation={
            "decision": hostile,
            "policy": {"id": hostile, "version": 1},
            "checks": [],
            "consent": {"subject": hostile, "reference": {"nested": hostile}, "scope": hostile},
        },
        soft_binding_alg="org.example",
        soft_binding_value="00000000",
    )
    signed = signer.sign(photo("chelsea"), "image/png", claim)
    path = write(page_server, "stranger.png", signed.data)
    assert verify_in_page(browser, page_server, path) == "valid"
    assert shown(browser, "state-note")  # a warning: intact, but not a trusted signer
    assert text(browser, "moderation-decision") == hostile
    assert text(browser, "consent-subject") == hostile
    assert text(browser, "consent-reference") == '{"nested":' + json.dumps(hostile) + "}"
    assert any("not in the trust list" in warning for warning in items(browser, "warnings"))
    assert "does not trust" in text(browser, "moderation")
    assert browser.execute_script("return document.getElementById('pwned')") is None
    assert browser.title != "pwned"
