"""RFC 3161 time-stamps: what they change for C2PA manifests, against a TSA on loopback.

A time-stamp fixes when the signature was made, by a third party the verifier trusts, so the
signature keeps holding after the signing certificate expires: c2pa then checks the
certificate at the time-stamp's ``genTime`` instead of at the time of reading. Without one
(or with one from a TSA the verifier does not trust) the check is made at reading time, and
an expired leaf turns the manifest Invalid with ``signingCredential.expired``.

Two halves: c2pa-python itself (what the findings rest on), then genseal's ``C2paSigner``
with ``tsa_url`` and ``C2paReader`` on top of it. A TSA that cannot be reached or answers
badly must stop signing: an image must never be released without the configured time-stamp.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import c2pa
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from genseal.errors import SigningError
from provenance import C2paSigner, SigningIdentity
from provenance.c2pa import C2paReader
from tests._media import photo
from tests._tsa import LocalTsa
from tests.provenance.conftest import claim

PNG = "image/png"
IMAGE = photo("astronaut", 64)
# Long enough to sign in, even on a loaded machine; every test that needs it expired shares
# one wait (see `expired`), which keeps the file to a few seconds.
LEAF_SECONDS = 3
_OFFLINE = {"remote_manifest_fetch": False, "ocsp_fetch": False}
_DEFINITION = {
    "title": "stamped.png",
    "format": PNG,
    "claim_generator_info": [{"name": "genseal-tests", "version": "1"}],
    "assertions": [
        {
            "label": "c2pa.actions",
            "data": {
                "actions": [
                    {
                        "action": "c2pa.created",
                        "digitalSourceType": "http://cv.iptc.org/newscodes/digitalsourcetype/"
                        "trainedAlgorithmicMedia",
                    }
                ]
            },
        }
    ],
}

# -- identities and helpers ----------------------------------------------------------------


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "genseal tests"),
        ]
    )


def _cert(
    name: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None,
    *,
    ca: bool,
    not_after: dt.datetime,
) -> x509.Certificate:
    public = key.public_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(name))
        .issuer_name(_name(name) if issuer is None else issuer[0].subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10))
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), True)
        .add_extension(
            x509.KeyUsage(not ca, False, False, False, False, ca, ca, False, False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
    )
    if issuer is not None:
        issuer_public = issuer[0].public_key()
        assert isinstance(issuer_public, ec.EllipticCurvePublicKey)
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_public), critical=False
        )
    if not ca:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False
        )
    return builder.sign(key if issuer is None else issuer[1], hashes.SHA256())


def short_lived_identity(home: Path, seconds: int) -> tuple[SigningIdentity, dt.datetime]:
    """root → intermediate → leaf (the profile genseal's own identity has), the leaf expiring
    ``seconds`` from now; returns the identity and the leaf's notAfter."""
    now = dt.datetime.now(dt.UTC)
    later = now + dt.timedelta(days=1)
    root_key, ca_key, leaf_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    root = _cert("expiry root", root_key, None, ca=True, not_after=later)
    ca = _cert("expiry intermediate", ca_key, (root, root_key), ca=True, not_after=later)
    leaf = _cert(
        "expiry signer",
        leaf_key,
        (ca, ca_key),
        ca=False,
        not_after=now + dt.timedelta(seconds=seconds),
    )
    pem = serialization.Encoding.PEM
    key_pem = leaf_key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    identity = SigningIdentity(
        root_cert_pem=root.public_bytes(pem),
        chain_pem=leaf.public_bytes(pem) + ca.public_bytes(pem),
        private_key_pem=key_pem,
        location=str(home),
    )
    return identity, leaf.not_valid_after_utc


def raw_sign(identity: SigningIdentity, ta_url: str | None) -> bytes:
    """Sign IMAGE with c2pa-python alone, as genseal does but with ``ta_url`` set."""
    info = c2pa.C2paSignerInfo(
        c2pa.C2paSigningAlg.ES256, identity.chain_pem, identity.private_key_pem, ta_url
    )
    settings = c2pa.Settings.from_dict(
        {"builder": {"thumbnail": {"enabled": False}}, "verify": _OFFLINE}
    )
    context = c2pa.Context(settings=settings, signer=c2pa.Signer.from_info(info))
    out = io.BytesIO()
    with c2pa.Builder(_DEFINITION, context=context) as builder:
        builder.sign(PNG, io.BytesIO(IMAGE), out)
    return out.getvalue()


def raw_read(data: bytes, anchors_pem: bytes) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the active manifest's reader.json() with its validation, its crJSON signature)."""
    context = c2pa.Context.from_dict(
        {"trust": {"trust_anchors": anchors_pem.decode()}, "verify": _OFFLINE}
    )
    with c2pa.Reader(PNG, io.BytesIO(data), context=context) as reader:
        store = json.loads(reader.json())
        document = json.loads(reader.crjson())
    label = store["active_manifest"]
    active = next(m for m in document["manifests"] if m["label"] == label)
    return store, active["signature"]


def codes(store: dict[str, Any], kind: str) -> set[str]:
    return {s["code"] for s in store["validation_results"]["activeManifest"][kind]}


def genseal_sign(identity: SigningIdentity, tsa_url: str | None) -> bytes:
    signer = C2paSigner(identity, tsa_url=tsa_url)
    return signer.sign(IMAGE, PNG, claim("gs_stamped")).data


def free_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/tsa"  # nothing listens there once the probe is closed


@pytest.fixture(scope="module")
def tsa() -> Iterator[LocalTsa]:
    with LocalTsa() as server:
        yield server


@pytest.fixture
def fresh_tsa() -> Iterator[LocalTsa]:
    """One per test, for those that count requests or make the TSA fail."""
    with LocalTsa() as server:
        yield server


# -- c2pa-python itself --------------------------------------------------------------------


def test_c2pa_asks_the_tsa_once_per_signature_and_records_its_time(
    identity: SigningIdentity,
) -> None:
    stamp_time = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=3)).replace(microsecond=0)
    with LocalTsa(clock=lambda: stamp_time) as server:
        data = raw_sign(identity, server.url)
        assert server.requests == 1
        request = server.last_request
        assert request is not None
        assert request["cert_req"].native is True  # c2pa asks for the TSA certificate
        assert request["nonce"].native is not None
        assert request["message_imprint"]["hash_algorithm"]["algorithm"].native == "sha256"

        store, signature = raw_read(data, identity.root_cert_pem + server.root_pem)
    assert store["validation_state"] == "Trusted"
    assert {"timeStamp.validated", "timeStamp.trusted", "signingCredential.trusted"} <= codes(
        store, "success"
    )
    info = store["manifests"][store["active_manifest"]]["signature_info"]
    # The time is the TSA's genTime, not the signing machine's clock.
    assert dt.datetime.fromisoformat(info["time"]) == stamp_time
    stamp = signature["timeStampInfo"]
    assert dt.datetime.fromisoformat(stamp["timestamp"]) == stamp_time
    assert stamp["certificateInfo"]["subject"]["CN"] == "genseal test TSA"


def test_c2pa_without_tsa_records_no_time(identity: SigningIdentity) -> None:
    store, signature = raw_read(raw_sign(identity, None), identity.root_cert_pem)
    assert store["validation_state"] == "Trusted"
    assert "time" not in store["manifests"][store["active_manifest"]]["signature_info"]
    assert "timeStampInfo" not in signature
    assert not {c for c in codes(store, "success") if c.startswith("timeStamp.")}


def test_c2pa_time_stamp_is_trusted_only_under_the_tsa_root(
    identity: SigningIdentity, tsa: LocalTsa
) -> None:
    store, _ = raw_read(raw_sign(identity, tsa.url), identity.root_cert_pem)
    # While the leaf is valid, an untrusted time-stamp is only informational.
    assert store["validation_state"] == "Trusted"
    assert "timeStamp.validated" in codes(store, "success")
    assert "timeStamp.trusted" not in codes(store, "success")
    assert "timeStamp.untrusted" in codes(store, "informational")


def test_c2pa_refuses_a_tsa_certificate_without_time_stamping_purpose(
    identity: SigningIdentity,
) -> None:
    with LocalTsa(time_stamping_eku=False) as server, pytest.raises(c2pa.C2paError.Verify) as err:
        raw_sign(identity, server.url)
    assert "signingCredential.invalid" in str(err.value)


@pytest.mark.parametrize("failure", ["unreachable", "http 500", "garbage"])
def test_c2pa_signing_fails_when_the_tsa_does(
    identity: SigningIdentity, fresh_tsa: LocalTsa, failure: str
) -> None:
    url = fresh_tsa.url
    if failure == "unreachable":
        url = free_port_url()
    elif failure == "http 500":
        fresh_tsa.fail()
    else:
        fresh_tsa.garbage()
    with pytest.raises(c2pa.C2paError.Signature) as err:
        raw_sign(identity, url)
    message = str(err.value)
    expected = {
        "unreachable": f"error sending request for url ({url})",
        "http 500": "status = 500",
        "garbage": "decode error",
    }[failure]
    assert expected in message, message


# -- after the signing certificate expired -------------------------------------------------


@dataclass(frozen=True)
class Expired:
    """Images signed under a leaf that has expired since, with and without a time-stamp."""

    identity: SigningIdentity
    tsa_root_pem: bytes
    raw_stamped: bytes
    raw_unstamped: bytes
    genseal_stamped: bytes
    genseal_unstamped: bytes


@pytest.fixture(scope="module")
def expired(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Expired]:
    home = tmp_path_factory.mktemp("expiring")
    identity, not_after = short_lived_identity(home, LEAF_SECONDS)
    with LocalTsa() as server:
        raw_stamped = raw_sign(identity, server.url)
        raw_unstamped = raw_sign(identity, None)
        genseal_stamped = genseal_sign(identity, server.url)
        genseal_unstamped = genseal_sign(identity, None)
        assert dt.datetime.now(dt.UTC) < not_after, "signing took longer than the leaf lives"
        # Certificate times have whole seconds; a second more leaves no doubt it has expired.
        time.sleep((not_after - dt.datetime.now(dt.UTC)).total_seconds() + 1.0)
        yield Expired(
            identity,
            server.root_pem,
            raw_stamped,
            raw_unstamped,
            genseal_stamped,
            genseal_unstamped,
        )


def test_c2pa_stamped_signature_stays_trusted_after_the_leaf_expired(expired: Expired) -> None:
    anchors = expired.identity.root_cert_pem + expired.tsa_root_pem
    store, _ = raw_read(expired.raw_stamped, anchors)
    assert store["validation_state"] == "Trusted"
    assert {"timeStamp.trusted", "signingCredential.trusted"} <= codes(store, "success")
    assert not codes(store, "failure")


def test_c2pa_unstamped_signature_turns_invalid_once_the_leaf_expired(expired: Expired) -> None:
    anchors = expired.identity.root_cert_pem + expired.tsa_root_pem
    store, _ = raw_read(expired.raw_unstamped, anchors)
    assert store["validation_state"] == "Invalid"
    assert {"signingCredential.expired", "signingCredential.untrusted"} <= codes(store, "failure")


def test_c2pa_untrusted_time_stamp_does_not_save_an_expired_leaf(expired: Expired) -> None:
    store, _ = raw_read(expired.raw_stamped, expired.identity.root_cert_pem)
    assert store["validation_state"] == "Invalid"
    assert "signingCredential.expired" in codes(store, "failure")
    assert "timeStamp.untrusted" in codes(store, "informational")


def test_c2pa_refuses_to_sign_with_an_expired_leaf_before_asking_the_tsa(
    expired: Expired, tsa: LocalTsa
) -> None:
    before = tsa.requests
    for url in (tsa.url, None):
        with pytest.raises(c2pa.C2paError.Signature, match="not valid at time of signing"):
            raw_sign(expired.identity, url)
    assert tsa.requests == before


# -- genseal's signer and reader -----------------------------------------------------------


def test_signer_stamps_with_the_configured_tsa(identity: SigningIdentity) -> None:
    stamp_time = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=2)).replace(microsecond=0)
    with LocalTsa(clock=lambda: stamp_time) as server:
        signer = C2paSigner(identity, tsa_url=server.url)
        before = server.requests  # the signer's start-up self-test may sign (and stamp) once
        data = signer.sign(IMAGE, PNG, claim("gs_stamped")).data
        assert server.requests == before + 1
        report = C2paReader(identity.root_cert_pem + server.root_pem).read(data, PNG)
    assert report.state == "trusted"
    assert {"timeStamp.validated", "timeStamp.trusted"} <= set(report.success_codes)
    assert report.signed_at == stamp_time


def test_reader_takes_no_signing_time_from_an_untrusted_time_stamp(
    identity: SigningIdentity, tsa: LocalTsa
) -> None:
    data = C2paSigner(identity, tsa_url=tsa.url).sign(IMAGE, PNG, claim("gs_untrusted")).data
    # c2pa still puts the TSA's time in signature_info.time; only a trusted one counts.
    report = C2paReader(identity.root_cert_pem).read(data, PNG)
    assert report.state == "trusted"
    assert "timeStamp.untrusted" in {s.code for s in report.informational}
    assert report.signed_at is None


def test_stamped_seal_stays_trusted_after_the_leaf_expired(expired: Expired) -> None:
    reader = C2paReader(expired.identity.root_cert_pem + expired.tsa_root_pem)
    report = reader.read(expired.genseal_stamped, PNG)
    assert report.state == "trusted", report.status_codes
    assert "timeStamp.trusted" in report.success_codes
    assert report.status_codes == []


def test_unstamped_seal_turns_invalid_once_the_leaf_expired(expired: Expired) -> None:
    reader = C2paReader(expired.identity.root_cert_pem + expired.tsa_root_pem)
    report = reader.read(expired.genseal_unstamped, PNG)
    assert report.state == "invalid"
    assert "signingCredential.expired" in {s.code for s in report.status_codes}


def test_signing_fails_when_the_tsa_is_unreachable(identity: SigningIdentity) -> None:
    url = free_port_url()
    with pytest.raises(SigningError) as err:
        # Failing at start-up (a self-test signature) or at the first image are both fine.
        C2paSigner(identity, tsa_url=url).sign(IMAGE, PNG, claim("gs_unreachable"))
    assert url in str(err.value)


@pytest.mark.parametrize("failure", ["http 500", "garbage"])
def test_signing_fails_when_the_tsa_answers_badly(
    identity: SigningIdentity, fresh_tsa: LocalTsa, failure: str
) -> None:
    signer = C2paSigner(identity, tsa_url=fresh_tsa.url)
    if failure == "http 500":
        fresh_tsa.fail()
    else:
        fresh_tsa.garbage()
    before = fresh_tsa.requests
    with pytest.raises(SigningError) as err:
        signer.sign(IMAGE, PNG, claim("gs_bad_tsa"))
    assert fresh_tsa.requests == before + 1
    assert fresh_tsa.url in str(err.value)
