"""The everyday edits of issue 4, as functions image → image (deterministic, seeded)."""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageEnhance

Attack = Callable[[Image.Image], Image.Image]


def _encode(image: Image.Image, fmt: str, **options: object) -> Image.Image:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format=fmt, **options)
    decoded = Image.open(io.BytesIO(buffer.getvalue()))
    decoded.load()
    return decoded.convert("RGB")


def jpeg(quality: int) -> Attack:
    return lambda image: _encode(image, "JPEG", quality=quality)


def webp(quality: int) -> Attack:
    return lambda image: _encode(image, "WEBP", quality=quality)


def png_to_jpeg(image: Image.Image) -> Image.Image:
    # A PNG re-save (metadata gone) then the common default JPEG quality.
    return _encode(_encode(image, "PNG"), "JPEG", quality=85)


def metadata_strip(image: Image.Image) -> Image.Image:
    return _encode(image, "PNG")


def resize_and_back(factor: float) -> Attack:
    def attack(image: Image.Image) -> Image.Image:
        small = image.resize(
            (round(image.width * factor), round(image.height * factor)), Image.Resampling.BILINEAR
        )
        return small.resize(image.size, Image.Resampling.BILINEAR)

    return attack


def downscale(factor: float) -> Attack:
    return lambda image: image.resize(
        (round(image.width * factor), round(image.height * factor)), Image.Resampling.LANCZOS
    )


def crop(fraction: float, where: str) -> Attack:
    """Remove ``fraction`` of each side's length: around the centre, or keep the top-left."""

    def attack(image: Image.Image) -> Image.Image:
        w, h = image.size
        keep_w, keep_h = round(w * (1 - fraction)), round(h * (1 - fraction))
        left, top = ((w - keep_w) // 2, (h - keep_h) // 2) if where == "centre" else (0, 0)
        return image.crop((left, top, left + keep_w, top + keep_h))

    return attack


def brightness(factor: float) -> Attack:
    return lambda image: ImageEnhance.Brightness(image.convert("RGB")).enhance(factor)


def contrast(factor: float) -> Attack:
    return lambda image: ImageEnhance.Contrast(image.convert("RGB")).enhance(factor)


def noise(sigma: float, seed: int = 0) -> Attack:
    def attack(image: Image.Image) -> Image.Image:
        pixels = np.asarray(image.convert("RGB"), dtype=np.float32)
        noisy = pixels + np.random.default_rng(seed).normal(0.0, sigma, pixels.shape)
        return Image.fromarray(np.clip(np.rint(noisy), 0, 255).astype(np.uint8))

    return attack


def rotate(degrees: float) -> Attack:
    return lambda image: image.convert("RGB").rotate(
        degrees, Image.Resampling.BILINEAR, fillcolor=(255, 255, 255)
    )


def screenshot(image: Image.Image) -> Image.Image:
    # A phone screenshot shared onwards: displayed at ~0.8x, re-rendered, saved as JPEG 80.
    shown = downscale(0.8)(image)
    return _encode(shown, "JPEG", quality=80)


def combine(first: Attack, second: Attack) -> Attack:
    return lambda image: second(first(image))


SINGLE: dict[str, Attack] = {
    "none": lambda image: image,
    "metadata_strip": metadata_strip,
    "jpeg90": jpeg(90),
    "jpeg75": jpeg(75),
    "jpeg50": jpeg(50),
    "webp80": webp(80),
    "png_to_jpeg": png_to_jpeg,
    "resize0.5_back": resize_and_back(0.5),
    "downscale0.75": downscale(0.75),
    "crop10_centre": crop(0.10, "centre"),
    "crop10_corner": crop(0.10, "corner"),
    "crop20_centre": crop(0.20, "centre"),
    "crop20_corner": crop(0.20, "corner"),
    "brightness+20": brightness(1.2),
    "brightness-20": brightness(0.8),
    "contrast+20": contrast(1.2),
    "noise10": noise(10.0),
    "rotate2": rotate(2.0),
    "screenshot": screenshot,
}

COMBINED: dict[str, Attack] = {
    "crop10_centre+jpeg75": combine(crop(0.10, "centre"), jpeg(75)),
    "downscale0.75+jpeg75": combine(downscale(0.75), jpeg(75)),
    "brightness+20+jpeg75": combine(brightness(1.2), jpeg(75)),
    "crop10_corner+resize0.5_back": combine(crop(0.10, "corner"), resize_and_back(0.5)),
    "noise10+webp80": combine(noise(10.0), webp(80)),
    "rotate2+jpeg75": combine(rotate(2.0), jpeg(75)),
}
