"""The API docs, ``/docs`` (Swagger UI) and ``/redoc`` (ReDoc), driven in headless Chromium
against a real server: they render from this server's files alone and reach no other host."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.http._docs import DOCS_ASSETS_URL, install_docs
from tests.api.http.conftest import OpenServer

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver
    from selenium.webdriver.remote.webelement import WebElement

# A page of about 2.5 MB of JavaScript from loopback, rendered: seconds even on a busy machine.
WAIT_SECONDS = 30
_ASSET_URL = re.compile(r'(?:src|href)="([^"]*)"')


def sent_requests(driver: WebDriver) -> list[str]:
    """The URLs the browser requested since the last call, less those it refused to send (a
    Content-Security-Policy blocks a request before it leaves the browser)."""
    requested: dict[str, str] = {}
    refused: set[str] = set()
    for entry in driver.get_log("performance"):
        message: dict[str, Any] = json.loads(entry["message"])["message"]
        params = message.get("params", {})
        if message["method"] == "Network.requestWillBeSent":
            requested[params["requestId"]] = params["request"]["url"]
        elif message["method"] == "Network.loadingFailed" and params.get("blockedReason"):
            refused.add(params["requestId"])
    return [url for request_id, url in requested.items() if request_id not in refused]


def assert_only_from(server: OpenServer, urls: list[str]) -> None:
    assert f"{server.url}/openapi.json" in urls  # the log did record the page's requests
    origin = urlsplit(server.url)
    elsewhere = [
        url
        for url in urls
        if urlsplit(url).scheme not in ("data", "blob")
        and (urlsplit(url).scheme, urlsplit(url).netloc) != (origin.scheme, origin.netloc)
    ]
    assert not elsewhere, f"requests to other hosts: {elsewhere}"


def open_page(driver: WebDriver, server: OpenServer, path: str, css_selector: str) -> WebElement:
    """Load ``path`` and wait for an element matching ``css_selector``; return it."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    sent_requests(driver)  # drop what earlier pages left in the log
    driver.get(f"{server.url}{path}")
    wait = WebDriverWait(driver, WAIT_SECONDS)
    visible = expected_conditions.visibility_of_element_located((By.CSS_SELECTOR, css_selector))
    element: WebElement = wait.until(visible)
    return element


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_the_pages_point_at_this_server_only(open_server: OpenServer, path: str) -> None:
    response = httpx.get(f"{open_server.url}{path}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assets = _ASSET_URL.findall(response.text)
    assert assets and all(url.startswith(DOCS_ASSETS_URL + "/") for url in assets), assets
    assert "http://" not in response.text and "https://" not in response.text
    policy = response.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "connect-src 'self'" in policy
    for url in assets:
        asset = httpx.get(f"{open_server.url}{url}")
        assert asset.status_code == 200 and len(asset.content) > 1000, url


def test_the_auditor_page_keeps_its_stricter_policy(open_server: OpenServer) -> None:
    # What the docs' bundles need (inline styles, a worker, scripts from files) is theirs alone.
    policy = httpx.get(f"{open_server.url}/verify").headers["content-security-policy"]
    assert "unsafe-inline" not in policy and "worker-src" not in policy
    assert "script-src 'self'" not in policy and "style-src 'self'" not in policy


def test_swagger_ui_lists_the_operations_and_tries_one(
    browser: WebDriver, open_server: OpenServer
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    generations = open_page(
        browser, open_server, "/docs", "#operations-images-create_images_v1_images_generations_post"
    )
    assert "POST" in generations.text and "/v1/images/generations" in generations.text
    assert browser.find_element(By.CSS_SELECTOR, "#swagger-ui .info .title").text.startswith(
        "genseal"
    )
    # Try it out: the page calls this server (connect-src 'self') and shows the answer.
    health = browser.find_element(By.CSS_SELECTOR, "#operations-service-healthz_healthz_get")
    health.find_element(By.CSS_SELECTOR, ".opblock-summary-control").click()
    WebDriverWait(browser, WAIT_SECONDS).until(
        lambda _: health.find_element(By.CSS_SELECTOR, ".try-out__btn").is_displayed()
    )
    health.find_element(By.CSS_SELECTOR, ".try-out__btn").click()
    health.find_element(By.CSS_SELECTOR, ".execute").click()
    WebDriverWait(browser, WAIT_SECONDS).until(
        lambda _: (
            "policy_set_sha256"
            in health.find_element(By.CSS_SELECTOR, ".live-responses-table").text
        )
    )
    assert_only_from(open_server, sent_requests(browser))


def test_redoc_renders_the_api(browser: WebDriver, open_server: OpenServer) -> None:
    from selenium.webdriver.common.by import By

    title = open_page(browser, open_server, "/redoc", ".api-info h1")
    assert title.text.startswith("genseal")
    menu = browser.find_element(By.CSS_SELECTOR, ".menu-content").text.split("\n")
    assert {"images", "provenance", "service"} <= set(menu)  # the tags, as sections
    body = browser.find_element(By.TAG_NAME, "body").text
    assert "Create images from a prompt (OpenAI-compatible)" in body
    assert "/v1/images/generations" in body
    assert_only_from(open_server, sent_requests(browser))


def test_behind_a_path_prefix_the_pages_load_from_under_it() -> None:
    app = FastAPI(docs_url=None, redoc_url=None)
    install_docs(app)
    client = TestClient(app, root_path="/genseal")
    for path in ("/docs", "/redoc"):
        html = client.get(path).text
        assets = _ASSET_URL.findall(html)
        assert assets and all(url.startswith(f"/genseal{DOCS_ASSETS_URL}/") for url in assets)
        assert "/genseal/openapi.json" in html
    redirect = client.get("/docs/oauth2-redirect")
    assert redirect.status_code == 200
    assert "'sha256-" in redirect.headers["content-security-policy"]


def test_an_app_built_with_fastapis_own_pages_is_refused() -> None:
    with pytest.raises(ValueError, match="docs_url=None"):
        install_docs(FastAPI())
