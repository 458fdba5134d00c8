"""/readyz against a real server: warm-up, the signing certificate, the store and the policy."""

from __future__ import annotations

import dataclasses
import datetime as dt
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from api.http import create_app
from api.http._health import Readiness
from gen import DiffusersBackend, ImageBackend, SealedGenerationService, build_parts
from genseal.errors import SigningError
from genseal.settings import Settings
from provenance import SigningIdentity, identity_problems, init_identity, load_identity
from safety import default_policy_path
from tests.api.http.test_metrics import serve

CHECKS = ["model", "checks", "signer", "store", "policy", "disk"]
NOW = dt.datetime.now(dt.UTC)

_backends: dict[str, ImageBackend] = {}
_backends_lock = threading.Lock()


def shared_loader(spec: str) -> ImageBackend:
    """The real loader, each model loaded once per process: every test builds its own service,
    none of them needs a model of its own."""
    with _backends_lock:
        if spec not in _backends:
            _backends[spec] = DiffusersBackend.load(spec, device=None, offline=True)
        return _backends[spec]


def make_service(
    home: Path, loader: Callable[[str], ImageBackend] = shared_loader, **settings: Any
) -> SealedGenerationService:
    config = Settings(home=home, policy_reload_seconds=0, **settings)
    return SealedGenerationService(config, build_parts(config, backend_loader=loader))


def readyz(url: str) -> tuple[int, dict[str, Any], dict[str, dict[str, Any]]]:
    response = httpx.get(f"{url}/readyz", timeout=30)
    body = response.json()
    assert [c["name"] for c in body["checks"]] == CHECKS
    assert body["ready"] is (response.status_code == 200)
    assert body["ready"] is all(c["ok"] for c in body["checks"])
    return response.status_code, body, {c["name"]: c for c in body["checks"]}


def wait_for(
    url: str, condition: Callable[[int, dict[str, dict[str, Any]]], bool], seconds: float = 60
) -> tuple[int, dict[str, Any], dict[str, dict[str, Any]]]:
    deadline = time.monotonic() + seconds
    while True:
        status, body, checks = readyz(url)
        if condition(status, checks):
            return status, body, checks
        if time.monotonic() > deadline:
            raise AssertionError(f"/readyz never got there: {body}")
        time.sleep(0.1)


def observed_app(service: SealedGenerationService) -> Any:
    # create_app installs /readyz and /metrics itself.
    return create_app(service)


# -- identities made with cryptography, under the root of a real development identity ----------


@pytest.fixture(scope="module")
def template_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("identity-template")
    init_identity(home)
    return home


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _usage(*, signer: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=signer,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=not signer,
        crl_sign=not signer,
        encipher_only=False,
        decipher_only=False,
    )


def issue_leaf(
    home: Path,
    *,
    not_before: dt.datetime,
    not_after: dt.datetime,
    email_protection: bool = True,
    ca: bool = False,
) -> tuple[bytes, bytes]:
    """A new intermediate and leaf under the root of ``home``: (chain PEM, leaf key PEM)."""
    keys = home / "keys"
    root = x509.load_pem_x509_certificate((keys / "root.pem").read_bytes())
    root_key = serialization.load_pem_private_key((keys / "root.key").read_bytes(), None)
    assert isinstance(root_key, ec.EllipticCurvePrivateKey)
    intermediate_key = ec.generate_private_key(ec.SECP256R1())
    intermediate = (
        x509.CertificateBuilder()
        .subject_name(_name("test intermediate"))
        .issuer_name(root.subject)
        .public_key(intermediate_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=2))
        .not_valid_after(NOW + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_usage(signer=False), critical=True)
        .sign(root_key, hashes.SHA256())
    )
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name("test signer"))
        .issuer_name(intermediate.subject)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(_usage(signer=True), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(intermediate_key.public_key()),
            critical=False,
        )
    )
    if email_protection:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False
        )
    leaf = builder.sign(intermediate_key, hashes.SHA256())
    chain = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (leaf, intermediate))
    key = leaf_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return chain, key


def home_with_leaf(template: Path, home: Path, **validity: dt.datetime) -> Path:
    """A copy of the template identity home whose signing certificate has the given validity."""
    shutil.copytree(template, home)
    chain, key = issue_leaf(home, **validity)
    (home / "keys" / "chain.pem").write_bytes(chain)
    (home / "keys" / "signer.key").write_bytes(key)
    return home


# -- over HTTP -------------------------------------------------------------------------------------


def test_not_ready_while_warming_up_then_ready(tmp_path: Path) -> None:
    called, release = threading.Event(), threading.Event()

    def slow_loader(spec: str) -> ImageBackend:
        called.set()
        release.wait(60)
        return shared_loader(spec)

    service = make_service(tmp_path / "home", slow_loader)
    with serve(observed_app(service)) as url:
        assert called.wait(30), "the warm-up starts with the app, before any probe"
        status, body, checks = readyz(url)
        assert status == 503 and body["ready"] is False
        assert checks["model"] == {"name": "model", "ok": False, "detail": "pending: loading tiny"}
        assert not checks["checks"]["ok"] and checks["checks"]["detail"].startswith("pending")
        assert checks["signer"]["ok"] and checks["store"]["ok"] and checks["policy"]["ok"]

        release.set()
        status, body, checks = wait_for(url, lambda status, _: status == 200)

    assert body["ready"] is True
    assert "genseal/tiny-sd" in checks["model"]["detail"]
    assert "opennsfw" in checks["checks"]["detail"]
    leaf = x509.load_pem_x509_certificates(service.identity.chain_pem)[0]
    assert f"until {leaf.not_valid_after_utc:%Y-%m-%dT%H:%M:%SZ}" in checks["signer"]["detail"]
    policy = service.policy
    assert f"{policy.id}@{policy.version}" in checks["policy"]["detail"]
    text = str(body)
    key_body = b"".join(service.identity.private_key_pem.splitlines()[1:-1]).decode()
    assert "PRIVATE KEY" not in text and key_body[:24] not in text


def test_signing_certificate_not_yet_valid_refuses_to_start(
    template_home: Path, tmp_path: Path
) -> None:
    starts = NOW + dt.timedelta(days=1)
    home = home_with_leaf(
        template_home, tmp_path / "home", not_before=starts, not_after=NOW + dt.timedelta(days=30)
    )
    with pytest.raises(SigningError) as caught:
        make_service(home)
    assert (
        f"the signing certificate 'test signer' is not valid before {starts:%Y-%m-%dT%H:%M:%SZ}"
        in str(caught.value)
    )


def test_signing_certificate_that_expires_while_serving(
    template_home: Path, tmp_path: Path
) -> None:
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=3)
    home = home_with_leaf(
        template_home,
        tmp_path / "home",
        not_before=NOW - dt.timedelta(days=1),
        not_after=expires,
    )
    service = make_service(home)
    assert identity_problems(service.identity) == [], "valid when the service started"
    with serve(observed_app(service)) as url:
        status, body, checks = wait_for(url, lambda _, c: not c["signer"]["ok"], seconds=30)
    assert status == 503 and body["ready"] is False
    assert checks["signer"]["detail"] == (
        f"the signing certificate 'test signer' expired at {expires:%Y-%m-%dT%H:%M:%SZ}"
    )


def test_failing_store_is_not_ready(tmp_path: Path) -> None:
    home = tmp_path / "home"
    service = make_service(home)
    with serve(observed_app(service)) as url:
        wait_for(url, lambda status, _: status == 200)
        # The database file turns into something else (a bad restore, a full disk's debris).
        service.close()  # drops the pooled connections to the old file
        for leftover in home.glob("genseal.db-*"):
            leftover.unlink()
        (home / "genseal.db").write_bytes(b"not a database\n" * 512)
        status, body, checks = readyz(url)
    assert status == 503 and body["ready"] is False
    assert checks["store"]["ok"] is False
    detail = checks["store"]["detail"]
    assert detail.startswith("the manifest store does not answer:")
    assert "file is not a database" in detail and "\n" not in detail
    assert all(checks[name]["ok"] for name in ("model", "checks", "signer", "policy"))


def test_rejected_policy_reload_is_reported_and_the_old_policy_keeps_serving(
    tmp_path: Path,
) -> None:
    policy_file = tmp_path / "policy.yaml"
    shutil.copy(default_policy_path(), policy_file)
    service = make_service(tmp_path / "home", policy=policy_file)
    with serve(observed_app(service)) as url:
        wait_for(url, lambda status, _: status == 200)
        policy_file.write_text("rules: [this is not: a policy\n", encoding="utf-8")
        assert service.reload_policy() is False
        status, _, checks = readyz(url)
    assert status == 200
    detail = checks["policy"]["detail"]
    assert "active; the last reload was rejected (the server log says why)" in detail
    assert service.policy.id in detail
    assert str(tmp_path) not in detail  # readiness is public: no server paths


# -- Readiness without a server ------------------------------------------------------------------


def test_model_that_cannot_load_is_reported_and_retried(tmp_path: Path) -> None:
    attempts: list[str] = []

    def loader(spec: str) -> ImageBackend:
        attempts.append(spec)
        return DiffusersBackend.load(spec, device=None, offline=True)

    missing = tmp_path / "no-such-model"
    service = make_service(tmp_path / "home", loader, model=str(missing))
    readiness = Readiness(service, retry_seconds=0.2)
    first = readiness.check()  # starts the warm-up: nobody else did
    # A missing directory fails fast: the load may already have failed by the time it answers.
    assert not first.ready
    assert first.checks[0].detail == f"pending: loading {missing}" or first.checks[
        0
    ].detail.startswith(f"cannot load {missing}:")
    deadline = time.monotonic() + 30
    while readiness.check().checks[0].detail.startswith("pending"):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    model = readiness.check().checks[0]
    assert model.ok is False and model.detail.startswith(f"cannot load {missing}:")
    time.sleep(0.3)
    deadline = time.monotonic() + 30
    while len(attempts) < 2:
        # Past retry_seconds a probe tries again (once the warm-up of the checks is done).
        readiness.check()
        assert time.monotonic() < deadline, "a failed model load is retried"
        time.sleep(0.05)


def test_identity_problems(template_home: Path, tmp_path: Path) -> None:
    identity = load_identity(template_home)
    assert identity_problems(identity) == []
    leaf = x509.load_pem_x509_certificates(identity.chain_pem)[0]
    later = leaf.not_valid_after_utc + dt.timedelta(seconds=1)
    assert identity_problems(identity, at=later) == [
        f"the signing certificate 'genseal development signer' expired at "
        f"{leaf.not_valid_after_utc:%Y-%m-%dT%H:%M:%SZ}"
    ]

    def with_leaf(**options: Any) -> SigningIdentity:
        validity = {"not_before": NOW - dt.timedelta(days=1), "not_after": NOW + dt.timedelta(1)}
        chain, key = issue_leaf(template_home, **{**validity, **options})
        return dataclasses.replace(identity, chain_pem=chain, private_key_pem=key)

    assert any("emailProtection" in p for p in identity_problems(with_leaf(email_protection=False)))
    assert any("is a CA" in p for p in identity_problems(with_leaf(ca=True)))
    other_key = with_leaf().private_key_pem
    mismatched = dataclasses.replace(with_leaf(), private_key_pem=other_key)
    assert identity_problems(mismatched) == [
        "the signing key does not belong to the signing certificate"
    ]
    foreign_root = tmp_path / "other"
    init_identity(foreign_root)
    stranger = dataclasses.replace(
        identity, root_cert_pem=(foreign_root / "keys" / "root.pem").read_bytes()
    )
    assert identity_problems(stranger) == [
        "'genseal development intermediate CA' was not issued by 'genseal development root CA': "
        "the chain does not lead to the configured root"
    ]
    for problem in identity_problems(dataclasses.replace(identity, private_key_pem=b"junk")):
        assert problem.startswith("the signing key in") and "junk" not in problem


@pytest.mark.services
def test_at_scale_readiness_waits_for_a_worker_that_serves_the_default_model(
    tmp_path: Path,
) -> None:
    from fastapi.testclient import TestClient

    from tests.api.conftest import backend_settings, celery_worker

    with backend_settings(Settings(home=tmp_path / "home"), "scale") as settings:
        service = SealedGenerationService(settings)
        with TestClient(create_app(service)) as client:
            body = client.get("/readyz").json()
            checks = {c["name"]: c for c in body["checks"]}
            assert body["ready"] is False and "model" not in checks  # none is loaded here
            assert not checks["workers"]["ok"]
            assert "no genseal worker is running" in checks["workers"]["detail"]
            with celery_worker(service):
                deadline = time.monotonic() + 30
                while not (answer := client.get("/readyz")).json()["ready"]:
                    assert time.monotonic() < deadline, answer.json()
                    time.sleep(0.3)  # the registry is read at most every 2 s
                workers = {c["name"]: c for c in answer.json()["checks"]}["workers"]
                assert workers["ok"] and "tiny" in workers["detail"]


def test_a_volume_short_of_free_space_takes_the_instance_out_of_rotation(tmp_path: Path) -> None:
    free_mb = shutil.disk_usage(tmp_path).free // (1024 * 1024)
    service = make_service(tmp_path / "home", min_free_disk_mb=free_mb + 10_000)
    with serve(observed_app(service)) as url:
        status, _, checks = wait_for(url, lambda _, c: c["model"]["ok"] and c["checks"]["ok"])
    assert status == 503
    disk = checks["disk"]
    assert not disk["ok"] and "MB free on the" in disk["detail"] and "required" in disk["detail"]
    assert str(tmp_path) not in disk["detail"]  # readiness is public: roles, not paths
