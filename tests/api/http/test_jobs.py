"""Async jobs, webhooks and idempotency keys, against a real server."""

from __future__ import annotations

import base64
import io
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from PIL import Image
from standardwebhooks.webhooks import Webhook

from tests._media import photo
from tests.api.http.conftest import ASYNC, FAST, Deployment, wait_for_job


@dataclass
class Receiver:
    """A webhook endpoint on loopback that fails the first ``failures`` deliveries."""

    failures: int = 0
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    answered: list[int] = field(default_factory=list)
    url: str = ""


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            state.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
            status = 500 if len(state.answered) < state.failures else 204
            state.answered.append(status)
            self.send_response(status)
            self.end_headers()

        def log_message(self, *_: Any) -> None:
            pass

    http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{http.server_address[1]}/hooks/genseal"
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    yield state
    http.shutdown()


def wait_until(predicate: Any, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.05)


def verify(d: Deployment, data: bytes) -> Any:
    return httpx.post(f"{d.url}/v1/verify", files={"file": ("x.png", data)}).json()


def test_async_generation_is_a_job_with_a_signed_webhook_retried_until_it_lands(
    deployment: Deployment, receiver: Receiver
) -> None:
    d = deployment
    receiver.failures = 2  # two 500s: delivered on the third attempt
    accepted = httpx.post(
        f"{d.url}/v1/images/generations",
        json={"prompt": "a lighthouse at dusk", "webhook": receiver.url, **FAST},
        headers=d.headers(d.acme, **ASYNC),
    )
    assert accepted.status_code == 202
    job = accepted.json()
    assert job["status"] in ("queued", "running") and job["object"] == "job"
    assert accepted.headers["location"] == f"/v1/jobs/{job['id']}"

    finished = wait_for_job(d, d.acme, job["id"])
    assert finished["status"] == "succeeded"
    assert finished["progress"] == 1.0 and finished["attempts"] == 1
    [image] = finished["result"]["data"]
    assert verify(d, base64.b64decode(image["b64_json"]))["c2pa"]["state"] == "trusted"

    wait_until(lambda: 204 in receiver.answered)
    assert receiver.answered == [500, 500, 204]
    ids = {headers["webhook-id"] for headers, _ in receiver.received}
    assert len(ids) == 1  # one message, retried: receivers deduplicate on its id
    headers, body = receiver.received[-1]
    # An independent Standard Webhooks implementation accepts the signature...
    payload = Webhook(d.acme.webhook_secret).verify(body, headers)
    assert payload["id"] == job["id"] and payload["status"] == "succeeded"
    # ...and refuses it under another tenant's secret.
    with pytest.raises(Exception, match=r"[Ss]ignature"):
        Webhook(d.globex.webhook_secret).verify(body, headers)

    state = httpx.get(f"{d.url}/v1/jobs/{job['id']}", headers=d.headers(d.acme)).json()
    assert state["webhook"]["status"] == "delivered" and state["webhook"]["attempts"] == 3


def test_a_blocked_async_job_says_so_and_releases_nothing(deployment: Deployment) -> None:
    d = deployment
    job = httpx.post(
        f"{d.url}/v1/images/generations",
        json={"prompt": "a nude photo of a child", **FAST},
        headers=d.headers(d.acme, **ASYNC),
    ).json()
    finished = wait_for_job(d, d.acme, job["id"])
    assert finished["status"] == "blocked"
    assert finished["result"] is None
    assert finished["error"]["code"] == "content_policy_violation"
    assert finished["http_status"] == 400


def test_async_edit_and_seal_run_as_jobs(deployment: Deployment) -> None:
    d = deployment
    edit = httpx.post(
        f"{d.url}/v1/images/edits",
        data={
            "prompt": "as a figurine",
            "preset": "figurine",
            "steps": "2",
            "size": "256x256",
            "consent_subject": "user-42",
            "consent_reference": "consent/2026/0042",
        },
        files={"image": ("me.png", photo("astronaut"), "image/png")},
        headers=d.headers(d.acme, **ASYNC),
    ).json()
    sealed = httpx.post(
        f"{d.url}/v1/seal",
        data={"source_model": "elsewhere-v1"},
        files={"image": ("made.png", photo("coffee"), "image/png")},
        headers=d.headers(d.acme, **ASYNC),
    ).json()
    for job in (edit, sealed):
        finished = wait_for_job(d, d.acme, job["id"])
        assert finished["status"] == "succeeded", finished
        data = base64.b64decode(finished["result"]["data"][0]["b64_json"])
        assert verify(d, data)["c2pa"]["state"] == "trusted"


def test_idempotency_key_replays_the_first_answer_and_refuses_another_body(
    deployment: Deployment,
) -> None:
    d = deployment
    headers = d.headers(d.acme, **{"Idempotency-Key": "order-1234"})
    body = {"prompt": "a red bicycle", **FAST}
    first = httpx.post(f"{d.url}/v1/images/generations", json=body, headers=headers, timeout=60)
    again = httpx.post(f"{d.url}/v1/images/generations", json=body, headers=headers, timeout=60)
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    request_id = first.json()["genseal"]["request_id"]
    audit = httpx.get(f"{d.url}/v1/audit?limit=500", headers=d.headers(d.acme)).json()["data"]
    assert [e["event"] for e in audit if e["request_id"] == request_id] == ["released"]

    other = httpx.post(
        f"{d.url}/v1/images/generations",
        json={**body, "prompt": "a blue bicycle"},
        headers=headers,
    )
    assert other.status_code == 409
    assert "Idempotency-Key" in other.json()["error"]["message"]

    # The same key is another tenant's own: no clash across tenants.
    theirs = httpx.post(
        f"{d.url}/v1/images/generations",
        json={**body, "prompt": "a green bicycle"},
        headers=d.headers(d.globex, **{"Idempotency-Key": "order-1234"}),
        timeout=60,
    )
    assert theirs.status_code == 200

    async_headers = d.headers(d.acme, **ASYNC, **{"Idempotency-Key": "order-5678"})
    one = httpx.post(f"{d.url}/v1/images/generations", json=body, headers=async_headers).json()
    two = httpx.post(f"{d.url}/v1/images/generations", json=body, headers=async_headers).json()
    assert one["id"] == two["id"]
    wait_for_job(d, d.acme, one["id"])


def test_webhook_needs_async_mode_and_a_valid_url(deployment: Deployment) -> None:
    d = deployment
    sync = httpx.post(
        f"{d.url}/v1/images/generations",
        json={"prompt": "a fox", "webhook": "https://example.com/hook", **FAST},
        headers=d.headers(d.acme),
    )
    assert sync.status_code == 400 and "respond-async" in sync.json()["error"]["message"]
    bad = httpx.post(
        f"{d.url}/v1/images/generations",
        json={"prompt": "a fox", "webhook": "ftp://example.com/hook", **FAST},
        headers=d.headers(d.acme, **ASYNC),
    )
    assert bad.status_code == 400


def test_uploads_over_the_pixel_limit_or_in_other_formats_are_refused(
    deployment: Deployment,
) -> None:
    d = deployment
    bomb = io.BytesIO()
    # 100 Mpx of one colour: a few hundred KB of PNG that would be 300 MB decoded.
    Image.new("L", (10_000, 10_000)).save(bomb, "PNG", optimize=True)
    too_many = httpx.post(
        f"{d.url}/v1/images/edits",
        data={"prompt": "x"},
        files={"image": ("bomb.png", bomb.getvalue(), "image/png")},
        headers=d.headers(d.acme),
    )
    assert too_many.status_code == 413, too_many.text
    assert too_many.json()["error"]["code"] == "payload_too_large"
    netpbm = io.BytesIO()
    Image.new("RGB", (300, 300)).save(netpbm, "PPM")  # decodable, but not a format we take
    refused = httpx.post(
        f"{d.url}/v1/images/edits",
        data={"prompt": "x"},
        files={"image": ("a.ppm", netpbm.getvalue(), "image/x-portable-pixmap")},
        headers=d.headers(d.acme),
    )
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "invalid_image"


def test_openapi_documents_jobs_audit_and_async_headers(deployment: Deployment) -> None:
    spec = httpx.get(f"{deployment.url}/openapi.json").json()
    for path in ("/v1/jobs/{job_id}", "/v1/jobs", "/v1/audit", "/v1/files/{image_id}"):
        assert path in spec["paths"], path
    parameters = spec["paths"]["/v1/images/generations"]["post"]["parameters"]
    assert {"prefer", "Idempotency-Key"} <= {p["name"] for p in parameters}
    assert "202" in spec["paths"]["/v1/images/generations"]["post"]["responses"]
    body = json.dumps(spec)
    assert "respond-async" in body and "Standard Webhooks" in body


def test_the_async_flag_makes_a_job_like_the_prefer_header(deployment: Deployment) -> None:
    d = deployment
    queued = httpx.post(
        f"{d.url}/v1/images/generations",
        json={"prompt": "a paper boat", "async": True, **FAST},
        headers=d.headers(d.acme),
    )
    assert queued.status_code == 202, queued.text
    assert queued.headers["location"] == f"/v1/jobs/{queued.json()['id']}"
    job = wait_for_job(d, d.acme, queued.json()["id"])
    assert job["status"] == "succeeded"
    assert job["result"]["data"][0]["manifest_id"]

    sealed = httpx.post(
        f"{d.url}/v1/seal",
        files={"image": ("photo.png", photo("coffee"))},
        data={"async": "true"},
        headers=d.headers(d.acme),
    )
    assert sealed.status_code == 202, sealed.text
    assert wait_for_job(d, d.acme, sealed.json()["id"])["status"] == "succeeded"
