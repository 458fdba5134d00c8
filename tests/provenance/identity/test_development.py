"""The development signing identity: certificate profile, files, refusal to overwrite."""

from __future__ import annotations

import io
import json
import stat
from pathlib import Path

import c2pa
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from genseal.errors import ConfigError, SigningError
from provenance import (
    C2paSigner,
    SigningIdentity,
    ensure_identity,
    init_identity,
    load_identity,
    renew_identity,
)
from tests.provenance.conftest import claim, encode, photo_image


def _chain(identity: SigningIdentity) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(identity.chain_pem)


def test_leaf_has_the_profile_c2pa_accepts(identity: SigningIdentity) -> None:
    leaf, intermediate = _chain(identity)
    assert isinstance(leaf.public_key(), ec.EllipticCurvePublicKey)
    assert leaf.public_key().curve.name == "secp256r1"  # type: ignore[union-attr]
    usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and not usage.key_cert_sign
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.EMAIL_PROTECTION]
    assert leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    validity = leaf.not_valid_after_utc - leaf.not_valid_before_utc
    assert validity.days >= 700, "no TSA offline: the leaf must outlive the images it signs"
    leaf.verify_directly_issued_by(intermediate)


def test_cas_can_sign_certificates_and_chain_to_the_root(identity: SigningIdentity) -> None:
    root = x509.load_pem_x509_certificate(identity.root_cert_pem)
    _, intermediate = _chain(identity)
    for ca in (root, intermediate):
        assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
        assert ca.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
    intermediate.verify_directly_issued_by(root)
    root.verify_directly_issued_by(root)
    assert root not in _chain(identity), "the root is the verifier's anchor, not in the chain"


def test_files_and_private_key_modes(identity: SigningIdentity) -> None:
    keys = Path(identity.location)
    for name in ("root.pem", "chain.pem", "signer.key", "root.key"):
        assert (keys / name).is_file()
    for name in ("signer.key", "root.key"):
        assert stat.S_IMODE((keys / name).stat().st_mode) == 0o600
    assert (keys / "root.pem").read_bytes() == identity.root_cert_pem
    assert identity.created is True


def test_signed_manifest_is_trusted_with_the_root_as_anchor(
    identity: SigningIdentity, signer: C2paSigner
) -> None:
    signed = signer.sign(encode(photo_image("astronaut", 256)), "image/png", claim())
    anchored = c2pa.Context.from_dict(
        {
            "trust": {"trust_anchors": identity.root_cert_pem.decode()},
            "verify": {"ocsp_fetch": False},
        }
    )
    with c2pa.Reader("image/png", io.BytesIO(signed.data), context=anchored) as reader:
        assert reader.get_validation_state() == "Trusted"
    with c2pa.Reader("image/png", io.BytesIO(signed.data)) as reader:
        assert reader.get_validation_state() == "Valid"
        failures = json.loads(reader.json())["validation_results"]["activeManifest"]["failure"]
        assert [f["code"] for f in failures] == ["signingCredential.untrusted"]


def test_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    first = init_identity(tmp_path)
    with pytest.raises(ConfigError, match="already exists"):
        init_identity(tmp_path)
    assert load_identity(tmp_path).root_cert_pem == first.root_cert_pem
    second = init_identity(tmp_path, force=True)
    assert second.root_cert_pem != first.root_cert_pem
    assert load_identity(tmp_path).root_cert_pem == second.root_cert_pem


def test_load_missing_identity_names_the_command(tmp_path: Path) -> None:
    with pytest.raises(SigningError, match="no signing identity") as info:
        load_identity(tmp_path)
    assert "genseal keys init" in str(info.value)


def test_load_rejects_corrupt_or_mismatched_files(tmp_path: Path) -> None:
    init_identity(tmp_path)
    keys = tmp_path / "keys"
    good_key = (keys / "signer.key").read_bytes()
    (keys / "signer.key").write_bytes(
        b"-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n"
    )
    with pytest.raises(SigningError, match="corrupt"):
        load_identity(tmp_path)
    (keys / "signer.key").write_bytes((keys / "root.key").read_bytes())
    with pytest.raises(SigningError, match="does not belong"):
        load_identity(tmp_path)
    (keys / "signer.key").write_bytes(good_key)
    load_identity(tmp_path)


def test_ensure_creates_once_then_loads(tmp_path: Path) -> None:
    created = ensure_identity(tmp_path)
    assert created.created is True
    loaded = ensure_identity(tmp_path)
    assert loaded.created is False
    assert loaded.chain_pem == created.chain_pem


def test_ensure_never_replaces_a_broken_identity(tmp_path: Path) -> None:
    init_identity(tmp_path)
    (tmp_path / "keys" / "chain.pem").unlink()
    with pytest.raises(SigningError, match=r"missing: chain\.pem"):
        ensure_identity(tmp_path)
    assert not (tmp_path / "keys" / "chain.pem").exists()


def test_renew_issues_a_new_leaf_under_the_same_root(tmp_path: Path) -> None:
    first = init_identity(tmp_path)
    renewed = renew_identity(tmp_path)
    assert renewed.root_cert_pem == first.root_cert_pem
    assert renewed.chain_pem != first.chain_pem
    root = x509.load_pem_x509_certificate(renewed.root_cert_pem)
    _chain(renewed)[1].verify_directly_issued_by(root)
