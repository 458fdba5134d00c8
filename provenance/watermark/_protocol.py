"""The invisible-watermark seam: what a watermarker does and what it reports.

A payload is a short id, 8 hex characters (32 bits). 32 bits collide after ~65k images, so a
watermark reading is a *lead*, never proof: recovery pairs it with a perceptual fingerprint.
"""

from __future__ import annotations

import re
from typing import Protocol

from PIL import Image
from pydantic import BaseModel, ConfigDict, Field

from genseal.errors import WatermarkError

__all__ = ["PAYLOAD_HEX_CHARS", "WatermarkReading", "Watermarker", "check_payload"]

PAYLOAD_HEX_CHARS = 8
_PAYLOAD = re.compile(r"[0-9a-f]{8}")


class WatermarkReading(BaseModel):
    """What a detector found in an image."""

    model_config = ConfigDict(frozen=True)

    algorithm: str
    detected: bool
    payload: str | None = Field(
        default=None, description="8 lowercase hex characters when detected, else null"
    )
    confidence: float = Field(
        ge=0.0,
        le=1.0,
        description="strength of the mark: 0 for none, 1 for an untouched mark; the decision "
        "is `detected` (which also needs the payload's checksum to hold)",
    )
    candidates: tuple[str, ...] = Field(
        default=(),
        exclude=True,
        description="other payloads the reading may stand for, most likely first (a backend "
        "without a checksum, after errors); recovery tries them when ``payload`` names no "
        "stored manifest. Not part of the report.",
    )


class Watermarker(Protocol):
    """Embed and detect a 32-bit payload."""

    @property
    def name(self) -> str: ...

    @property
    def version(self) -> str: ...

    @property
    def min_side(self) -> int:
        """The shortest side, in pixels, of an image this backend can mark (checked before
        any work is done for a request, so a too-small size is a 400, not a failed seal)."""
        ...

    def embed(self, image: Image.Image, payload: str) -> Image.Image: ...

    def detect(self, image: Image.Image, *, thorough: bool = False) -> WatermarkReading:
        """Read the mark. ``thorough``: the image is suspected to be edited (nothing was
        recovered from a quick reading), so spend more time, e.g. re-reading a crop at other
        scales; a backend with nothing more to try reads as usual."""
        ...


def check_payload(payload: str) -> str:
    """The payload in canonical form (lowercase hex), or WatermarkError."""
    canonical = payload.strip().lower()
    if not _PAYLOAD.fullmatch(canonical):
        raise WatermarkError(
            f"a watermark payload is {PAYLOAD_HEX_CHARS} hex characters (32 bits), got {payload!r}"
        )
    return canonical
