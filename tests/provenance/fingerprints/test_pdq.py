"""PDQ fingerprints: format, stability under re-encoding, separation of different photos."""

from __future__ import annotations

import numpy as np
import pdqhash
import pytest
from PIL import Image

from provenance import fingerprint, hamming
from tests.provenance.conftest import decode, encode


def test_format(photos: dict[str, Image.Image]) -> None:
    print_ = fingerprint(photos["astronaut"])
    assert print_.algorithm == "pdq"
    assert len(print_.hex) == 64 and int(print_.hex, 16) >= 0
    assert print_.quality == 100


def test_hex_is_the_canonical_pdq_bit_order(photos: dict[str, Image.Image]) -> None:
    bits, _ = pdqhash.compute(np.ascontiguousarray(np.asarray(photos["coffee"])))
    # pdqhash's vector starts at bit 255, the first bit of the canonical hex string.
    assert fingerprint(photos["coffee"]).hex == "".join(
        f"{int(''.join(str(b) for b in bits[i : i + 4]), 2):x}" for i in range(0, 256, 4)
    )


def test_stable_under_reencoding_and_separates_photos(photos: dict[str, Image.Image]) -> None:
    prints = {name: fingerprint(image).hex for name, image in photos.items()}
    for name, image in photos.items():
        jpeg = fingerprint(decode(encode(image, "JPEG", quality=75))).hex
        assert hamming(prints[name], jpeg) <= 16
    names = sorted(prints)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert hamming(prints[a], prints[b]) > 90


def test_alpha_is_ignored(photos: dict[str, Image.Image]) -> None:
    rgba = photos["chelsea"].convert("RGBA")
    assert fingerprint(rgba) == fingerprint(photos["chelsea"])


def test_hamming() -> None:
    assert hamming("00", "00") == 0
    assert hamming("ff", "00") == 8
    assert hamming("0f" * 32, "f0" * 32) == 256
    with pytest.raises(ValueError, match="length"):
        hamming("00", "000")
