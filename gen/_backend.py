"""The generation seam: what any image model backend takes, returns and promises.

`ImageBackend` is the one interface the sealed-generation service talks to; `DiffusersBackend`
(`_backend_diffusers.py`) is the real implementation. The request limits and their validation
live here rather than in a backend so that every backend refuses the same requests with the same
messages, before any model work starts.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass
from typing import Literal, Protocol, runtime_checkable

from PIL import Image, ImageOps

from genseal.errors import InputError

__all__ = [
    "MAX_GUIDANCE",
    "MAX_IMAGES",
    "MAX_PROMPT_CHARS",
    "MAX_SEED",
    "MAX_SIDE",
    "MAX_STEPS",
    "MIN_SIDE",
    "SIDE_MULTIPLE",
    "GenerationOutput",
    "GenerationParams",
    "ImageBackend",
    "Mode",
    "ModelDefaults",
    "ResolvedParams",
    "resolve_params",
]

Mode = Literal["text-to-image", "image-to-image"]

# Latent diffusion models work on an 8x downsampled latent; sides outside this range are either
# useless (below 64) or would exhaust memory long before they finish (above 2048).
MIN_SIDE = 64
MAX_SIDE = 2048
SIDE_MULTIPLE = 8
MAX_IMAGES = 8
MAX_STEPS = 150
MAX_PROMPT_CHARS = 2000
MAX_GUIDANCE = 50.0
# 32 bits: what users can type, store and compare; image k uses seed + k, which torch accepts.
MAX_SEED = 2**32 - 1


@dataclass(frozen=True, slots=True)
class ModelDefaults:
    """What a model uses when the caller leaves a parameter unset."""

    steps: int
    width: int
    height: int
    guidance_scale: float

    @property
    def size(self) -> tuple[int, int]:
        """(width, height)."""
        return self.width, self.height


@dataclass(frozen=True, slots=True)
class GenerationParams:
    """One generation request, as the caller asked for it (None means: the model's default).

    `init_image` set means image-to-image: the image is cropped to the requested aspect ratio
    (centred) and resized to the requested size, then `strength` of the schedule is re-noised.
    """

    prompt: str
    _: KW_ONLY
    negative_prompt: str | None = None
    n: int = 1
    seed: int | None = None
    steps: int | None = None
    width: int | None = None
    height: int | None = None
    guidance_scale: float | None = None
    strength: float = 0.75
    init_image: Image.Image | None = None
    # Called after each denoising step with (steps done, steps in all): job progress.
    on_step: Callable[[int, int], None] | None = None

    @property
    def mode(self) -> Mode:
        return "text-to-image" if self.init_image is None else "image-to-image"


@dataclass(frozen=True, slots=True)
class GenerationOutput:
    """What a backend made, and the concrete values it used to make it.

    `seeds[k]` reproduces `images[k]` on its own: image k is drawn from seed + k whatever `n` is.
    `steps` is the schedule length handed to the model; image-to-image runs only the last
    `int(steps * strength)` of those steps. `strength` is None for text-to-image, which is how
    `mode` tells the two apart.
    """

    images: list[Image.Image]
    seeds: list[int]
    steps: int
    width: int
    height: int
    guidance_scale: float | None = None
    strength: float | None = None

    @property
    def mode(self) -> Mode:
        return "text-to-image" if self.strength is None else "image-to-image"


@runtime_checkable
class ImageBackend(Protocol):
    """A loaded image model. Implementations must be safe to call from several threads."""

    @property
    def model_id(self) -> str:
        """Stable name of the model, e.g. "genseal/tiny-sd", a Hugging Face id or a path."""
        ...

    @property
    def model_version(self) -> str:
        """Identifies the exact weights: a snapshot commit or a content hash."""
        ...

    @property
    def device(self) -> str: ...

    @property
    def defaults(self) -> ModelDefaults: ...

    def generate(self, params: GenerationParams) -> GenerationOutput:
        """RGB images; text-to-image without `init_image`, image-to-image with it.

        Raises InputError for a request outside the limits, ModelError when the model cannot do
        what is asked (e.g. no image-to-image), GenerationError when the model fails.
        """
        ...


@dataclass(frozen=True, slots=True)
class ResolvedParams:
    """A validated request with every default filled in: what a backend actually runs."""

    prompt: str
    negative_prompt: str | None
    n: int
    seeds: list[int]
    steps: int
    width: int
    height: int
    guidance_scale: float
    strength: float | None
    init_image: Image.Image | None

    @property
    def mode(self) -> Mode:
        return "text-to-image" if self.init_image is None else "image-to-image"


def resolve_params(params: GenerationParams, defaults: ModelDefaults) -> ResolvedParams:
    """Validate `params` against the limits and fill unset values from `defaults`."""
    prompt = _check_text("prompt", params.prompt, required=True)
    negative = _check_text("negative_prompt", params.negative_prompt, required=False) or None
    n = _check_int("n", params.n, 1, MAX_IMAGES)
    width = _check_side("width", defaults.width if params.width is None else params.width)
    height = _check_side("height", defaults.height if params.height is None else params.height)
    guidance = _check_guidance(
        defaults.guidance_scale if params.guidance_scale is None else params.guidance_scale
    )
    seed = secrets.randbelow(MAX_SEED + 1) if params.seed is None else params.seed
    _check_int("seed", seed, 0, MAX_SEED)
    seeds = [seed + k for k in range(n)]

    steps = defaults.steps if params.steps is None else params.steps
    _check_int("steps", steps, 1, MAX_STEPS)
    strength: float | None = None
    init_image: Image.Image | None = None
    if params.init_image is not None:
        strength = _check_strength(params.strength)
        steps = _img2img_steps(steps, strength, explicit=params.steps is not None)
        init_image = _prepare_init_image(params.init_image, width, height)

    return ResolvedParams(
        prompt=prompt,
        negative_prompt=negative,
        n=n,
        seeds=seeds,
        steps=steps,
        width=width,
        height=height,
        guidance_scale=guidance,
        strength=strength,
        init_image=init_image,
    )


def _check_text(name: str, value: object, *, required: bool) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise InputError(f"{name} must be a string, got {type(value).__name__}")
    if required and not value.strip():
        raise InputError(f"{name} must not be empty")
    if len(value) > MAX_PROMPT_CHARS:
        raise InputError(
            f"{name} is {len(value)} characters long; at most {MAX_PROMPT_CHARS} are accepted"
        )
    return value.strip()


def _check_int(name: str, value: object, low: int, high: int) -> int:
    # bool is an int subclass; True as "n" is a caller bug, not a request for one image.
    if not isinstance(value, int) or isinstance(value, bool):
        raise InputError(f"{name} must be an integer, got {value!r}")
    if not low <= value <= high:
        raise InputError(f"{name} must be between {low} and {high}, got {value}")
    return value


def _check_side(name: str, value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise InputError(f"{name} must be an integer, got {value!r}")
    if MIN_SIDE <= value <= MAX_SIDE and value % SIDE_MULTIPLE == 0:
        return value
    nearest = min(max(round(value / SIDE_MULTIPLE) * SIDE_MULTIPLE, MIN_SIDE), MAX_SIDE)
    raise InputError(
        f"{name} must be a multiple of {SIDE_MULTIPLE} between {MIN_SIDE} and {MAX_SIDE}, "
        f"got {value}",
        hint=f"try {nearest}",
    )


def _check_guidance(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InputError(f"guidance_scale must be a number, got {value!r}")
    guidance = float(value)
    if not (math.isfinite(guidance) and 0.0 <= guidance <= MAX_GUIDANCE):
        raise InputError(f"guidance_scale must be between 0 and {MAX_GUIDANCE:g}, got {value}")
    return guidance


def _check_strength(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InputError(f"strength must be a number, got {value!r}")
    strength = float(value)
    if not (math.isfinite(strength) and 0.0 < strength <= 1.0):
        raise InputError(f"strength must be greater than 0 and at most 1, got {value}")
    return strength


def _img2img_steps(steps: int, strength: float, *, explicit: bool) -> int:
    # Image-to-image runs int(steps * strength) denoising steps; zero would return the input
    # unchanged (diffusers fails outright). A model default that is too short for the strength
    # (sd-turbo: 1 step) is lengthened; a count the caller chose is theirs to fix.
    if int(steps * strength) >= 1:
        return steps
    if explicit:
        needed = math.ceil(1 / strength)
        raise InputError(
            f"steps={steps} with strength={strength:g} leaves no denoising step "
            "(image-to-image runs int(steps * strength) steps)",
            hint=f"use at least {needed} steps or a higher strength",
        )
    while int(steps * strength) < 1:
        steps += 1
        if steps > MAX_STEPS:
            raise InputError(f"strength={strength:g} is too low to denoise in {MAX_STEPS} steps")
    return steps


def _prepare_init_image(image: object, width: int, height: int) -> Image.Image:
    if not isinstance(image, Image.Image):
        raise InputError(f"init_image must be a PIL image, got {type(image).__name__}")
    rgb = _to_rgb(image)
    if rgb.size == (width, height):
        return rgb
    # Crop to the target aspect ratio before resizing: a distorted subject (a squashed face)
    # makes image-to-image worse than a trimmed border does.
    return ImageOps.fit(rgb, (width, height), Image.Resampling.LANCZOS)


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode == "RGB":
        return image
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        # Transparent pixels carry arbitrary colour (often black); flatten onto white, as a
        # viewer would show them, instead of letting that colour leak into the result.
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")
