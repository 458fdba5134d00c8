"""Production signing identities: PEM chains of every C2PA algorithm, remote signers, and the
refusals that keep genseal from signing manifests verifiers would reject."""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path
from typing import Any

import c2pa
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from PIL import Image

from genseal.errors import ConfigError, SigningError
from provenance import (
    C2paSigner,
    ManifestOptions,
    SealClaim,
    SigningAlgorithm,
    SigningIdentity,
    identity_problems,
    load_pem_identity,
    load_signer_plugin,
)
from provenance.c2pa import C2paReader
from tests._pki import DOCUMENT_SIGNING, NOW, CertificateAuthority

CLAIM = SealClaim(
    genseal_id="gs_test",
    title="test",
    software_agent="genseal test",
    model_id="tiny",
    kind="created",
    soft_binding_alg="org.genseal.dwtdctsvd.v1",
    soft_binding_value="0x00000000",
)


@pytest.fixture(scope="module")
def ca() -> CertificateAuthority:
    return CertificateAuthority()


def png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (48, 32), (200, 40, 90)).save(buffer, format="PNG")
    return buffer.getvalue()


def read(data: bytes, anchors: bytes) -> tuple[str, list[str], dict[str, Any]]:
    report = C2paReader(anchors).read(data, "image/png")
    return report.state, [s.code for s in report.status_codes], report.model_dump()


@pytest.mark.parametrize(
    ("kind", "algorithm"),
    [
        ("p256", "ES256"),
        ("p384", "ES384"),
        ("p521", "ES512"),
        ("rsa2048", "PS256"),
        ("ed25519", "ED25519"),
    ],
)
def test_pem_identity_of_every_algorithm_signs_trusted_manifests(
    ca: CertificateAuthority, tmp_path: Path, kind: str, algorithm: str
) -> None:
    chain, key = ca.issue(kind)
    files = ca.write(tmp_path, chain, key)
    identity = load_pem_identity(files["chain"], files["root"], files["key"])
    assert identity.alg == algorithm
    signed = C2paSigner(identity).sign(png(), "image/png", CLAIM)
    state, codes, report = read(signed.data, ca.root_pem)
    assert (state, codes) == ("trusted", [])
    assert report["signer"] == "genseal test signer"


def test_rsa_key_may_sign_ps384(ca: CertificateAuthority, tmp_path: Path) -> None:
    chain, key = ca.issue("rsa2048")
    files = ca.write(tmp_path, chain, key)
    identity = load_pem_identity(files["chain"], files["root"], files["key"], algorithm="PS384")
    assert identity.alg == "PS384"
    state, _, _ = read(C2paSigner(identity).sign(png(), "image/png", CLAIM).data, ca.root_pem)
    assert state == "trusted"
    with pytest.raises(SigningError, match="does not fit"):
        load_pem_identity(files["chain"], files["root"], files["key"], algorithm="ES256")


def test_encrypted_key_is_opened_with_its_password(
    ca: CertificateAuthority, tmp_path: Path
) -> None:
    chain, key = ca.issue()
    files = ca.write(tmp_path, chain, key, password=b"s3cret")
    identity = load_pem_identity(files["chain"], files["root"], files["key"], key_password="s3cret")
    assert b"ENCRYPTED" not in (identity.private_key_pem or b"")
    with pytest.raises(SigningError, match="cannot be read") as wrong:
        load_pem_identity(files["chain"], files["root"], files["key"], key_password="nope")
    assert "s3cret" not in str(wrong.value)
    with pytest.raises(SigningError, match="GENSEAL_SIGNING_KEY_PASSWORD"):
        load_pem_identity(files["chain"], files["root"], files["key"])


def test_root_copied_into_the_chain_is_left_out(ca: CertificateAuthority, tmp_path: Path) -> None:
    chain, key = ca.issue()
    files = ca.write(tmp_path, chain + ca.root_pem, key)
    identity = load_pem_identity(files["chain"], files["root"], files["key"])
    assert ca.root_pem not in identity.chain_pem


REFUSALS: dict[str, tuple[dict[str, Any], str]] = {
    "CA:true leaf": ({"ca": True}, "is a CA"),
    "no digitalSignature": ({"digital_signature": False}, "lacks digitalSignature"),
    "no EKU": ({"eku": []}, "ExtendedKeyUsage (none)"),
    "documentSigning without a trust configuration": (
        {"eku": [DOCUMENT_SIGNING]},
        "ExtendedKeyUsage (documentSigning)",
    ),
    "expired": ({"not_after": NOW - dt.timedelta(hours=1)}, "expired at"),
    "not yet valid": ({"not_before": NOW + dt.timedelta(days=1)}, "is not valid before"),
    "no AuthorityKeyIdentifier": ({"authority_key_id": False}, "AuthorityKeyIdentifier"),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_identity_verifiers_would_reject_is_refused(
    ca: CertificateAuthority, tmp_path: Path, case: str
) -> None:
    options, message = REFUSALS[case]
    if "not_before" in options:
        options = {**options, "not_after": NOW + dt.timedelta(days=30)}
    chain, key = ca.issue(**options)
    files = ca.write(tmp_path, chain, key)
    with pytest.raises(SigningError, match="cannot be used") as caught:
        load_pem_identity(files["chain"], files["root"], files["key"])
    assert message in str(caught.value)
    assert "PRIVATE KEY" not in str(caught.value)


def test_documentsigning_is_accepted_with_a_trust_configuration(
    ca: CertificateAuthority, tmp_path: Path
) -> None:
    chain, key = ca.issue(eku=[DOCUMENT_SIGNING])
    files = ca.write(tmp_path, chain, key)
    identity = load_pem_identity(
        files["chain"], files["root"], files["key"], allowed_ekus=[DOCUMENT_SIGNING.dotted_string]
    )
    assert identity_problems(identity) == []
    C2paSigner(identity)  # its self-test verified a manifest with the same configuration


def test_key_of_another_certificate_and_foreign_root_are_refused(
    ca: CertificateAuthority, tmp_path: Path
) -> None:
    chain, _ = ca.issue()
    _, other_key = ca.issue()
    files = ca.write(tmp_path / "mismatch", chain, other_key)
    with pytest.raises(SigningError, match="does not belong to the signing certificate"):
        load_pem_identity(files["chain"], files["root"], files["key"])

    stranger = CertificateAuthority(name="another root")
    chain, key = ca.issue()
    files = ca.write(tmp_path / "foreign", chain, key)
    files["root"].write_bytes(stranger.root_pem)
    with pytest.raises(SigningError, match="does not lead to the configured root"):
        load_pem_identity(files["chain"], files["root"], files["key"])


def test_weak_rsa_key_is_refused(ca: CertificateAuthority, tmp_path: Path) -> None:
    chain, key = ca.issue("rsa1024")
    files = ca.write(tmp_path, chain, key)
    with pytest.raises(SigningError, match="1024 bits"):
        load_pem_identity(files["chain"], files["root"], files["key"])


def test_missing_and_garbage_files_are_named(ca: CertificateAuthority, tmp_path: Path) -> None:
    chain, key = ca.issue()
    files = ca.write(tmp_path, chain, key)
    with pytest.raises(SigningError, match=r"cannot read .*absent\.pem"):
        load_pem_identity(tmp_path / "absent.pem", files["root"], files["key"])
    files["chain"].write_bytes(b"not a certificate")
    with pytest.raises(SigningError, match="cannot be parsed"):
        load_pem_identity(files["chain"], files["root"], files["key"])


# -- remote signers -------------------------------------------------------------------------------


class KeyHeldElsewhere:
    """A RemoteSigner as a KMS client would be: genseal hands it bytes, it returns a signature."""

    def __init__(self, key: PrivateKeyTypes, chain: bytes | None, algorithm: SigningAlgorithm):
        self._key = key
        self.certificate_chain_pem = chain
        self.algorithm = algorithm
        self.calls = 0

    def sign(self, data: bytes) -> bytes:
        self.calls += 1
        key = self._key
        if isinstance(key, ec.EllipticCurvePrivateKey):
            return key.sign(data, ec.ECDSA(hashes.SHA256()))
        if isinstance(key, rsa.RSAPrivateKey):
            return key.sign(data, padding.PSS(padding.MGF1(hashes.SHA256()), 32), hashes.SHA256())
        assert isinstance(key, ed25519.Ed25519PrivateKey)
        return key.sign(data)


def remote_identity(ca: CertificateAuthority, tmp_path: Path, chain: bytes) -> SigningIdentity:
    (tmp_path / "root.pem").write_bytes(ca.root_pem)
    return load_pem_identity(
        tmp_path / "kms-chain.pem", tmp_path / "root.pem", None, certificate_chain_pem=chain
    )


@pytest.mark.parametrize(
    ("kind", "algorithm"), [("p256", "ES256"), ("rsa2048", "PS256"), ("ed25519", "ED25519")]
)
def test_remote_signer_signs_without_the_key_in_genseal(
    ca: CertificateAuthority, tmp_path: Path, kind: str, algorithm: SigningAlgorithm
) -> None:
    chain, key = ca.issue(kind)
    identity = remote_identity(ca, tmp_path, chain)
    assert identity.private_key_pem is None
    remote = KeyHeldElsewhere(key, chain, algorithm)
    signer = C2paSigner(identity, remote=remote)
    assert remote.calls == 1, "the start-up self-test signed once"
    state, codes, _ = read(signer.sign(png(), "image/png", CLAIM).data, ca.root_pem)
    assert (state, codes) == ("trusted", [])
    assert remote.calls == 2


def test_remote_signer_with_the_wrong_key_is_refused_at_start(
    ca: CertificateAuthority, tmp_path: Path
) -> None:
    chain, _ = ca.issue()
    _, other = ca.issue()
    identity = remote_identity(ca, tmp_path, chain)
    with pytest.raises(SigningError, match="signature does not match"):
        C2paSigner(identity, remote=KeyHeldElsewhere(other, chain, "ES256"))


def test_remote_signer_failure_is_a_clear_error(ca: CertificateAuthority, tmp_path: Path) -> None:
    chain, key = ca.issue()
    identity = remote_identity(ca, tmp_path, chain)

    class Unreachable(KeyHeldElsewhere):
        def sign(self, data: bytes) -> bytes:
            raise ConnectionError("KMS endpoint kms.example refused the connection")

    with pytest.raises(SigningError, match="the remote signer failed: KMS endpoint"):
        C2paSigner(identity, remote=Unreachable(key, chain, "ES256"))
    with pytest.raises(SigningError, match="no private key and no remote signer"):
        C2paSigner(identity)


def test_signer_plugin_is_loaded_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GENSEAL_TEST_KMS_CURVE", "p256")
    signer = load_signer_plugin("tests.provenance._kms_plugin:make_signer")
    assert signer.algorithm == "ES256" and signer.certificate_chain_pem
    for spec, message in [
        ("no-colon", "not of the form"),
        ("tests.provenance.no_such_module:make", "cannot import"),
        ("tests.provenance._kms_plugin:absent", "no callable"),
        ("tests.provenance._kms_plugin:broken", "failed to start: no KMS credentials"),
        ("tests.provenance._kms_plugin:not_a_signer", "lacks"),
    ]:
        with pytest.raises(ConfigError, match=message):
            load_signer_plugin(spec)


# -- rotation and deployment assertions ----------------------------------------------------------


def test_old_manifests_verify_after_a_new_leaf_under_the_same_root(
    ca: CertificateAuthority, tmp_path: Path
) -> None:
    first_chain, first_key = ca.issue(common_name="signer 2026")
    first = ca.write(tmp_path / "first", first_chain, first_key)
    old = C2paSigner(load_pem_identity(first["chain"], first["root"], first["key"])).sign(
        png(), "image/png", CLAIM
    )
    second_chain, second_key = ca.issue(common_name="signer 2027")
    second = ca.write(tmp_path / "second", second_chain, second_key)
    new = C2paSigner(load_pem_identity(second["chain"], second["root"], second["key"])).sign(
        png(), "image/png", CLAIM
    )
    for signed, name in ((old, "signer 2026"), (new, "signer 2027")):
        state, _, report = read(signed.data, ca.root_pem)
        assert (state, report["signer"]) == ("trusted", name)


def test_training_mining_and_creator_assertions(ca: CertificateAuthority, tmp_path: Path) -> None:
    chain, key = ca.issue()
    files = ca.write(tmp_path, chain, key)
    options = ManifestOptions(
        training_mining="notAllowed",
        creator_name="Example Platform",
        creator_url="https://example.com",
    )
    signer = C2paSigner(
        load_pem_identity(files["chain"], files["root"], files["key"]), options=options
    )
    signed = signer.sign(png(), "image/png", CLAIM)
    state, _, _ = read(signed.data, ca.root_pem)
    assert state == "trusted"
    with c2pa.Reader("image/png", io.BytesIO(signed.data)) as reader:
        store = json.loads(reader.json())
    assertions = {
        a["label"]: a["data"] for a in store["manifests"][store["active_manifest"]]["assertions"]
    }
    entries = assertions["cawg.training-mining"]["entries"]
    assert {entry["use"] for entry in entries.values()} == {"notAllowed"}
    assert "cawg.ai_generative_training" in entries
    assert assertions["stds.schema-org.CreativeWork"]["author"] == [
        {"@type": "Organization", "name": "Example Platform", "url": "https://example.com"}
    ]
