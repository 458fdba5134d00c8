"""Verification end to end: real signing, real watermark, real store."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from genseal.errors import ImageInputError
from provenance import (
    DwtDctSvdWatermarker,
    IngredientSpec,
    ManifestStore,
    ProvenanceReport,
    SigningIdentity,
    Verifier,
)
from tests.provenance.conftest import SealFn, decode, encode, photo_image


@pytest.fixture
def verifier(
    store: ManifestStore, identity: SigningIdentity, watermarker: DwtDctSvdWatermarker
) -> Verifier:
    return Verifier(store, identity.root_cert_pem, watermarker)


def test_sealed_image_is_trusted_and_found_by_its_manifest(
    verifier: Verifier, seal: SealFn, photos: dict[str, Image.Image]
) -> None:
    sealed = seal(photos["astronaut"], "0badcafe")
    report = verifier.verify(sealed.signed.data, "astronaut.png")
    c2pa = report.c2pa
    assert c2pa.state == "trusted"
    assert c2pa.status_codes == []
    assert "signingCredential.trusted" in c2pa.success_codes
    assert c2pa.manifest_label == sealed.signed.manifest_label
    assert c2pa.signer == "genseal development signer"
    assert c2pa.issuer is not None and "intermediate" in c2pa.issuer
    assert c2pa.digital_source_type is not None
    assert c2pa.digital_source_type.endswith("/trainedAlgorithmicMedia")
    assert [a["action"] for a in c2pa.actions] == ["c2pa.created"]
    assert c2pa.moderation is not None and c2pa.moderation["genseal_id"] == sealed.record.id
    assert c2pa.soft_binding == {
        "alg": "org.genseal.dwtdctsvd.1",
        "blocks": [{"scope": {}, "value": "0badcafe"}],
    }
    assert report.format == "image/png" and (report.width, report.height) == (512, 512)
    assert report.watermark.detected and report.watermark.payload == "0badcafe"
    recovery = report.recovery
    assert recovery.found and recovery.manifest_id == sealed.record.id
    assert recovery.evidence == ["manifest", "watermark", "fingerprint"]
    assert recovery.pixels_altered is False
    assert recovery.moderation == c2pa.moderation
    assert report.summary.startswith("Content Credentials are valid and signed by a trusted")


def test_without_anchors_the_same_image_is_only_valid(
    store: ManifestStore,
    watermarker: DwtDctSvdWatermarker,
    seal: SealFn,
    photos: dict[str, Image.Image],
) -> None:
    sealed = seal(photos["coffee"], "11112222")
    report = Verifier(store, None, watermarker).verify(sealed.signed.data)
    assert report.c2pa.state == "valid"
    assert [s.code for s in report.c2pa.status_codes] == ["signingCredential.untrusted"]
    # An untrusted manifest's label could be copied: it is not evidence, the pixels are.
    assert report.recovery.found
    assert report.recovery.evidence == ["watermark", "fingerprint"]


def test_changed_pixels_make_the_manifest_invalid(
    verifier: Verifier, seal: SealFn, photos: dict[str, Image.Image]
) -> None:
    sealed = seal(photos["chelsea"], "33334444")
    tampered = Image.open(io.BytesIO(sealed.signed.data))
    pixels = np.array(tampered)
    pixels[100:140, 100:140] = 255 - pixels[100:140, 100:140]
    # Re-embed the original manifest into the altered pixels, as a forger would.
    altered = encode(Image.fromarray(pixels))
    data = _graft_manifest(sealed.signed.data, altered)
    report = verifier.verify(data)
    assert report.c2pa.state == "invalid"
    assert "assertion.dataHash.mismatch" in {s.code for s in report.c2pa.status_codes}
    assert report.recovery.found and report.recovery.manifest_id == sealed.record.id
    assert report.recovery.pixels_altered is True
    assert "invalid" in report.summary


def _graft_manifest(signed_png: bytes, other_png: bytes) -> bytes:
    """Copy the caBX (C2PA) chunk of one PNG into another, right after IHDR."""
    chunks = _png_chunks(signed_png)
    manifest = next(c for c in chunks if c[4:8] == b"caBX")
    target = _png_chunks(other_png)
    return b"\x89PNG\r\n\x1a\n" + target[0] + manifest + b"".join(target[1:])


def _png_chunks(data: bytes) -> list[bytes]:
    chunks, offset = [], 8
    while offset < len(data):
        length = int.from_bytes(data[offset : offset + 4], "big")
        chunks.append(data[offset : offset + 12 + length])
        offset += 12 + length
    return chunks


def test_pillow_resave_strips_the_manifest_and_recovery_finds_it(
    verifier: Verifier, seal: SealFn, photos: dict[str, Image.Image]
) -> None:
    sealed = seal(photos["astronaut"], "55556666")
    resaved = encode(decode(sealed.signed.data))
    report = verifier.verify(resaved, "resaved.png")
    assert report.c2pa.state == "absent"
    assert report.c2pa.status_codes == []
    recovery = report.recovery
    assert recovery.attempted and recovery.found
    assert recovery.manifest_id == sealed.record.id
    assert recovery.manifest_label == sealed.signed.manifest_label
    assert recovery.evidence == ["watermark", "fingerprint"]
    assert recovery.fingerprint_distance == 0
    assert recovery.pixels_altered is None  # same pixels, other bytes
    assert recovery.moderation is not None
    assert recovery.moderation["genseal_id"] == sealed.record.id
    assert "no Content Credentials" in report.summary
    assert sealed.record.id in report.summary


def test_jpeg_reencode_keeps_the_watermark(
    verifier: Verifier, seal: SealFn, photos: dict[str, Image.Image]
) -> None:
    sealed = seal(photos["coffee"], "77778888")
    jpeg = encode(decode(sealed.signed.data).convert("RGB"), "JPEG", quality=75)
    report = verifier.verify(jpeg, "shared.jpg")
    assert report.format == "image/jpeg"
    assert report.c2pa.state == "absent"
    assert report.watermark.detected and report.watermark.payload == "77778888"
    assert report.recovery.found and report.recovery.manifest_id == sealed.record.id
    assert "watermark" in report.recovery.evidence


def test_sealed_jpeg_and_webp_verify(
    verifier: Verifier, seal: SealFn, photos: dict[str, Image.Image]
) -> None:
    for fmt in ("JPEG", "WEBP"):
        sealed = seal(photos["chelsea"], "9999aaaa", fmt=fmt)
        report = verifier.verify(sealed.signed.data)
        assert report.c2pa.state == "trusted", fmt
        assert report.watermark.payload == "9999aaaa", fmt
        assert report.recovery.evidence[0] == "manifest", fmt


def test_unmarked_photo_is_not_recovered(
    verifier: Verifier, seal: SealFn, photos: dict[str, Image.Image]
) -> None:
    seal(photos["astronaut"], "bbbbcccc")
    seal(photos["coffee"], "ddddeeee")
    report = verifier.verify(encode(photos["chelsea"]), "chelsea.png")
    assert report.c2pa.state == "absent"
    assert not report.watermark.detected and report.watermark.payload is None
    assert report.recovery.attempted and not report.recovery.found
    assert report.recovery.manifest_id is None and report.recovery.evidence == []
    assert report.summary == (
        "The file carries no Content Credentials; no genseal watermark or sealed manifest "
        "matches it."
    )


def test_a_watermark_alone_never_names_a_manifest(
    verifier: Verifier,
    seal: SealFn,
    watermarker: DwtDctSvdWatermarker,
    photos: dict[str, Image.Image],
) -> None:
    # 32-bit payloads collide: another image carrying the same id must not inherit its record.
    seal(photos["astronaut"], "f00df00d")
    impostor = watermarker.embed(photos["chelsea"], "f00df00d")
    report = verifier.verify(encode(impostor))
    assert report.watermark.detected and report.watermark.payload == "f00df00d"
    assert not report.recovery.found
    assert "a watermark alone never names a manifest" in report.recovery.reason


def test_fingerprint_alone_recovers_an_unmarked_copy(
    verifier: Verifier, seal: SealFn, photos: dict[str, Image.Image]
) -> None:
    sealed = seal(photos["coffee"], "abcdef01")
    # The pixels before watermarking: no mark, but the same picture.
    report = verifier.verify(encode(sealed.original))
    assert not report.watermark.detected
    assert report.recovery.found and report.recovery.evidence == ["fingerprint"]
    assert report.recovery.manifest_id == sealed.record.id


def test_flat_images_are_not_matched_by_fingerprint(
    verifier: Verifier, seal: SealFn, watermarker: DwtDctSvdWatermarker
) -> None:
    seal(Image.new("RGB", (512, 512), (200, 30, 30)), "c0c0c0c0")
    report = verifier.verify(encode(Image.new("RGB", (512, 512), (30, 30, 200))))
    assert not report.recovery.found
    assert "too flat" in report.recovery.reason


def test_edited_image_reports_its_ingredient(
    verifier: Verifier, seal: SealFn, photos: dict[str, Image.Image]
) -> None:
    source = encode(photo_image("astronaut", 256), "JPEG", quality=85)
    sealed = seal(
        photos["chelsea"],
        "12121212",
        ingredient=IngredientSpec(data=source, mime="image/jpeg", title="upload.jpg"),
    )
    report = verifier.verify(sealed.signed.data)
    assert report.c2pa.state == "trusted"
    assert [a["action"] for a in report.c2pa.actions] == ["c2pa.opened", "c2pa.edited"]
    (ingredient,) = report.c2pa.ingredients
    assert ingredient["title"] == "upload.jpg"
    assert ingredient["relationship"] == "parentOf"
    assert ingredient["format"] == "image/jpeg"
    assert ingredient["validation_state"] == "absent"  # the upload had no credentials


def test_without_a_store_there_is_no_recovery(
    identity: SigningIdentity, watermarker: DwtDctSvdWatermarker, photos: dict[str, Image.Image]
) -> None:
    report = Verifier(None, identity.root_cert_pem, watermarker).verify(encode(photos["coffee"]))
    assert not report.recovery.attempted and not report.recovery.found


def test_unreadable_files_are_input_errors(verifier: Verifier) -> None:
    for data in (b"", b"hello, not an image", encode(photo_image("coffee", 256))[:300]):
        with pytest.raises(ImageInputError):
            verifier.verify(data, "bad.bin")


def test_report_round_trips_through_json(
    verifier: Verifier, seal: SealFn, photos: dict[str, Image.Image]
) -> None:
    sealed = seal(photos["astronaut"], "13579bdf")
    report = verifier.verify(sealed.signed.data, "a.png")
    again = ProvenanceReport.model_validate_json(report.model_dump_json())
    assert again == report
    schema = ProvenanceReport.model_json_schema()
    assert {"c2pa", "watermark", "recovery", "summary"} <= set(schema["properties"])
