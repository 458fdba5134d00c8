"""Recovery of a stripped, edited copy: rivaGan watermark + PDQ + crop print, real store."""

from __future__ import annotations

from collections.abc import Callable

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
from provenance._verify import _neighbours
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


EDITS: dict[str, Callable[[Image.Image], bytes]] = {
    "png_resave": encode,  # pixels kept, manifest gone
    "jpeg75": _jpeg(75),
    "crop10_centre": _crop(0.10, corner=False),
    "crop10_corner": _crop(0.10, corner=True),
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
        assert recovery.crop_match is not None and recovery.crop_match > 0.9
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
