"""Recovery of a stripped, edited copy: rivaGan watermark + PDQ + crop print, real store."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from PIL import Image

from genseal.errors import ConfigError
from provenance import (
    WATERMARK_BACKENDS,
    DwtDctSvdWatermarker,
    ManifestStore,
    RivaGanWatermarker,
    SigningIdentity,
    Verifier,
    crop_match,
    crop_print,
    make_watermarker,
)
from provenance.verify._verifier import _neighbours
from tests.provenance.conftest import C2paSigner, SealFn, decode, encode, make_sealer, photo_image


def _jpeg(quality: int) -> Callable[[Image.Image], bytes]:
    return lambda image: encode(image, "JPEG", quality=quality)


def _crop(fraction: float, corner: bool) -> Callable[[Image.Image], bytes]:
    def attack(image: Image.Image) -> bytes:
        w, h = image.size
        kw, kh = round(w * (1 - fraction)), round(h * (1 - fraction))
        left, top = (0, 0) if corner else ((w - kw) // 2, (h - kh) // 2)
        return encode(image.crop((left, top, left + kw, top + kh)))

    return attack


def _rotate_jpeg(degrees: float) -> Callable[[Image.Image], bytes]:
    def attack(image: Image.Image) -> bytes:
        turned = image.convert("RGB").rotate(
            degrees, Image.Resampling.BILINEAR, fillcolor=(255, 255, 255)
        )
        return encode(turned, "JPEG", quality=75)

    return attack


EDITS: dict[str, Callable[[Image.Image], bytes]] = {
    "png_resave": encode,  # pixels kept, manifest gone
    "jpeg75": _jpeg(75),
    "crop10_centre": _crop(0.10, corner=False),
    "crop10_corner": _crop(0.10, corner=True),
    "crop20_centre": _crop(0.20, corner=False),
    "crop20_corner": _crop(0.20, corner=True),
    "rotate2_jpeg75": _rotate_jpeg(2.0),
}


@pytest.fixture(scope="session")
def rivagan() -> RivaGanWatermarker:
    return RivaGanWatermarker()


@pytest.fixture
def riva_seal(signer: C2paSigner, rivagan: RivaGanWatermarker, store: ManifestStore) -> SealFn:
    return make_sealer(signer, rivagan, store)


@pytest.fixture
def riva_verifier(
    store: ManifestStore, identity: SigningIdentity, rivagan: RivaGanWatermarker
) -> Verifier:
    return Verifier(store, identity.root_cert_pem, rivagan)


@pytest.mark.parametrize("edit", list(EDITS))
def test_rivagan_recovers_the_manifest_after_everyday_edits(
    riva_seal: SealFn, riva_verifier: Verifier, photos: dict[str, Image.Image], edit: str
) -> None:
    riva_seal(photos["coffee"], "5eed0001")  # another sealed image in the same store
    sealed = riva_seal(photos["astronaut"], "c0ffee42")
    report = riva_verifier.verify(EDITS[edit](sealed.marked), f"{edit}.png")
    assert report.c2pa.state == "absent"
    recovery = report.recovery
    assert recovery.found, recovery.reason
    assert recovery.manifest_id == sealed.record.id
    assert "watermark" in recovery.evidence
    # Never a watermark alone: PDQ or, for crops, the crop print corroborates it.
    assert {"fingerprint", "crop_fingerprint"} & set(recovery.evidence)
    if edit.startswith("crop"):
        assert recovery.crop_match is not None and recovery.crop_match > 0.75
        assert recovery.pixels_altered is True
    assert recovery.moderation is not None


def test_default_backend_recovers_after_resave_and_jpeg75(
    seal: SealFn, store: ManifestStore, identity: SigningIdentity, photos: dict[str, Image.Image]
) -> None:
    verifier = Verifier(store, identity.root_cert_pem, DwtDctSvdWatermarker())
    sealed = seal(photos["chelsea"], "0badcafe")
    for data in (encode(sealed.marked), encode(sealed.marked, "JPEG", quality=75)):
        recovery = verifier.verify(data).recovery
        assert recovery.found and recovery.manifest_id == sealed.record.id
        assert recovery.evidence == ["watermark", "fingerprint"]


def test_default_backend_never_names_a_wrong_manifest_for_a_crop(
    seal: SealFn, store: ManifestStore, identity: SigningIdentity, photos: dict[str, Image.Image]
) -> None:
    # dwtdctsvd does not survive crops (see README): the honest answer is "not found".
    verifier = Verifier(store, identity.root_cert_pem, DwtDctSvdWatermarker())
    sealed = seal(photos["chelsea"], "0badcafe")
    recovery = verifier.verify(EDITS["crop10_centre"](sealed.marked)).recovery
    assert not recovery.found or recovery.manifest_id == sealed.record.id


def test_rivagan_rereads_a_crop_at_the_scale_it_was_cut_to(
    rivagan: RivaGanWatermarker, photos: dict[str, Image.Image]
) -> None:
    marked = rivagan.embed(photos["coffee"], "c0ffee42")
    untouched = rivagan.detect(marked)
    assert untouched.payload == "c0ffee42" and untouched.confidence > 0.8
    # 20 % off each side magnifies the mark by 1.25: the quick reading is weak and wrong
    # beyond its list; the thorough one, re-read at 0.8 of the working size, is right.
    cropped = decode(EDITS["crop20_corner"](marked))
    quick = rivagan.detect(cropped)
    assert "c0ffee42" not in (quick.payload, *quick.candidates)
    thorough = rivagan.detect(cropped, thorough=True)
    assert thorough.payload == "c0ffee42"
    assert thorough.confidence > quick.confidence + 0.3
    assert len(thorough.candidates) > len(quick.candidates)


def test_rivagan_candidates_flip_the_least_confident_bits_first(
    rivagan: RivaGanWatermarker, photos: dict[str, Image.Image]
) -> None:
    reading = rivagan.detect(decode(_jpeg(50)(rivagan.embed(photos["coffee"], "0badcafe"))))
    assert reading.payload is not None
    assert len(reading.candidates) == len(set(reading.candidates)) >= 63
    assert reading.payload not in reading.candidates
    distances = [(int(c, 16) ^ int(reading.payload, 16)).bit_count() for c in reading.candidates]
    assert distances[0] == 1  # the single cheapest flip comes first
    # Candidates are internal to recovery: the report's JSON does not carry them.
    assert "candidates" not in reading.model_dump()


def test_a_verifier_reads_the_marks_of_other_backends(
    seal: SealFn,
    riva_seal: SealFn,
    store: ManifestStore,
    identity: SigningIdentity,
    rivagan: RivaGanWatermarker,
    photos: dict[str, Image.Image],
) -> None:
    dwt = DwtDctSvdWatermarker()
    old = seal(photos["chelsea"], "0badcafe")  # sealed with dwtdctsvd, before a switch
    new = riva_seal(photos["astronaut"], "c0ffee42")
    verifier = Verifier(store, identity.root_cert_pem, rivagan, also_read=[dwt])
    for sealed, algorithm in ((old, "dwtdctsvd"), (new, "rivagan")):
        report = verifier.verify(encode(sealed.marked, "JPEG", quality=90))
        assert report.watermark.algorithm == algorithm
        assert report.watermark.payload == sealed.record.watermark_payload
        assert report.recovery.manifest_id == sealed.record.id
        assert "watermark" in report.recovery.evidence
    # Reading rivaGan alone, the old image's mark is not seen; PDQ still finds it.
    alone = Verifier(store, identity.root_cert_pem, rivagan).verify(encode(old.marked))
    assert alone.recovery.manifest_id == old.record.id
    assert alone.recovery.evidence == ["fingerprint"]


def test_a_payload_from_one_backend_never_points_to_another_backends_record(
    seal: SealFn, store: ManifestStore, identity: SigningIdentity, photos: dict[str, Image.Image]
) -> None:
    sealed = seal(photos["chelsea"], "0badcafe")  # dwtdctsvd record with that id
    rivagan = RivaGanWatermarker()
    other = rivagan.embed(photos["chelsea"], "0badcafe")  # same id, other backend, cropped
    cropped = decode(EDITS["crop10_corner"](other))
    report = Verifier(store, identity.root_cert_pem, rivagan).verify(encode(cropped))
    assert report.watermark.payload == "0badcafe"
    assert report.recovery.manifest_id != sealed.record.id


def test_unrelated_photos_are_never_recovered(
    riva_seal: SealFn, riva_verifier: Verifier, photos: dict[str, Image.Image]
) -> None:
    for i, sealed_name in enumerate(("astronaut", "coffee", "chelsea")):
        riva_seal(photos[sealed_name], f"0000000{i}")
    # Busy textures (grass, brick) are where rivaGan may read a confident random payload.
    for name in ("camera", "rocket", "grass", "brick"):
        report = riva_verifier.verify(encode(photo_image(name)), f"{name}.png")
        assert not report.recovery.found, report.recovery.reason


def test_rivagan_round_trip_is_exact_and_invisible(
    rivagan: RivaGanWatermarker, photos: dict[str, Image.Image]
) -> None:
    original = photos["astronaut"]
    marked = rivagan.embed(original, "a1b2c3d4")
    assert marked.size == original.size and marked.mode == "RGB"
    diff = np.asarray(marked, float) - np.asarray(original, float)
    assert 10 * np.log10(255.0**2 / np.mean(diff**2)) > 40.0
    reading = rivagan.detect(decode(encode(marked)))
    assert (reading.detected, reading.payload, reading.algorithm) == (True, "a1b2c3d4", "rivagan")
    assert reading.confidence > 0.5
    jpeg = rivagan.detect(decode(encode(marked, "JPEG", quality=75)))
    assert jpeg.detected and jpeg.payload == "a1b2c3d4"
    assert not rivagan.detect(original).detected
    bits = rivagan.read_bits(marked)
    assert bits.shape == (32,) and np.packbits(bits).tobytes().hex() == "a1b2c3d4"


def test_rivagan_keeps_alpha_and_refuses_tiny_images(rivagan: RivaGanWatermarker) -> None:
    from genseal.errors import WatermarkError

    rgba = photo_image("coffee", 256).convert("RGBA")
    rgba.putalpha(128)
    marked = rivagan.embed(rgba, "00ff00ff")
    assert marked.mode == "RGBA" and marked.getchannel("A").getextrema() == (128, 128)
    with pytest.raises(WatermarkError, match="at least"):
        rivagan.embed(photo_image("coffee", 128), "00ff00ff")
    assert not rivagan.detect(photo_image("coffee", 64)).detected


def test_factory_builds_every_backend_and_refuses_unknown_ones() -> None:
    assert set(WATERMARK_BACKENDS) == {"dwtdctsvd", "rivagan"}
    for name in WATERMARK_BACKENDS:
        assert make_watermarker(name).name == name
    with pytest.raises(ConfigError, match="unknown watermark backend"):
        make_watermarker("trustmark-nope")


def test_crop_print_matches_crops_of_the_same_image_only(photos: dict[str, Image.Image]) -> None:
    stored = crop_print(photos["astronaut"])
    assert len(stored) == 64 * 64
    for fraction, corner in ((0.0, False), (0.1, False), (0.1, True), (0.2, True)):
        cropped = decode(_crop(fraction, corner)(photos["astronaut"]))
        score = crop_match(stored, cropped)
        assert score is not None and score > 0.75
    for other in ("coffee", "chelsea"):
        score = crop_match(stored, photos[other])
        assert score is not None and score < 0.4
    flat = Image.new("RGB", (512, 512), (200, 200, 200))
    assert crop_match(crop_print(flat), photos["astronaut"]) is None
    assert crop_match(b"short", photos["astronaut"]) is None


def test_watermark_neighbours_enumerate_the_hamming_ball() -> None:
    near = _neighbours("00000000", 2)
    assert len(near) == 32 + 32 * 31 // 2 and len(set(near)) == len(near)
    assert "00000001" in near and "80000001" in near and "00000000" not in near


def test_rivagan_list_decoding_enumerates_flips_by_the_confidence_they_override() -> None:
    from provenance.watermark._rivagan import _ordered_payloads

    logits = np.random.default_rng(4).normal(0.0, 6.0, 32).astype(np.float32)
    payloads = _ordered_payloads(logits, 2048)
    assert len(payloads) == len(set(payloads)) == 2048
    first = int(payloads[0], 16)
    weights = np.abs(logits)

    def cost(payload: str) -> float:
        flipped = first ^ int(payload, 16)
        return float(sum(weights[31 - k] for k in range(32) if flipped >> k & 1))

    costs = [cost(p) for p in payloads]
    assert all(a <= b + 1e-4 for a, b in itertools.pairwise(costs))
    # Nothing cheaper was skipped: every single flip below the last cost is listed.
    singles = {f"{first ^ (1 << k):08x}" for k in range(32) if weights[31 - k] < costs[-1]}
    assert singles <= set(payloads)


def test_a_verify_searches_the_fingerprints_once_however_many_readings_it_tries(
    seal: SealFn,
    store: ManifestStore,
    identity: SigningIdentity,
    rivagan: RivaGanWatermarker,
    photos: dict[str, Image.Image],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seal(photos["chelsea"], "0badcafe")
    searches: list[str] = []
    nearest = store.nearest

    def counted(fingerprint_hex: str, max_distance: int, limit: int = 5) -> list[Any]:
        searches.append(fingerprint_hex)
        return nearest(fingerprint_hex, max_distance, limit)

    monkeypatch.setattr(store, "nearest", counted)
    verifier = Verifier(store, identity.root_cert_pem, rivagan, also_read=[DwtDctSvdWatermarker()])
    # Never sealed, a busy texture: both backends read quickly, then thoroughly.
    report = verifier.verify(encode(photo_image("grass")))
    assert not report.recovery.found
    assert len(searches) == 1
