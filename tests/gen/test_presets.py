"""Presets: templates, modes, and the CLIP token budget they must fit."""

from __future__ import annotations

import pydantic
import pytest

from gen._presets import PRESETS, Preset, apply_preset, get_preset
from gen._tiny import build_clip_tokenizer
from genseal.errors import InputError


def test_figurine_is_image_to_image_with_the_brief_details() -> None:
    preset = get_preset("figurine")
    assert preset.mode == "image-to-image"
    template = preset.prompt_template
    for detail in (
        "1/7 scale",
        "commercialized figure",
        "realistic style",
        "real environment",
        "computer desk",
        "round clear acrylic base without text",
        "3D modeling process",
        "BANDAI-style toy packaging box",
        "original artwork",
        "flat 2D illustrations",
    ):
        assert detail in template
    assert preset.strength is not None and 0 < preset.strength < 1


def test_other_presets_are_modest_text_to_image() -> None:
    assert {"figurine", "photo", "sticker"} <= set(PRESETS)
    assert get_preset("photo").mode == "text-to-image"
    assert get_preset("sticker").mode == "text-to-image"


def test_unknown_preset_lists_the_names() -> None:
    with pytest.raises(InputError) as caught:
        get_preset("anime")
    assert "figurine" in str(caught.value) and "photo" in str(caught.value)


def test_apply_preset_inserts_the_users_text() -> None:
    assert apply_preset(get_preset("photo"), "  a red   fox ").startswith(
        "a red fox, professional photograph"
    )
    figurine = apply_preset(get_preset("figurine"), "holding a sword")
    assert figurine.endswith("illustrations. holding a sword")


def test_image_presets_work_without_text_and_leave_no_dangling_separator() -> None:
    prompt = apply_preset(get_preset("figurine"), "")
    assert prompt.endswith("flat 2D illustrations.")
    assert "{prompt}" not in prompt


def test_text_presets_need_a_subject() -> None:
    with pytest.raises(InputError):
        apply_preset(get_preset("photo"), "   ")


def test_braces_in_user_text_are_literal() -> None:
    assert "{x}" in apply_preset(get_preset("sticker"), "a cat saying {x}")


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_templates_leave_room_for_the_user_in_clips_77_tokens(name: str) -> None:
    tokenizer = build_clip_tokenizer()
    template = PRESETS[name].prompt_template.replace("{prompt}", "")
    assert len(tokenizer(template).input_ids) <= 77 - 8


def test_template_needs_exactly_one_placeholder() -> None:
    with pytest.raises(pydantic.ValidationError):
        Preset(name="bad", description="", mode="text-to-image", prompt_template="no slot")
    with pytest.raises(pydantic.ValidationError):
        Preset(
            name="bad", description="", mode="text-to-image", prompt_template="{prompt} {prompt}"
        )
