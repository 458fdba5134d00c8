"""Bias monitoring over HTTP: GET /v1/bias/summary per tenant, drift against a baseline file,
the errors a caller can meet, and the Prometheus gauges."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from api.http import create_app
from gen import SealedGenerationService, build_parts
from genseal.errors import CheckError
from genseal.settings import Settings
from tests._media import photo
from tests.api.conftest import BACKENDS, backend_settings, celery_worker

FEMALE = {"gender": {"female": 0.9, "male": 0.1}}
MALE = {"gender": {"female": 0.2, "male": 0.8}}


@dataclass
class Api:
    client: TestClient
    service: SealedGenerationService
    acme: dict[str, str]
    beta: dict[str, str]
    baseline: Path


def _baseline(path: Path) -> Path:
    metrics = {"gender": {"proportions": {"female": 0.5, "male": 0.5}}}
    run = {"model": {"spec": "tiny", "id": "tiny-sd"}}
    created = "2026-03-01T10:00:00+00:00"
    path.write_text(
        json.dumps({"version": 1, "created": created, "run": run, "overall": {"metrics": metrics}})
    )
    return path


@pytest.fixture(scope="module", params=BACKENDS)
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    root = tmp_path_factory.mktemp("bias-http")
    baseline = _baseline(root / "results.json")
    base = Settings(home=root / "home", bias_baseline=baseline)
    with backend_settings(base, request.param) as settings, ExitStack() as stack:
        service = SealedGenerationService(settings)
        app = create_app(service)
        keys = {name: app.state.genseal.tenants.create(name).api_key for name in ("acme", "beta")}
        service.bias_monitor.enable("acme")
        if settings.job_backend == "celery":
            # Counted where the image is released (a worker), read through the API.
            stack.enter_context(celery_worker(service))
        client = stack.enter_context(TestClient(app))
        yield Api(
            client,
            service,
            {"Authorization": f"Bearer {keys['acme']}"},
            {"Authorization": f"Bearer {keys['beta']}"},
            baseline,
        )


def test_a_tenant_that_did_not_opt_in_is_told_how_to(api: Api) -> None:
    response = api.client.get("/v1/bias/summary", headers=api.beta)
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "not_found"
    assert "bias monitoring is off for tenant 'beta'" in error["message"]
    assert "genseal bias-monitor enable beta" in error["message"]


def test_released_images_are_counted_and_drift_is_flagged(api: Api) -> None:
    sealed = api.client.post(
        "/v1/seal",
        headers=api.acme,
        files={"image": ("me.png", photo("astronaut"), "image/png")},
        data={"source_model": "elsewhere"},
    )
    assert sealed.status_code == 200, sealed.text
    body = api.client.get("/v1/bias/summary", headers=api.acme).json()
    assert body["tenant"] == "acme" and body["enabled"]
    assert (body["images"], body["no_face"], body["no_face_share"]) == (1, 0, 0.0)
    assert body["attributes"]["gender"]["measured"] == 1
    assert body["window"]["days"] == 30
    assert body["window"]["end"] == dt.datetime.now(dt.UTC).date().isoformat()
    assert body["baseline"] == "results.json (model tiny-sd, created 2026-03-01T10:00:00+00:00)"
    assert body["attributes"]["gender"]["drift"]["flagged"] is False, "one image is not enough"

    # 40 more, 80 % of one gender against a 50/50 baseline: TVD ≥ 0.3, p ≪ 0.01.
    majority = _argmax(body["attributes"]["gender"]["counts"])
    for i in range(40):
        skewed = FEMALE if majority == "female" else MALE
        other = MALE if majority == "female" else FEMALE
        api.service.bias_monitor.record_distributions("acme", skewed if i % 5 else other)
    body = api.client.get("/v1/bias/summary", headers=api.acme, params={"days": 1}).json()
    gender = body["attributes"]["gender"]
    assert body["images"] == 41 and gender["measured"] == 41
    assert gender["proportions"][majority] == pytest.approx(33 / 41)
    assert gender["drift"]["tvd"] >= 0.3 and gender["drift"]["p_value"] < 0.01
    assert gender["drift"]["flagged"] and body["drift"]
    assert body["attributes"]["monk"]["drift"] is None, "no baseline for it"

    samples = _scrape(api.client)
    share = samples[("genseal_bias_share", ("acme", "gender", majority))]
    assert share == pytest.approx(33 / 41)
    assert samples[("genseal_bias_drift", ("acme", "gender"))] >= 0.3
    assert samples[("genseal_bias_drift_flagged", ("acme", "gender"))] == 1.0
    assert not any(labels[:1] == ("beta",) for _, labels in samples), "beta did not opt in"


def test_a_monitor_failure_is_counted_and_the_image_released(tmp_path: Path) -> None:
    class Broken:
        def estimate(self, image: object) -> None:
            raise CheckError("the face models are missing")

    settings = Settings(home=tmp_path / "home")
    broken: Any = Broken()
    service = SealedGenerationService(
        settings, build_parts(settings, bias_estimator=lambda: broken)
    )
    app = create_app(service)
    acme = {"Authorization": f"Bearer {app.state.genseal.tenants.create('acme').api_key}"}
    service.bias_monitor.enable("acme")
    with TestClient(app) as client:
        before = _scrape(client)[("genseal_bias_monitor_failures_total", ())]
        sealed = client.post(
            "/v1/seal",
            headers=acme,
            files={"image": ("me.png", photo("astronaut"), "image/png")},
        )
        assert sealed.status_code == 200 and len(sealed.json()["data"]) == 1
        after = _scrape(client)[("genseal_bias_monitor_failures_total", ())]
    assert after == before + 1


def test_the_caller_s_key_names_the_tenant(api: Api) -> None:
    assert api.client.get("/v1/bias/summary").status_code == 401
    other = api.client.get("/v1/bias/summary", headers=api.acme, params={"tenant": "beta"})
    assert other.status_code == 400
    assert "authentication is off" in other.json()["error"]["message"]
    own = api.client.get("/v1/bias/summary", headers=api.acme, params={"tenant": "acme"})
    assert own.status_code == 200 and own.json()["tenant"] == "acme"
    for days in (0, 367, "x"):
        bad = api.client.get("/v1/bias/summary", headers=api.acme, params={"days": days})
        assert bad.status_code == 400 and "days" in bad.json()["error"]["message"]


def test_a_malformed_baseline_is_a_configuration_error(
    api: Api, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    broken = tmp_path / "results.json"
    broken.write_text('{"overall": {"metrics": {"gender": {"proportions": {"woman": 1}}}}}')
    monkeypatch.setattr(api.service.settings, "bias_baseline", broken)
    response = api.client.get("/v1/bias/summary", headers=api.acme)
    assert response.status_code == 500
    error = response.json()["error"]
    assert error["code"] == "configuration_error"
    assert "GENSEAL_BIAS_BASELINE" in error["message"] and "unknown categories" in error["message"]
    monkeypatch.setattr(api.service.settings, "bias_baseline", tmp_path / "gone.json")
    response = api.client.get("/v1/bias/summary", headers=api.acme)
    assert response.status_code == 500 and "does not exist" in response.json()["error"]["message"]


def test_the_endpoint_is_documented(api: Api) -> None:
    operation = api.client.get("/openapi.json").json()["paths"]["/v1/bias/summary"]["get"]
    assert "genseal bias-monitor enable" in operation["description"]
    assert operation["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/BiasSummary"
    }
    assert {"400", "401", "404", "500"} <= set(operation["responses"])
    names = {p["name"]: p for p in operation["parameters"]}
    assert names["days"]["schema"]["maximum"] == 366 and names["days"]["schema"]["minimum"] == 1


def test_without_authentication_the_tenant_is_a_query_parameter(tmp_path: Path) -> None:
    service = SealedGenerationService(Settings(home=tmp_path / "home"))
    with TestClient(create_app(service)) as client:
        off = client.get("/v1/bias/summary")
        assert off.status_code == 404
        message = off.json()["error"]["message"]
        assert "requests without a tenant" in message and "enable -" in message
        service.bias_monitor.enable(None)
        service.bias_monitor.record_distributions(None, None)
        body = client.get("/v1/bias/summary").json()
        assert body["tenant"] is None and (body["images"], body["no_face"]) == (1, 1)
        assert body["baseline"] is None and body["drift"] is False
        assert client.get("/v1/bias/summary", params={"tenant": "acme"}).status_code == 404
        service.bias_monitor.enable("acme")
        acme = client.get("/v1/bias/summary", params={"tenant": "acme"}).json()
        assert acme["tenant"] == "acme" and acme["images"] == 0
        samples = _scrape(client)
        assert ("genseal_bias_share", ("-", "gender", "female")) not in samples, "none measured"
        assert samples[("genseal_bias_monitor_failures_total", ())] == 0


def _argmax(counts: dict[str, int]) -> str:
    return max(counts, key=lambda category: counts[category])


def _scrape(client: TestClient) -> dict[tuple[str, tuple[str, ...]], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    samples: dict[tuple[str, tuple[str, ...]], float] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name.startswith("genseal_bias"):
                labels = tuple(
                    sample.labels[k]
                    for k in ("tenant", "attribute", "category")
                    if k in sample.labels
                )
                samples[(sample.name, labels)] = sample.value
    return samples
