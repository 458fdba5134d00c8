"""Presets: named prompt templates with the generation settings that suit them.

A preset's template has one `{prompt}` placeholder for the user's own words. Templates are kept
within CLIP's 77-token window (75 word pieces plus start and end): Stable Diffusion family text
encoders silently drop everything after it, so a long template would lose its last details and
the user's text entirely. The user's text comes last, and a test keeps at least 8 tokens free
for it in every template (the figurine template, the longest, uses 65 of the 75).
"""

from __future__ import annotations

import re
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from gen._backend import MAX_PROMPT_CHARS
from genseal.errors import InputError

__all__ = ["PRESETS", "PROMPT_PLACEHOLDER", "Preset", "apply_preset", "get_preset"]

PROMPT_PLACEHOLDER: Final = "{prompt}"


class Preset(BaseModel):
    """A named template; unset settings (None) fall back to the model's defaults."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[a-z][a-z0-9-]{0,31}$")
    description: str
    mode: Literal["text-to-image", "image-to-image"]
    prompt_template: str
    negative_prompt: str | None = None
    strength: float | None = Field(default=None, gt=0.0, le=1.0)
    steps: int | None = Field(default=None, ge=1, le=150)
    guidance_scale: float | None = Field(default=None, ge=0.0, le=50.0)
    size: tuple[int, int] | None = None

    @field_validator("prompt_template")
    @classmethod
    def _one_placeholder(cls, template: str) -> str:
        # str.format would also interpret any other brace in the template; exactly one
        # placeholder, substituted literally, leaves nothing to interpret.
        if template.count(PROMPT_PLACEHOLDER) != 1:
            raise ValueError(f"the template needs exactly one {PROMPT_PLACEHOLDER} placeholder")
        return template


_FIGURINE = Preset(
    name="figurine",
    description=(
        "Turn the character in a picture into a photo of a 1/7 scale collectible figure on a "
        "desk, beside its 3D model on screen and a BANDAI-style box."
    ),
    mode="image-to-image",
    prompt_template=(
        "Ultra-realistic 1/7 scale commercialized figure of the illustrated character, realistic "
        "style, real environment, on a computer desk, round clear acrylic base without text, "
        "screen showing the 3D modeling process of this figure, beside it a BANDAI-style toy "
        "packaging box printed with the original artwork as flat 2D illustrations. {prompt}"
    ),
    negative_prompt="text on the base, watermark, deformed hands, blurry, low quality",
    # Enough re-noising to change medium (drawing -> photographed object), little enough to
    # keep the character's pose, colours and costume.
    strength=0.7,
)

_PHOTO = Preset(
    name="photo",
    description="A natural-looking photograph of what the prompt describes.",
    mode="text-to-image",
    prompt_template=(
        "{prompt}, professional photograph, natural light, sharp focus, realistic colours, "
        "35mm lens"
    ),
    negative_prompt="illustration, painting, cartoon, 3d render, blurry, low quality, watermark",
)

_STICKER = Preset(
    name="sticker",
    description="A die-cut vinyl sticker of what the prompt describes, on a plain background.",
    mode="text-to-image",
    prompt_template=(
        "die-cut vinyl sticker of {prompt}, bold clean outlines, flat vibrant colours, thick "
        "white border, centred on a plain light grey background"
    ),
    negative_prompt="photograph, realistic, cluttered background, blurry, text, watermark",
)

PRESETS: Final[dict[str, Preset]] = {p.name: p for p in (_FIGURINE, _PHOTO, _STICKER)}


def get_preset(name: str) -> Preset:
    """The preset called `name`; InputError listing the known names otherwise."""
    preset = PRESETS.get(name.strip().lower()) if isinstance(name, str) else None
    if preset is None:
        raise InputError(
            f"unknown preset {name!r}", hint=f"known presets: {', '.join(sorted(PRESETS))}"
        )
    return preset


def apply_preset(preset: Preset, user_prompt: str | None) -> str:
    """The preset's prompt with the user's text in place of `{prompt}`.

    Image-to-image presets work without user text (the picture is the subject); text-to-image
    presets need it, since the template only says how, not what.
    """
    text = " ".join((user_prompt or "").split())
    if not text and preset.mode == "text-to-image":
        raise InputError(f"preset {preset.name!r} needs a prompt describing the subject")
    prompt = preset.prompt_template.replace(PROMPT_PLACEHOLDER, text)
    # An empty insertion leaves a dangling separator (", professional photograph" or a trailing
    # space); tidy it rather than make every template cope.
    prompt = re.sub(r"\s+([,.])", r"\1", " ".join(prompt.split()))
    prompt = prompt.strip(" ,;")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise InputError(
            f"the prompt with preset {preset.name!r} is {len(prompt)} characters long; "
            f"at most {MAX_PROMPT_CHARS} are accepted"
        )
    return prompt
