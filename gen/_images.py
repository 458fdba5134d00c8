"""Decoding untrusted image bytes safely, and encoding released images."""

from __future__ import annotations

import io
import warnings
from typing import Literal

from PIL import Image, UnidentifiedImageError

from genseal.errors import ImageInputError, PayloadTooLargeError
from provenance import sniff_mime

__all__ = [
    "MIME_TYPES",
    "ImageFormat",
    "decode_image",
    "encode_image",
    "extension",
    "format_of",
    "sniff_mime",
]

ImageFormat = Literal["png", "jpeg", "webp"]

MIME_TYPES: dict[ImageFormat, str] = {
    "png": "image/png",
    "jpeg": "image/jpeg",
    "webp": "image/webp",
}
_PIL_FORMATS: dict[str, str] = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}
_ACCEPTED_INPUT = {"PNG", "JPEG", "WEBP", "BMP", "TIFF", "GIF"}
_EXTENSIONS: dict[ImageFormat, str] = {"png": ".png", "jpeg": ".jpg", "webp": ".webp"}


def extension(fmt: ImageFormat) -> str:
    return _EXTENSIONS[fmt]


def decode_image(
    data: bytes, *, max_bytes: int, max_pixels: int, name: str = "image"
) -> Image.Image:
    """Decode caller-supplied bytes into a fully loaded RGB image, or raise a clear input error.

    The pixel limit is checked from the header before any pixel is decoded, so a decompression
    bomb costs nothing.
    """
    if not data:
        raise ImageInputError(f"{name} is empty")
    if len(data) > max_bytes:
        raise PayloadTooLargeError(
            f"{name} is {len(data):,} bytes; the limit is {max_bytes:,} bytes"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width * height > max_pixels:
                raise PayloadTooLargeError(
                    f"{name} is {width}x{height} pixels; the limit is {max_pixels:,} pixels"
                )
            if image.format not in _ACCEPTED_INPUT:
                raise ImageInputError(
                    f"{name} is {image.format or 'an unknown format'}; "
                    f"accepted: {', '.join(sorted(_ACCEPTED_INPUT))}"
                )
            image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise PayloadTooLargeError(f"{name} is too large to decode safely: {exc}") from exc
    except UnidentifiedImageError as exc:
        raise ImageInputError(f"{name} is not an image genseal can read") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageInputError(f"{name} is truncated or corrupt: {exc}") from exc
    if width < 16 or height < 16:
        raise ImageInputError(f"{name} is {width}x{height}; images must be at least 16x16")
    if image.mode == "RGBA":
        return image
    return image.convert("RGB")


def encode_image(image: Image.Image, fmt: ImageFormat) -> bytes:
    """Encode a released image. Lossless PNG; JPEG/WebP at a quality the watermark survives."""
    buffer = io.BytesIO()
    if fmt == "png":
        image.save(buffer, format="PNG", compress_level=1)
    elif fmt == "jpeg":
        image.convert("RGB").save(buffer, format="JPEG", quality=92, subsampling=0)
    else:
        image.save(buffer, format="WEBP", quality=92)
    return buffer.getvalue()


def format_of(data: bytes) -> ImageFormat | None:
    """Which of the formats genseal writes ``data`` is in, if any."""
    mime = sniff_mime(data)
    return next((fmt for fmt, known in MIME_TYPES.items() if known == mime), None)
