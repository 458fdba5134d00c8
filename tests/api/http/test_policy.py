"""Policy over HTTP: the review queue, consent, /v1/policy + evaluate, hot reload."""

from __future__ import annotations

import base64
import hashlib
import shutil
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.http import create_app
from api.http.routes._policy import REJECTED_RELOAD
from gen import SealedGenerationService
from genseal.settings import Settings
from safety import default_policy_path
from tests.api.conftest import BACKENDS, backend_settings, celery_worker

REVIEWER_KEY, CONSENT_KEY, OTHER_KEY = "sk-review", "sk-consent", "sk-other"
BODY = {"prompt": "a red fox", "size": "256x256", "seed": 5, "steps": 2}


def _tenant(key: str) -> str:
    return "key-" + hashlib.sha256(key.encode()).hexdigest()[:12]


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture(scope="module")
def policy_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("policies")
    (root / "tenants").mkdir()
    shutil.copy(default_policy_path(), root / "default.yaml")
    overlays = {
        REVIEWER_KEY: "add:\n"
        "  - {id: review-outputs, stage: output, when: 'true', action: review}\n",
        CONSENT_KEY: "add:\n  - id: consent-first\n    stage: prompt\n    when: 'true'\n"
        "    action: require_consent\n    message: consent please\n",
    }
    for key, body in overlays.items():
        (root / "tenants" / f"{_tenant(key)}.yaml").write_text(
            f'id: t{key[3:]}\nversion: "1"\nextends: default\n{body}', encoding="utf-8"
        )
    return root


@pytest.fixture(scope="module", params=BACKENDS)
def client(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, policy_dir: Path
) -> Iterator[TestClient]:
    base = Settings(
        home=tmp_path_factory.mktemp("home"),
        policy=policy_dir / "default.yaml",
        api_keys=[REVIEWER_KEY, CONSENT_KEY, OTHER_KEY],
        policy_reload_seconds=0.1,
    )
    with backend_settings(base, request.param) as settings:
        service = SealedGenerationService(settings)
        with ExitStack() as stack:
            if settings.job_backend == "celery":
                # Images held by a worker, reviewed through the API: the queue is shared.
                stack.enter_context(celery_worker(service))
            yield stack.enter_context(TestClient(create_app(service)))


def test_a_held_image_is_queued_approved_then_fetched_sealed(client: TestClient) -> None:
    held = client.post("/v1/images/generations", json=BODY, headers=_auth(REVIEWER_KEY))
    assert held.status_code == 202, held.text
    payload = held.json()
    assert payload["data"] == [] and payload["genseal"]["status"] == "held"
    review_id = payload["genseal"]["held"][0]["review_id"]

    queue = client.get("/v1/reviews", headers=_auth(REVIEWER_KEY)).json()["data"]
    assert [r["id"] for r in queue] == [review_id]
    assert client.get("/v1/reviews", headers=_auth(OTHER_KEY)).json()["data"] == []
    assert client.get(f"/v1/reviews/{review_id}", headers=_auth(OTHER_KEY)).status_code == 404
    not_yet = client.get(f"/v1/reviews/{review_id}/image", headers=_auth(REVIEWER_KEY))
    assert not_yet.status_code == 404 and not_yet.json()["error"]["code"] == "not_found"

    approved = client.post(
        f"/v1/reviews/{review_id}",
        json={"decision": "approve", "reviewer": "ana"},
        headers=_auth(REVIEWER_KEY),
    )
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "approved" and approved.json()["manifest_id"]
    image = client.get(f"/v1/reviews/{review_id}/image", headers=_auth(REVIEWER_KEY))
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    report = client.post("/v1/verify", files={"file": ("x.png", image.content)}).json()
    assert report["c2pa"]["state"] == "trusted"
    again = client.post(
        f"/v1/reviews/{review_id}", json={"decision": "reject"}, headers=_auth(REVIEWER_KEY)
    )
    assert again.status_code == 400 and "already approved" in again.json()["error"]["message"]


def test_consent_attestation_over_http(client: TestClient) -> None:
    refused = client.post("/v1/images/generations", json=BODY, headers=_auth(CONSENT_KEY))
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert error["code"] == "content_policy_violation" and error["message"] == "consent please"
    assert error["decision"]["action"] == "require_consent"

    consent = {"subject": "user-7", "reference": "consent-record-1"}
    allowed = client.post(
        "/v1/images/generations", json={**BODY, "consent": consent}, headers=_auth(CONSENT_KEY)
    )
    assert allowed.status_code == 200, allowed.text
    data = allowed.json()["data"][0]
    assert base64.b64decode(data["b64_json"])[:4] == b"\x89PNG"


def test_policy_endpoints_show_hashes_and_evaluate(client: TestClient) -> None:
    policy = client.get("/v1/policy").json()
    assert policy["id"] == "default" and len(policy["sha256"]) == 64
    assert policy["tenants"] == {}  # anonymous: no tenant's overlay, not even its name
    mine = client.get("/v1/policy", headers=_auth(REVIEWER_KEY)).json()
    assert set(mine["tenants"]) == {_tenant(REVIEWER_KEY)}
    health = client.get("/healthz").json()
    # The base policy's own hash, as decisions and manifests carry it; the set's beside it.
    assert health["policy_sha256"] == policy["sha256"] != policy["set_sha256"]
    assert health["policy_set_sha256"] == policy["set_sha256"]

    evaluated = client.post(
        "/v1/policy/evaluate",
        json={"stage": "prompt", "findings": [{"category": "violence", "matched": ["gore"]}]},
        headers=_auth(OTHER_KEY),
    )
    assert evaluated.status_code == 200, evaluated.text
    explanation = evaluated.json()
    assert explanation["decision"]["action"] == "flag"
    assert explanation["decision"]["rule"] == "note-violent-prompt"
    # A tenant without an overlay is decided by the base policy: the hash /healthz shows.
    assert explanation["decision"]["policy_sha256"] == health["policy_sha256"]
    bad = client.post(
        "/v1/policy/evaluate",
        json={"stage": "prompt", "findings": [{"category": "nonsense"}]},
        headers=_auth(OTHER_KEY),
    )
    assert bad.status_code == 400


def _wait_for(client: TestClient, predicate: object, timeout: float = 10.0) -> dict[str, object]:
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while True:
        policy: dict[str, object] = client.get("/v1/policy").json()
        if predicate(policy) or time.monotonic() > deadline:
            return policy
        time.sleep(0.05)


def test_hot_reload_rejects_an_invalid_file_and_takes_a_valid_one(
    client: TestClient, policy_dir: Path
) -> None:
    path = policy_dir / "default.yaml"
    original = path.read_text(encoding="utf-8")
    before = client.get("/v1/policy").json()
    try:
        path.write_text(original.replace("action: flag", "action: flagg"), encoding="utf-8")
        rejected = _wait_for(client, lambda p: p["reload_error"] is not None)
        # Callers read that it was rejected; the reason (paths, rule ids) is the operator's.
        assert rejected["reload_error"] == REJECTED_RELOAD
        reloader = client.app.state.genseal.service.policy_reloader  # type: ignore[attr-defined]
        assert "note-violent-prompt" in str(reloader.last_error)
        assert rejected["sha256"] == before["sha256"]  # the old policy stays active

        current = before["version"]
        bumped = f"{current}.1"
        path.write_text(
            original.replace(f'version: "{current}"', f'version: "{bumped}"'), encoding="utf-8"
        )
        taken = _wait_for(client, lambda p: p["version"] == bumped)
        assert taken["version"] == bumped and taken["reload_error"] is None
        assert taken["sha256"] != before["sha256"]
        health = client.get("/healthz").json()
        assert health["policy"] == f"default@{bumped}"
        assert health["policy_sha256"] == taken["sha256"]
        assert health["policy_set_sha256"] == taken["set_sha256"]
    finally:
        path.write_text(original, encoding="utf-8")
        _wait_for(client, lambda p: p["sha256"] == before["sha256"])
