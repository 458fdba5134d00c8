"""Verification against a `.c2pa` sidecar: real signing identity, real c2pa validation."""

from __future__ import annotations

import hashlib
import io
import uuid
from typing import Any

import c2pa
import pytest
from PIL import Image

from genseal.errors import ImageInputError, InputError
from provenance import (
    TRAINED_ALGORITHMIC_MEDIA,
    DwtDctSvdWatermarker,
    ManifestStore,
    SigningIdentity,
    Verifier,
)
from tests.provenance.conftest import SealFn, decode, encode


@pytest.fixture
def verifier(
    store: ManifestStore, identity: SigningIdentity, watermarker: DwtDctSvdWatermarker
) -> Verifier:
    return Verifier(store, identity.root_cert_pem, watermarker)


def sign_detached(identity: SigningIdentity, data: bytes, mime: str = "image/png") -> bytes:
    """A sidecar manifest store for ``data``, signed by the identity with c2pa's no-embed
    mode: the file stays byte for byte as it is and the manifest binds all of it."""
    info = c2pa.C2paSignerInfo(
        c2pa.C2paSigningAlg.ES256, identity.chain_pem, identity.private_key_pem, None
    )
    settings = c2pa.Settings.from_dict({"builder": {"thumbnail": {"enabled": False}}})
    context = c2pa.Context(settings=settings, signer=c2pa.Signer.from_info(info))
    definition: dict[str, Any] = {
        "label": f"urn:c2pa:{uuid.uuid4()}",
        "title": "detached.png",
        "format": mime,
        "claim_generator_info": [{"name": "genseal", "version": "test"}],
        "assertions": [
            {
                "label": "c2pa.actions",
                "data": {
                    "actions": [
                        {"action": "c2pa.created", "digitalSourceType": TRAINED_ALGORITHMIC_MEDIA}
                    ]
                },
            },
            {"label": "org.genseal.moderation", "data": {"decision": "release"}},
        ],
    }
    with c2pa.Builder(definition, context=context) as builder:
        builder.set_no_embed()
        out = io.BytesIO()
        manifest = builder.sign(mime, io.BytesIO(data), out)
    assert out.getvalue() == data  # no-embed leaves the asset alone
    return bytes(manifest)


def strip_manifest(png: bytes) -> bytes:
    """Remove the caBX (C2PA) chunk and nothing else: the bytes the signature hashed."""
    out, offset = bytearray(png[:8]), 8
    while offset < len(png):
        length = int.from_bytes(png[offset : offset + 4], "big")
        chunk = png[offset : offset + 12 + length]
        if chunk[4:8] != b"caBX":
            out += chunk
        offset += 12 + length
    return bytes(out)


def codes(statuses: list[Any]) -> set[str]:
    return {s.code for s in statuses}


def test_a_detached_sidecar_makes_an_unmarked_file_trusted(
    verifier: Verifier, identity: SigningIdentity, photos: dict[str, Image.Image]
) -> None:
    data = encode(photos["astronaut"])
    sidecar = sign_detached(identity, data)
    assert verifier.verify(data).c2pa.state == "absent"
    report = verifier.verify(data, "astronaut.png", manifest=sidecar)
    c2pa_report = report.c2pa
    assert c2pa_report.state == "trusted"
    assert c2pa_report.source == "sidecar"
    assert c2pa_report.status_codes == []
    assert "signingCredential.trusted" in c2pa_report.success_codes
    assert c2pa_report.signer == "genseal development signer"
    assert c2pa_report.digital_source_type == TRAINED_ALGORITHMIC_MEDIA
    assert c2pa_report.moderation == {"decision": "release"}
    assert report.summary.startswith("The sidecar's Content Credentials are valid and signed")
    # The pixels were still read from the file itself.
    assert (report.width, report.height) == (512, 512)
    assert report.sha256 == hashlib.sha256(data).hexdigest()


def test_the_stored_manifest_as_sidecar_verifies_the_sealed_file(
    verifier: Verifier, seal: SealFn, photos: dict[str, Image.Image]
) -> None:
    sealed = seal(photos["coffee"], "5eed5eed")
    report = verifier.verify(sealed.signed.data, manifest=sealed.record.manifest_store)
    assert report.c2pa.state == "trusted"
    assert report.c2pa.source == "sidecar"
    assert report.c2pa.manifest_label == sealed.signed.manifest_label
    # A trusted sidecar names the stored record as surely as an embedded manifest does.
    assert report.recovery.found and report.recovery.manifest_id == sealed.record.id
    assert report.recovery.evidence[0] == "manifest"
    embedded = verifier.verify(sealed.signed.data)
    assert embedded.c2pa.state == "trusted" and embedded.c2pa.source == "embedded"


@pytest.mark.parametrize("strip", ["pillow", "chunk"])
def test_the_stored_manifest_does_not_hold_for_a_stripped_copy(
    verifier: Verifier, seal: SealFn, photos: dict[str, Image.Image], strip: str
) -> None:
    # genseal's manifests are embedded when signed: their hash binds the file with the
    # manifest inside, so not even the exact bytes minus the manifest chunk satisfy it.
    sealed = seal(photos["chelsea"], "0ff1ce00")
    data = sealed.signed.data
    stripped = encode(decode(data)) if strip == "pillow" else strip_manifest(data)
    assert verifier.verify(stripped).c2pa.state == "absent"
    report = verifier.verify(stripped, manifest=sealed.record.manifest_store)
    assert report.c2pa.state == "invalid"
    assert report.c2pa.source == "sidecar"
    assert "assertion.dataHash.mismatch" in codes(report.c2pa.status_codes)
    assert report.summary.startswith("The sidecar's Content Credentials do not hold for this file")
    # The pixels still lead back to the sealed record, without the manifest as evidence.
    assert report.recovery.found and report.recovery.manifest_id == sealed.record.id
    assert "manifest" not in report.recovery.evidence


def test_a_sidecar_of_another_file_is_invalid(
    verifier: Verifier, identity: SigningIdentity, photos: dict[str, Image.Image]
) -> None:
    data = encode(photos["astronaut"])
    other = sign_detached(identity, encode(photos["coffee"]))
    report = verifier.verify(data, manifest=other)
    assert report.c2pa.state == "invalid"
    assert report.c2pa.source == "sidecar"
    assert "assertion.dataHash.mismatch" in codes(report.c2pa.status_codes)
    assert not report.recovery.found


def test_a_sidecar_replaces_the_embedded_manifest(
    verifier: Verifier, seal: SealFn, photos: dict[str, Image.Image]
) -> None:
    first = seal(photos["astronaut"], "aaaa0001")
    second = seal(photos["coffee"], "aaaa0002")
    report = verifier.verify(first.signed.data, manifest=second.record.manifest_store)
    assert report.c2pa.state == "invalid"
    assert report.c2pa.manifest_label == second.signed.manifest_label
    assert "assertion.dataHash.mismatch" in codes(report.c2pa.status_codes)
    # The label of a manifest that does not hold is no evidence: the pixels name the first.
    assert report.recovery.manifest_id == first.record.id
    assert "manifest" not in report.recovery.evidence


@pytest.mark.parametrize(
    ("sidecar", "message"),
    [
        (b"", "the sidecar manifest is empty"),
        (b"certainly not a manifest store", "not a C2PA manifest store"),
        (b"\x89PNG\r\n\x1a\n" + bytes(64), "not a C2PA manifest store"),
        (None, "the sidecar manifest cannot be read"),  # a real one, truncated
    ],
)
def test_an_unreadable_sidecar_is_an_input_error(
    verifier: Verifier,
    identity: SigningIdentity,
    photos: dict[str, Image.Image],
    sidecar: bytes | None,
    message: str,
) -> None:
    data = encode(photos["chelsea"])
    if sidecar is None:
        sidecar = sign_detached(identity, data)[:200]
    with pytest.raises(InputError, match=message) as caught:
        verifier.verify(data, manifest=sidecar)
    assert not isinstance(caught.value, ImageInputError)
    assert caught.value.hint is not None and "/v1/manifests/" in caught.value.hint


def test_a_non_image_with_a_sidecar_that_does_not_hold_is_an_image_error(
    verifier: Verifier, identity: SigningIdentity, photos: dict[str, Image.Image]
) -> None:
    sidecar = sign_detached(identity, encode(photos["astronaut"]))
    with pytest.raises(ImageInputError):
        verifier.verify(b"%PDF-1.7 not an image", manifest=sidecar)


def test_without_a_sidecar_the_source_is_embedded_or_none(
    verifier: Verifier, seal: SealFn, photos: dict[str, Image.Image]
) -> None:
    sealed = seal(photos["chelsea"], "beef0001")
    assert verifier.verify(sealed.signed.data).c2pa.source == "embedded"
    assert verifier.verify(encode(photos["coffee"])).c2pa.source is None
