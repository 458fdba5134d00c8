"""Prometheus metrics against a real server: route templates, decisions, findings, verifications."""

from __future__ import annotations

import asyncio
import base64
import collections
import math
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import prometheus_client
import pytest
import uvicorn
from fastapi import APIRouter, FastAPI
from fastapi.responses import StreamingResponse
from prometheus_client.parser import text_string_to_metric_families

from api._metrics import signer_not_after
from api.http import create_app
from api.http._health import install_observability
from api.http._metrics import Metrics
from gen import GenerationRequest, GenerationResult, SealedGenerationService
from genseal.settings import Settings
from safety import Stage
from tests._media import photo

# Sealing needs 256² (the watermark's minimum); two steps of the tiny model keep it fast.
FAST = {"size": "256x256", "steps": 2, "seed": 3}
Labels = frozenset[tuple[str, str]]


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """Run ``app`` under uvicorn on a free loopback port (lifespan included); yield its URL."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def scrape(url: str) -> dict[tuple[str, Labels], float]:
    """Every sample of ``/metrics``, keyed by sample name and label set."""
    response = httpx.get(f"{url}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: dict[tuple[str, Labels], float], name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> SealedGenerationService:
    home: Path = tmp_path_factory.mktemp("metrics-home")
    return SealedGenerationService(Settings(home=home, policy_reload_seconds=0))


@pytest.fixture(scope="module")
def observed(service: SealedGenerationService) -> Iterator[tuple[str, Metrics]]:
    """The real app (create_app, which installs /metrics itself), served on loopback."""
    app = create_app(service)
    metrics = app.state.genseal.metrics
    with serve(app) as url:
        yield url, metrics


def test_requests_are_counted_by_route_template_never_by_raw_path(
    observed: tuple[str, Metrics],
) -> None:
    url, _ = observed
    before = scrape(url)
    response = httpx.post(
        f"{url}/v1/images/generations", json={"prompt": "a red fox", **FAST}, timeout=60
    )
    assert response.status_code == 200, response.text
    manifest_id = response.json()["data"][0]["manifest_id"]
    assert httpx.get(f"{url}/v1/manifests/{manifest_id}").status_code == 200
    unknown = "0123456789abcdef-not-a-manifest"
    assert httpx.get(f"{url}/v1/manifests/{unknown}").status_code == 404
    assert httpx.get(f"{url}/no/such/page/{unknown}").status_code == 404
    assert httpx.delete(f"{url}/v1/manifests/{manifest_id}").status_code == 405
    after = scrape(url)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    requests = "genseal_http_requests_total"
    template = "/v1/manifests/{manifest_id}"
    assert delta(requests, method="POST", route="/v1/images/generations", status="200") == 1
    assert delta(requests, method="GET", route=template, status="200") == 1
    assert delta(requests, method="GET", route=template, status="404") == 1
    assert delta(requests, method="DELETE", route=template, status="405") == 1
    assert delta(requests, method="GET", route="unmatched", status="404") == 1
    durations = "genseal_http_request_duration_seconds_count"
    assert delta(durations, method="GET", route=template) == 2
    generation_time = value(
        after, "genseal_http_request_duration_seconds_sum", method="POST",
        route="/v1/images/generations",
    )  # fmt: skip
    assert generation_time > 0
    for (_, labels), _value in after.items():
        for _label, label_value in labels:
            assert manifest_id not in label_value and unknown not in label_value


def _expected_findings(result: GenerationResult) -> collections.Counter[tuple[str, str]]:
    # The request's findings once, plus each output's own: a released image repeats the prompt
    # findings it inherited (and a sealed upload's result repeats its image's), and those must
    # not count twice.
    findings = list(result.findings)
    for image in [*result.images, *result.withheld, *result.held]:
        findings += [f for f in image.findings if f.stage is Stage.OUTPUT and f not in findings]
    return collections.Counter((f.category.value, f.state.value) for f in findings)


def test_generation_and_verification_counters(
    observed: tuple[str, Metrics], service: SealedGenerationService
) -> None:
    url, metrics = observed
    before = scrape(url)
    released = service.generate(
        GenerationRequest(prompt="a ceramic figurine of a fox", n=2, size=(256, 256), steps=2)
    )
    assert released.status == "released" and len(released.images) == 2
    metrics.observe_generation(released, "generations")
    blocked = service.generate(GenerationRequest(prompt="hardcore porn", size=(256, 256)))
    assert blocked.status == "blocked"
    metrics.observe_generation(blocked, "generations")
    sealed = service.seal(photo("coffee"), prompt="a cup of coffee")
    assert sealed.status == "released"
    metrics.observe_generation(sealed, "seal")

    verifier = service.verifier()
    metrics.observe_verify(verifier.verify(released.images[0].data, "sealed.png"))
    metrics.observe_verify(verifier.verify(photo("camera"), "unsealed.png"))
    after = scrape(url)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("genseal_decisions_total", operation="generations", status="released") == 1
    assert delta("genseal_decisions_total", operation="generations", status="blocked") == 1
    assert delta("genseal_decisions_total", operation="seal", status="released") == 1
    assert delta("genseal_images_total", outcome="released") == 3

    expected = _expected_findings(released) + _expected_findings(blocked)
    expected += _expected_findings(sealed)
    assert expected[("sexual", "flagged")] >= 1, "the blocked prompt is a flagged finding"
    assert expected[("sexual", "clean")] >= 3, "two outputs and the sealed photo were screened"
    for (category, state), count in expected.items():
        assert delta("genseal_findings_total", category=category, state=state) == count

    stages = "genseal_stage_duration_seconds_count"
    # Stage times are per request: two released images make one "seal" observation.
    assert delta(stages, stage="generate") == 1
    assert delta(stages, stage="screen_input") == 2
    assert delta(stages, stage="seal") == 2  # the generation and the sealed photo
    assert delta(stages, stage="screen") == 1
    assert delta("genseal_stage_duration_seconds_sum", stage="generate") > 0
    bucket = value(after, "genseal_stage_duration_seconds_bucket", stage="generate", le="60.0")
    assert bucket >= 1, "the stage buckets reach a minute"

    verifications = "genseal_verifications_total"
    assert delta(verifications, state="trusted", recovered="true") == 1
    assert delta(verifications, state="absent", recovered="false") == 1


def test_screens_jobs_queue_depth_and_signer_expiry(
    observed: tuple[str, Metrics], service: SealedGenerationService
) -> None:
    url, metrics = observed
    before = scrape(url)
    result = service.screen(prompt="hardcore porn")
    metrics.observe_screen(result)
    metrics.observe_job("generations", "succeeded")
    metrics.observe_job("generations", "succeeded")
    metrics.observe_job("edits", "failed")
    after = scrape(url)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("genseal_screens_total", action=result.decision.action.value) == 1
    flagged = sum(1 for f in result.findings if f.flagged and f.category.value == "sexual")
    assert flagged >= 1
    assert delta("genseal_findings_total", category="sexual", state="flagged") == flagged
    assert delta("genseal_jobs_total", kind="generations", status="succeeded") == 2
    assert delta("genseal_jobs_total", kind="edits", status="failed") == 1
    # The served app reads the queue depth from the job table at every scrape.
    assert value(after, "genseal_jobs_queued") == 0
    expiry = signer_not_after(service.identity)
    assert expiry is not None
    assert value(after, "genseal_signer_expiry_timestamp_seconds") == expiry.timestamp()


def test_each_app_has_its_own_registry(service: SealedGenerationService) -> None:
    first, second = Metrics(), Metrics()
    first.observe_job("generations", "succeeded")
    assert b'genseal_jobs_total{kind="generations",status="succeeded"} 1.0' in first.render()[0]
    assert b"genseal_jobs_total{" not in second.render()[0]
    assert b"genseal_" not in prometheus_client.generate_latest(prometheus_client.REGISTRY)
    # Two apps in one process: installing twice must not collide on metric names.
    install_observability(FastAPI(), service)
    install_observability(FastAPI(), service)


def test_templates_through_prefixed_routers_and_mounts_streaming_and_errors(
    service: SealedGenerationService,
) -> None:
    app = FastAPI()
    metrics, _ = install_observability(app, service)
    tenants = APIRouter()
    things = APIRouter()

    @things.get("/things/{thing_id}")
    def thing(tenant: str, thing_id: str) -> dict[str, str]:
        return {"tenant": tenant, "thing": thing_id}

    tenants.include_router(things, prefix="/tenants/{tenant}")
    app.include_router(tenants, prefix="/v2")

    sub = FastAPI()

    @sub.get("/pages/{page}")
    def page(page: int) -> dict[str, int]:
        return {"page": page}

    app.mount("/sub", sub)

    @app.get("/stream")
    def stream() -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            for index in range(5):
                await asyncio.sleep(0.01)
                yield f"chunk {index}\n".encode()

        return StreamingResponse(chunks(), media_type="text/plain")

    @app.get("/boom/{code}")
    def boom(code: str) -> None:
        raise RuntimeError(f"failure {code}")

    with serve(app) as url:
        assert httpx.get(f"{url}/v2/tenants/acme/things/42").json() == {
            "tenant": "acme",
            "thing": "42",
        }
        assert httpx.get(f"{url}/sub/pages/3").json() == {"page": 3}
        assert httpx.get(f"{url}/sub/nothing-here").status_code == 404
        streamed = httpx.get(f"{url}/stream")
        assert streamed.text == "".join(f"chunk {i}\n" for i in range(5))
        assert httpx.get(f"{url}/boom/xyz").status_code == 500
        samples = scrape(url)

    requests = "genseal_http_requests_total"
    thing_route = "/v2/tenants/{tenant}/things/{thing_id}"
    assert value(samples, requests, method="GET", route=thing_route, status="200") == 1
    assert value(samples, requests, method="GET", route="/sub/pages/{page}", status="200") == 1
    assert value(samples, requests, method="GET", route="/stream", status="200") == 1
    assert value(samples, requests, method="GET", route="/boom/{code}", status="500") == 1
    assert value(samples, requests, method="GET", route="/metrics", status="200") == 0, (
        "a scrape is counted once it has answered, so not in its own output"
    )
    stream_time = value(
        samples, "genseal_http_request_duration_seconds_sum", method="GET", route="/stream"
    )
    assert stream_time >= 0.04, "the duration covers the whole streamed body"
    routes = {dict(labels).get("route") for (name, labels) in samples if name == requests}
    assert not any(r and ("acme" in r or "xyz" in r) for r in routes)
    assert metrics.registry is not prometheus_client.REGISTRY


def test_metrics_and_readyz_are_documented(observed: tuple[str, Metrics]) -> None:
    url, _ = observed
    paths = httpx.get(f"{url}/openapi.json").json()["paths"]
    assert paths["/metrics"]["get"]["tags"] == ["service"]
    assert "text/plain" in paths["/metrics"]["get"]["responses"]["200"]["content"]
    readyz = paths["/readyz"]["get"]
    assert readyz["tags"] == ["service"]
    assert {"200", "503"} <= set(readyz["responses"])
    schema = readyz["responses"]["503"]["content"]["application/json"]["schema"]
    assert schema["$ref"].endswith("/ReadinessReport")


def test_gauges_read_at_scrape_time_never_fail_the_scrape(
    service: SealedGenerationService,
) -> None:
    app, metrics = FastAPI(), Metrics()
    depth = [3]
    metrics.track_queue_depth(lambda: depth[0])
    installed, _ = install_observability(app, service, metrics=metrics)
    assert installed is metrics

    def broken() -> int:
        raise RuntimeError("the job table is gone")

    with serve(app) as url:
        assert value(scrape(url), "genseal_jobs_queued") == 3
        depth[0] = 5
        assert value(scrape(url), "genseal_jobs_queued") == 5
        metrics.track_queue_depth(broken)
        samples = scrape(url)
    assert math.isnan(value(samples, "genseal_jobs_queued"))
    assert value(samples, "genseal_signer_expiry_timestamp_seconds") > time.time()


def test_the_served_app_counts_what_its_endpoints_decide(observed: tuple[str, Metrics]) -> None:
    url, _ = observed
    before = scrape(url)
    released = httpx.post(
        f"{url}/v1/images/generations", json={"prompt": "a red fox", **FAST}, timeout=60
    )
    assert released.status_code == 200, released.text
    blocked = httpx.post(
        f"{url}/v1/images/generations", json={"prompt": "hardcore porn", **FAST}, timeout=60
    )
    assert blocked.status_code == 400
    sealed = base64.b64decode(released.json()["data"][0]["b64_json"])
    assert httpx.post(f"{url}/v1/verify", files={"file": ("a.png", sealed)}).status_code == 200
    unsealed = photo("camera")
    assert httpx.post(f"{url}/v1/verify", files={"file": ("b.png", unsealed)}).status_code == 200
    assert httpx.post(f"{url}/v1/screen", data={"prompt": "hardcore porn"}).status_code == 200
    queued = httpx.post(
        f"{url}/v1/images/generations",
        json={"prompt": "a blue heron", **FAST},
        headers={"Prefer": "respond-async"},
    )
    assert queued.status_code == 202
    job_url = f"{url}/v1/jobs/{queued.json()['id']}"
    deadline = time.monotonic() + 60
    while httpx.get(job_url).json()["status"] in ("queued", "running"):
        assert time.monotonic() < deadline, "the job never finished"
        time.sleep(0.1)
    after = scrape(url)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    decisions = "genseal_decisions_total"
    assert delta(decisions, operation="generations", status="released") == 2
    assert delta(decisions, operation="generations", status="blocked") == 1
    assert delta("genseal_images_total", outcome="released") == 2
    assert delta("genseal_findings_total", category="sexual", state="flagged") >= 2
    assert delta("genseal_stage_duration_seconds_count", stage="generate") == 2
    verifications = "genseal_verifications_total"
    assert delta(verifications, state="trusted", recovered="true") == 1
    assert delta(verifications, state="absent", recovered="false") == 1
    assert delta("genseal_screens_total", action="block") == 1
    assert delta("genseal_jobs_total", kind="generations", status="succeeded") == 1
    assert value(after, "genseal_jobs_queued") == 0
