"""Who may call the API: keys, tenant isolation and rate limits, against a real server."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest

from api.http import create_app
from api.tenants import IssuedKey, TenantStore
from gen import SealedGenerationService
from genseal.settings import Settings
from safety import default_policy_path
from tests._media import photo
from tests.api.conftest import running
from tests.api.http.conftest import ASYNC, FAST, Deployment, wait_for_job


def test_a_tenant_never_sees_another_tenants_jobs_manifests_or_audit(
    deployment: Deployment,
) -> None:
    d = deployment
    job = httpx.post(
        f"{d.url}/v1/images/generations",
        json={"prompt": "a teapot", "response_format": "url", **FAST},
        headers=d.headers(d.acme, **ASYNC),
    ).json()
    finished = wait_for_job(d, d.acme, job["id"])
    [image] = finished["result"]["data"]
    manifest_id = image["manifest_id"]

    theirs = d.headers(d.globex)
    assert httpx.get(f"{d.url}/v1/jobs/{job['id']}", headers=theirs).status_code == 404
    assert job["id"] not in [
        j["id"] for j in httpx.get(f"{d.url}/v1/jobs", headers=theirs).json()["data"]
    ]
    assert httpx.get(f"{d.url}/v1/manifests/{manifest_id}", headers=theirs).status_code == 404
    assert (
        httpx.get(f"{d.url}/v1/manifests/{manifest_id}", headers=d.headers(d.acme)).status_code
        == 200
    )
    audit = httpx.get(f"{d.url}/v1/audit?limit=500", headers=theirs).json()["data"]
    assert all(e["tenant"] == "globex" for e in audit)
    assert manifest_id not in {e["manifest_id"] for e in audit}
    mine = httpx.get(f"{d.url}/v1/audit?limit=500", headers=d.headers(d.acme)).json()["data"]
    assert manifest_id in {e["manifest_id"] for e in mine}
    assert all(e["tenant"] == "acme" for e in mine)
    # The image URL is a capability: it works without a key, and only as signed.
    assert httpx.get(image["url"]).status_code == 200
    forged = image["url"].replace(manifest_id, "0" * len(manifest_id))
    assert httpx.get(forged).status_code == 404


def test_keys_are_required_checked_and_revocable(deployment: Deployment, tmp_path: Any) -> None:
    d = deployment
    assert httpx.get(f"{d.url}/v1/jobs").status_code == 401
    wrong = httpx.get(f"{d.url}/v1/jobs", headers={"Authorization": "Bearer gs_wrong"})
    assert wrong.status_code == 401
    assert wrong.json()["error"]["code"] == "invalid_api_key"

    tenants = TenantStore(d.service.settings.store_url)
    issued = tenants.create("temp")
    assert httpx.get(f"{d.url}/v1/jobs", headers=d.headers(issued)).status_code == 200
    rotated = tenants.rotate_key("temp")
    assert httpx.get(f"{d.url}/v1/jobs", headers=d.headers(issued)).status_code == 401
    assert httpx.get(f"{d.url}/v1/jobs", headers=d.headers(rotated)).status_code == 200
    tenants.update("temp", disabled=True)
    assert httpx.get(f"{d.url}/v1/jobs", headers=d.headers(rotated)).status_code == 401
    # The openai client sees the same as an AuthenticationError.
    client = openai.OpenAI(base_url=f"{d.url}/v1", api_key=rotated.api_key, max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        client.images.generate(prompt="a fox", extra_body=FAST)


def test_rate_limit_per_tenant_is_429_with_retry_after(deployment: Deployment) -> None:
    d = deployment

    def screen(tenant: IssuedKey) -> httpx.Response:
        return httpx.post(
            f"{d.url}/v1/screen", data={"prompt": "a kite"}, headers=d.headers(tenant)
        )

    answers = [screen(d.slow) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    limited = answers[-1]
    assert limited.json()["error"]["code"] == "rate_limit_exceeded"
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    # Reads are not limited (polling a job costs nothing), other tenants are not slowed down.
    assert httpx.get(f"{d.url}/v1/jobs", headers=d.headers(d.slow)).status_code == 200
    assert screen(d.acme).status_code == 200


def test_verify_is_open_but_limited_per_client_address(tmp_path: Any) -> None:
    settings = Settings(home=tmp_path, verify_rate_limit="2/minute")
    TenantStore(settings.store_url).create("acme")  # auth is on: verify still needs no key
    with running(create_app(SealedGenerationService(settings))) as url:

        def verify_once() -> httpx.Response:
            return httpx.post(f"{url}/v1/verify", files={"file": ("p.png", photo("camera"))})

        answers = [verify_once() for _ in range(3)]
        assert [a.status_code for a in answers] == [200, 200, 429]
        assert answers[0].json()["c2pa"]["state"] == "absent"
        assert answers[-1].json()["error"]["code"] == "rate_limit_exceeded"
        assert int(answers[-1].headers["retry-after"]) >= 1


def test_auth_none_keeps_the_api_open_though_tenants_exist(tmp_path: Any) -> None:
    settings = Settings(home=tmp_path, auth="none")
    TenantStore(settings.store_url).create("acme")
    with running(create_app(SealedGenerationService(settings))) as url:
        assert httpx.get(f"{url}/v1/jobs").status_code == 200


def test_the_public_policy_view_hides_tenants_and_server_paths_from_strangers(
    tmp_path: Any,
) -> None:
    policy = tmp_path / "policies" / "default.yaml"
    policy.parent.mkdir()
    policy.write_text(default_policy_path().read_text(encoding="utf-8"), encoding="utf-8")
    overlays = policy.parent / "tenants"
    overlays.mkdir()
    for name in ("acme", "globex"):
        (overlays / f"{name}.yaml").write_text(
            f'id: {name}\nversion: "1"\nextends: default\n', encoding="utf-8"
        )
    settings = Settings(home=tmp_path / "home", policy=policy)
    acme = TenantStore(settings.store_url).create("acme")
    service = SealedGenerationService(settings)
    with running(create_app(service)) as url:
        policy.write_text("rules: [broken\n", encoding="utf-8")
        assert service.reload_policy() is False
        anonymous = httpx.get(f"{url}/v1/policy").json()
        assert anonymous["tenants"] == {}
        assert anonymous["reload_error"] and str(tmp_path) not in anonymous["reload_error"]
        theirs = httpx.get(
            f"{url}/v1/policy", headers={"Authorization": f"Bearer {acme.api_key}"}
        ).json()
        assert set(theirs["tenants"]) == {"acme"}
        assert str(tmp_path) not in theirs["reload_error"]
        wrong = httpx.get(f"{url}/v1/policy", headers={"Authorization": "Bearer gs_wrong"})
        assert wrong.status_code == 401
