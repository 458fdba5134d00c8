"""The DWT-DCT-SVD watermark: payload round trips, robustness, no false detections."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from genseal.errors import WatermarkError
from provenance import DwtDctSvdWatermarker, Watermarker
from tests.provenance.conftest import decode, encode, photo_image


def _psnr(a: Image.Image, b: Image.Image) -> float:
    diff = np.asarray(a.convert("RGB"), float) - np.asarray(b.convert("RGB"), float)
    return float(10 * np.log10(255.0**2 / np.mean(diff**2)))


def test_satisfies_the_protocol(watermarker: DwtDctSvdWatermarker) -> None:
    seam: Watermarker = watermarker
    assert seam.name == "dwtdctsvd"
    assert seam.version == "1"


@pytest.mark.parametrize("name", ["astronaut", "coffee", "chelsea"])
def test_png_round_trip_is_exact(
    watermarker: DwtDctSvdWatermarker, photos: dict[str, Image.Image], name: str
) -> None:
    marked = watermarker.embed(photos[name], "a1b2c3d4")
    assert marked.size == photos[name].size
    assert _psnr(marked, photos[name]) > 40.0
    reading = watermarker.detect(decode(encode(marked)))
    assert reading.detected
    assert reading.payload == "a1b2c3d4"
    assert reading.confidence > 0.9
    assert reading.algorithm == "dwtdctsvd"


@pytest.mark.parametrize("name", ["astronaut", "coffee", "chelsea"])
def test_survives_jpeg_75(
    watermarker: DwtDctSvdWatermarker, photos: dict[str, Image.Image], name: str
) -> None:
    marked = watermarker.embed(photos[name], "00c0ffee")
    reading = watermarker.detect(decode(encode(marked, "JPEG", quality=75)))
    assert reading.detected and reading.payload == "00c0ffee"


@pytest.mark.parametrize("name", ["astronaut", "coffee", "chelsea"])
def test_unmarked_photos_do_not_decode(
    watermarker: DwtDctSvdWatermarker, photos: dict[str, Image.Image], name: str
) -> None:
    for image in (photos[name], decode(encode(photos[name], "JPEG", quality=75))):
        reading = watermarker.detect(image)
        assert not reading.detected
        assert reading.payload is None
        assert reading.confidence < 0.2


def test_flat_and_saturated_images(watermarker: DwtDctSvdWatermarker) -> None:
    # Flat regions all vote alike; without the per-block dither they decode to a fixed word.
    for colour in ((255, 255, 255), (0, 0, 0), (128, 128, 128)):
        blank = Image.new("RGB", (512, 512), colour)
        assert not watermarker.detect(blank).detected
        # Saturated pixels cannot move the straightforward way; the mark must still hold.
        marked = watermarker.embed(blank, "feedf00d")
        assert watermarker.detect(decode(encode(marked, "JPEG", quality=75))).payload == "feedf00d"


def test_product_shot_on_white_survives_jpeg(watermarker: DwtDctSvdWatermarker) -> None:
    shot = Image.new("RGB", (512, 512), (255, 255, 255))
    shot.paste(photo_image("astronaut", 200), (156, 156))
    marked = watermarker.embed(shot, "12345678")
    assert watermarker.detect(decode(encode(marked, "JPEG", quality=75))).payload == "12345678"


def test_odd_sizes_and_alpha(watermarker: DwtDctSvdWatermarker) -> None:
    image = photo_image("coffee").resize((517, 389)).convert("RGBA")
    alpha = Image.linear_gradient("L").resize(image.size)
    image.putalpha(alpha)
    marked = watermarker.embed(image, "DEADBEEF")
    assert marked.mode == "RGBA" and marked.size == (517, 389)
    assert np.array_equal(np.asarray(marked.getchannel("A")), np.asarray(alpha))
    reading = watermarker.detect(decode(encode(marked)))
    assert reading.payload == "deadbeef"


@pytest.mark.parametrize("name", ["astronaut", "coffee", "chelsea"])
def test_changes_blue_chroma_only(
    watermarker: DwtDctSvdWatermarker, photos: dict[str, Image.Image], name: str
) -> None:
    # The reference embed swaps the DWT detail bands (smearing edges) and truncates to uint8;
    # here only Cb carries the mark: Y and Cr move by little more than 8-bit rounding.
    original = photos[name]
    marked = watermarker.embed(original, "0badcafe")
    before = np.asarray(original.convert("YCbCr"), float)
    after = np.asarray(marked.convert("YCbCr"), float)
    y, cb, cr = (np.mean(np.abs(after[..., k] - before[..., k])) for k in range(3))
    assert cb > 0.8
    assert y < 0.3 * cb and cr < 0.3 * cb


def test_rejects_bad_payloads_and_small_images(watermarker: DwtDctSvdWatermarker) -> None:
    image = photo_image("coffee", 256)
    for payload in ("0badcaf", "0badcafe0", "not-hex!", ""):
        with pytest.raises(WatermarkError, match="8 hex characters"):
            watermarker.embed(image, payload)
    small = photo_image("coffee", 200)
    with pytest.raises(WatermarkError, match="at least 256x256"):
        watermarker.embed(small, "0badcafe")
    reading = watermarker.detect(small)
    assert not reading.detected and reading.confidence == 0.0


def test_minimum_size_works(watermarker: DwtDctSvdWatermarker) -> None:
    image = photo_image("chelsea", 256)
    marked = watermarker.embed(image, "01234567")
    assert watermarker.detect(decode(encode(marked))).payload == "01234567"


def test_does_not_survive_cropping(
    watermarker: DwtDctSvdWatermarker, photos: dict[str, Image.Image]
) -> None:
    # Documented limit of the scheme (DESIGN): a crop shifts the block grid.
    marked = watermarker.embed(photos["coffee"], "0badcafe")
    cropped = marked.crop((13, 7, 500, 500))
    assert not watermarker.detect(cropped).detected


@pytest.mark.parametrize("size", [4, 8])
def test_the_block_dct_is_scipy_s_orthonormal_dct(size: int) -> None:
    from scipy.fft import dctn, idctn

    from provenance.watermark._dwtdctsvd import _dct2, _idct2

    blocks = np.random.default_rng(size).uniform(0, 255, (16, size, size))
    coeffs = _dct2(blocks)
    np.testing.assert_allclose(coeffs, dctn(blocks, axes=(1, 2), norm="ortho"), atol=1e-9)
    np.testing.assert_allclose(_idct2(coeffs), idctn(coeffs, axes=(1, 2), norm="ortho"), atol=1e-9)
    np.testing.assert_allclose(_idct2(coeffs), blocks, atol=1e-9)
