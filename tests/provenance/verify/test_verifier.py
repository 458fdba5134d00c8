"""Verification end to end: real signing, real watermark, real store."""

from __future__ import annotations

import io

import numpy as np
import pytest
from cryptography import x509
from PIL import Image

from genseal.errors import ImageInputError
from provenance import (
    C2paSigner,
    DwtDctSvdWatermarker,
    IngredientReport,
    IngredientSpec,
    ManifestOptions,
    ManifestStore,
    ProvenanceReport,
    SigningIdentity,
    StatusCode,
    Verifier,
)
from provenance.c2pa._mapping import report_from_store as _store_report
from tests.provenance.conftest import SealFn, claim, decode, encode, photo_image


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
    assert ingredient.title == "upload.jpg"
    assert ingredient.relationship == "parentOf"
    assert ingredient.format == "image/jpeg"
    assert ingredient.validation_state == "absent"  # the upload had no credentials
    assert ingredient.manifest_label is None and ingredient.ingredients == []
    assert [s.code for s in ingredient.informational] == ["ingredient.unknownProvenance"]
    assert "history is unknown" in ingredient.informational[0].meaning


def test_an_edit_of_a_sealed_image_nests_the_first_manifest(
    verifier: Verifier, seal: SealFn, photos: dict[str, Image.Image]
) -> None:
    first = seal(photos["coffee"], "21212121")
    second = seal(
        photos["chelsea"],
        "31313131",
        ingredient=IngredientSpec(data=first.signed.data, mime="image/png", title="first.png"),
    )
    report = verifier.verify(second.signed.data)
    assert report.c2pa.state == "trusted"
    (parent,) = report.c2pa.ingredients
    assert parent.title == "first.png"
    assert parent.manifest_label == first.signed.manifest_label
    assert parent.validation_state == "trusted"
    assert parent.signer == "genseal development signer"
    assert parent.claim_generator is not None and parent.claim_generator.startswith("genseal")
    assert parent.digital_source_type is not None
    assert parent.digital_source_type.endswith("/trainedAlgorithmicMedia")
    assert parent.failures == []
    # The signer took it in without trust anchors of its own; trust is judged here, now.
    assert parent.recorded_failures in ([], ["signingCredential.untrusted"])
    assert parent.ingredients == [] and parent.unexpanded is None
    assert not any("first.png" in w for w in report.warnings)


def test_without_a_store_there_is_no_recovery(
    identity: SigningIdentity, watermarker: DwtDctSvdWatermarker, photos: dict[str, Image.Image]
) -> None:
    report = Verifier(None, identity.root_cert_pem, watermarker).verify(encode(photos["coffee"]))
    assert not report.recovery.attempted and not report.recovery.found


def test_bytes_that_are_no_image_are_input_errors(verifier: Verifier) -> None:
    for data, message in ((b"", "empty"), (b"hello, not an image", "not an image")):
        with pytest.raises(ImageInputError, match=message):
            verifier.verify(data, "bad.bin")


def test_a_truncated_image_still_gets_a_report(verifier: Verifier) -> None:
    report = verifier.verify(encode(photo_image("coffee", 256))[:300], "cut.png")
    assert report.format == "image/png" and report.width is None
    assert report.c2pa.state == "absent" and report.c2pa.reason
    assert any("pixels could not be decoded" in w for w in report.warnings)
    assert "could not be decoded" in report.summary
    assert not report.watermark.detected and report.fingerprint is None


def test_the_report_explains_every_status_code(
    verifier: Verifier, seal: SealFn, photos: dict[str, Image.Image]
) -> None:
    sealed = seal(photos["coffee"], "41414141")
    c2pa = verifier.verify(sealed.signed.data).c2pa
    assert {s.code for s in c2pa.successes} == set(c2pa.success_codes)
    for status in (*c2pa.successes, *c2pa.informational):
        assert status.meaning and status.explanation, status
    trusted = next(s for s in c2pa.successes if s.code == "signingCredential.trusted")
    assert "trust anchors" in trusted.meaning
    assert c2pa.reason is not None and c2pa.reason.startswith("signed by genseal")


def test_the_signing_certificate_is_named_in_full(
    verifier: Verifier, identity: SigningIdentity, seal: SealFn, photos: dict[str, Image.Image]
) -> None:
    sealed = seal(photos["astronaut"], "51515151")
    c2pa = verifier.verify(sealed.signed.data).c2pa
    cert = c2pa.signing_certificate
    leaf = x509.load_pem_x509_certificates(identity.chain_pem)[0]
    assert cert is not None
    assert cert.subject == leaf.subject.rfc4514_string()
    assert cert.issuer == leaf.issuer.rfc4514_string()
    assert cert.serial_number == f"{leaf.serial_number:x}"
    assert (cert.common_name, cert.organization) == (c2pa.signer, c2pa.signer_organization)
    assert cert.not_before is not None and cert.not_after is not None
    assert cert.not_before < cert.not_after
    assert c2pa.signature_algorithm == "es256"


def test_without_a_time_stamp_the_signing_time_is_unknown_and_said_so(
    verifier: Verifier, seal: SealFn, photos: dict[str, Image.Image]
) -> None:
    sealed = seal(photos["chelsea"], "61616161")
    c2pa = verifier.verify(sealed.signed.data).c2pa
    assert c2pa.time_stamp.present is False and c2pa.time_stamp.time is None
    assert c2pa.signed_at is None
    assert any("no RFC 3161 time-stamp" in w for w in c2pa.warnings)


def test_an_untrusted_signer_is_a_warning_never_a_success(
    store: ManifestStore,
    watermarker: DwtDctSvdWatermarker,
    seal: SealFn,
    photos: dict[str, Image.Image],
) -> None:
    sealed = seal(photos["coffee"], "71717171")
    report = Verifier(store, None, watermarker).verify(sealed.signed.data)
    assert report.c2pa.state == "valid"
    warning = report.c2pa.warnings[0]
    assert "the signature is intact but the signer" in warning
    assert "is not in the trust list" in warning
    assert warning in report.warnings
    assert "not trusted" in report.summary
    (untrusted,) = report.c2pa.status_codes
    assert "does not chain" in untrusted.meaning


def test_report_round_trips_through_json(
    verifier: Verifier, seal: SealFn, photos: dict[str, Image.Image]
) -> None:
    sealed = seal(photos["astronaut"], "13579bdf")
    report = verifier.verify(sealed.signed.data, "a.png")
    again = ProvenanceReport.model_validate_json(report.model_dump_json())
    assert again == report
    schema = ProvenanceReport.model_json_schema()
    assert {"c2pa", "watermark", "recovery", "summary"} <= set(schema["properties"])


def test_training_mining_and_creator_of_a_genseal_manifest(
    identity: SigningIdentity, watermarker: DwtDctSvdWatermarker
) -> None:
    options = ManifestOptions(
        training_mining="notAllowed", creator_name="Example Platform", creator_url="https://x.test"
    )
    signer = C2paSigner(identity, options=options)
    data = signer.sign(encode(photo_image("coffee", 128)), "image/png", claim("gs_creator")).data
    c2pa = Verifier(None, identity.root_cert_pem, watermarker).verify(data).c2pa
    assert c2pa.state == "trusted"
    assert c2pa.training_mining is not None
    uses = {entry["use"] for entry in c2pa.training_mining["entries"].values()}
    assert uses == {"notAllowed"}
    assert c2pa.creator is not None
    assert [a.get("name") for a in c2pa.creator.authors] == ["Example Platform"]
    for found in c2pa.creator.identities:
        # When one is added, it is signed with the signing key: an X.509 identity.
        assert found.sig_type == "cawg.x509.cose"
        assert any(r.endswith("stds.schema-org.CreativeWork") for r in found.referenced_assertions)


def test_unknown_status_codes_get_a_generic_meaning() -> None:
    assert "time-stamp" in StatusCode(code="timeStamp.fromTheFuture").meaning
    assert "does not know" in StatusCode(code="vendor.something").meaning
    assert StatusCode(code="claimSignature.mismatch", meaning="kept").meaning == "kept"


def test_the_ingredient_tree_guards_against_cycles_and_size() -> None:
    # Two manifests naming each other as ingredients: c2pa would not build this, a forger might.
    def manifest(other: str, count: int = 1) -> dict[str, object]:
        return {
            "claim_generator": "forger",
            "ingredients": [
                {
                    "title": f"{other}-{i}",
                    "label": f"c2pa.ingredient__{i}",
                    "active_manifest": other,
                }
                for i in range(count)
            ],
        }

    store = {
        "active_manifest": "a",
        "manifests": {"a": manifest("b"), "b": manifest("a")},
        "validation_state": "Valid",
    }
    report = _store_report(store, {})
    (b,) = report.ingredients
    assert b.manifest_label == "b" and b.unexpanded is None
    (a,) = b.ingredients  # the active manifest again: shown, not followed
    assert a.manifest_label == "a" and a.ingredients == []
    assert a.unexpanded is not None and "cycle" in a.unexpanded
    # Every manifest naming the next one 4 times, 12 deep: 4**12 paths, listed up to a bound.
    manifests = {f"m{d}": manifest(f"m{d + 1}", 4) for d in range(12)}
    wide = {"active_manifest": "m0", "manifests": manifests, "validation_state": "Valid"}

    def count(nodes: list[IngredientReport]) -> int:
        return sum(1 + count(n.ingredients) for n in nodes)

    assert count(_store_report(wide, {}).ingredients) <= 256
