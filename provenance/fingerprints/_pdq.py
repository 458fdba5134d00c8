"""Perceptual fingerprint (PDQ): what ties a copy to its sealed original once metadata is gone.

PDQ hashes a 256-bit summary of luminance; re-encoding moves a few bits (JPEG 75: typically
under 10 of 256), a different picture about half (~128). The hex form is the canonical PDQ one
(ThreatExchange): most significant bit first, so hashes can be compared with other PDQ tools.
"""

from __future__ import annotations

from typing import Literal, Protocol

import numpy as np
import pdqhash
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field

from provenance._media import split_alpha

__all__ = ["FINGERPRINT_BITS", "Fingerprint", "Fingerprinter", "fingerprint", "hamming"]

FINGERPRINT_BITS = 256


class Fingerprint(BaseModel):
    """A PDQ hash and its quality (0-100; under ~50 the image is too flat to match reliably)."""

    model_config = ConfigDict(frozen=True)

    algorithm: Literal["pdq"] = "pdq"
    hex: str = Field(pattern=r"^[0-9a-f]{64}$")
    quality: int = Field(ge=0, le=100)


class Fingerprinter(Protocol):
    """Compute a perceptual fingerprint of an image."""

    def __call__(self, image: Image.Image) -> Fingerprint: ...


def fingerprint(image: Image.Image) -> Fingerprint:
    """PDQ over the RGB pixels (alpha is dropped, as a viewer on white or black would differ)."""
    rgb, _ = split_alpha(image)
    pixels = np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8))
    bits, quality = pdqhash.compute(pixels)
    packed = np.packbits(np.asarray(bits, dtype=np.uint8))
    return Fingerprint(hex=packed.tobytes().hex(), quality=int(quality))


def hamming(a: str, b: str) -> int:
    """Bits that differ between two fingerprints given as hex strings of equal length."""
    if len(a) != len(b):
        raise ValueError(f"fingerprints differ in length ({len(a)} and {len(b)} hex characters)")
    return (int(a, 16) ^ int(b, 16)).bit_count()
