"""Image bytes in: the format they really are, and pixels decoded without trusting the name.

Every component that takes bytes from outside goes through here, so an unreadable, truncated
or oversized file fails the same way (ImageInputError / PayloadTooLargeError) everywhere.
"""

from __future__ import annotations

import io
import warnings

from PIL import Image, UnidentifiedImageError

from genseal.errors import ImageInputError, PayloadTooLargeError

__all__ = ["SIGNABLE_MIMES", "decode_image", "sniff_mime", "split_alpha"]

# The formats genseal seals; c2pa can read more (and `sniff_mime` recognises more) for verify.
SIGNABLE_MIMES: tuple[str, ...] = ("image/png", "image/jpeg", "image/webp")


def sniff_mime(data: bytes) -> str | None:
    """The MIME type from the leading bytes, or None when the container is not recognised."""
    head = data[:32]
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "image/tiff"
    if head[:2] == b"BM":
        return "image/bmp"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"avif", b"avis"):
            return "image/avif"
        if brand in (b"heic", b"heix", b"heim", b"heis", b"mif1", b"msf1"):
            return "image/heif"
    return None


def decode_image(data: bytes) -> Image.Image:
    """Decode fully (a lazy open would let a truncated file pass and fail later, elsewhere)."""
    if not data:
        raise ImageInputError("the file is empty")
    try:
        with warnings.catch_warnings():
            # Pillow warns before it raises for oversized images; the error below says it once.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            image.load()
    except Image.DecompressionBombError as exc:
        raise PayloadTooLargeError(
            f"the image has too many pixels to decode safely: {exc}"
        ) from exc
    except UnidentifiedImageError as exc:
        raise ImageInputError(
            "the file is not an image in a format genseal can read",
            hint="PNG, JPEG and WebP are supported",
        ) from exc
    except (OSError, ValueError, SyntaxError) as exc:
        # Pillow reports truncated or corrupt data as OSError/SyntaxError/ValueError.
        raise ImageInputError(f"the image is unreadable or truncated: {exc}") from exc
    return image


def split_alpha(image: Image.Image) -> tuple[Image.Image, Image.Image | None]:
    """The RGB pixels and, when the image has transparency, its alpha band."""
    has_alpha = image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        image.mode == "P" and "transparency" in image.info
    )
    if not has_alpha:
        return (image if image.mode == "RGB" else image.convert("RGB")), None
    # Palette transparency must go through RGBA: straight to RGB, Pillow warns and guesses.
    rgba = image.convert("RGBA")
    return rgba.convert("RGB"), rgba.getchannel("A")
