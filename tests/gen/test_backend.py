"""DiffusersBackend on the real tiny model: determinism, seeds, image-to-image, validation."""

from __future__ import annotations

import copy
import io
import math
from typing import Any

import numpy as np
import pytest
import torch
from diffusers import AutoPipelineForText2Image
from PIL import Image
from transformers import CLIPTextConfig, CLIPTextModel

from gen._backend import GenerationOutput, GenerationParams, ImageBackend, ModelDefaults
from gen._backend_diffusers import DiffusersBackend
from gen._tiny import build_tiny_pipeline
from genseal.errors import GenerationError, InputError
from tests._media import photo

SMALL: dict[str, Any] = {"width": 64, "height": 64, "steps": 2}


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


def own_pipeline(**components: object) -> object:
    """The shared tiny weights with a scheduler (and any overrides) of this test's own."""
    shared = build_tiny_pipeline()
    scheduler = type(shared.scheduler).from_config(shared.scheduler.config)
    return AutoPipelineForText2Image.from_pipe(shared, scheduler=scheduler, **components)


def test_backend_satisfies_the_seam(tiny_backend: DiffusersBackend) -> None:
    assert isinstance(tiny_backend, ImageBackend)
    assert tiny_backend.model_id == "genseal/tiny-sd"
    assert len(tiny_backend.model_version) == 16
    assert tiny_backend.device == "cpu"
    assert tiny_backend.defaults == ModelDefaults(
        steps=4, width=512, height=512, guidance_scale=7.5
    )
    assert tiny_backend.defaults.size == (512, 512)
    assert tiny_backend.supports_image_to_image


def test_text_to_image_returns_rgb_at_the_requested_size(tiny_backend: DiffusersBackend) -> None:
    output = tiny_backend.generate(
        GenerationParams("a red fox", seed=1, width=128, height=64, steps=2)
    )
    assert isinstance(output, GenerationOutput)
    assert output.mode == "text-to-image"
    assert [(im.mode, im.size) for im in output.images] == [("RGB", (128, 64))]
    assert (output.width, output.height, output.steps, output.seeds) == (128, 64, 2, [1])
    assert output.guidance_scale == 7.5 and output.strength is None
    assert pixels(output.images[0]).std() > 0  # noise, but not a blank image


def test_any_multiple_of_eight_works(tiny_backend: DiffusersBackend) -> None:
    # 72 and 88 give odd latent sides (9, 11): the UNet must upsample to the exact size.
    output = tiny_backend.generate(GenerationParams("a fox", seed=0, width=72, height=88, steps=1))
    assert output.images[0].size == (72, 88)


def test_same_seed_same_pixels_other_seed_other_pixels(tiny_backend: DiffusersBackend) -> None:
    first = tiny_backend.generate(GenerationParams("a red fox", seed=7, **SMALL)).images[0]
    again = tiny_backend.generate(GenerationParams("a red fox", seed=7, **SMALL)).images[0]
    other = tiny_backend.generate(GenerationParams("a red fox", seed=8, **SMALL)).images[0]
    assert np.array_equal(pixels(first), pixels(again))
    assert np.abs(pixels(first) - pixels(other)).mean() > 5


def test_prompt_changes_the_image(tiny_backend: DiffusersBackend) -> None:
    fox = tiny_backend.generate(GenerationParams("a red fox", seed=7, **SMALL)).images[0]
    owl = tiny_backend.generate(GenerationParams("a snowy owl", seed=7, **SMALL)).images[0]
    assert not np.array_equal(pixels(fox), pixels(owl))


def test_image_k_does_not_depend_on_n(tiny_backend: DiffusersBackend) -> None:
    pair = tiny_backend.generate(GenerationParams("a red fox", seed=20, n=2, **SMALL))
    assert pair.seeds == [20, 21]
    assert len(pair.images) == 2
    for k, seed in enumerate(pair.seeds):
        alone = tiny_backend.generate(GenerationParams("a red fox", seed=seed, **SMALL)).images[0]
        # Equal up to float rounding between batch sizes: at most one level of 255.
        assert np.abs(pixels(alone) - pixels(pair.images[k])).max() <= 1
    assert np.abs(pixels(pair.images[0]) - pixels(pair.images[1])).mean() > 5


def test_unset_seed_is_drawn_and_reported(tiny_backend: DiffusersBackend) -> None:
    drawn = tiny_backend.generate(GenerationParams("a red fox", **SMALL))
    assert 0 <= drawn.seeds[0] < 2**32
    replay = tiny_backend.generate(GenerationParams("a red fox", seed=drawn.seeds[0], **SMALL))
    assert np.array_equal(pixels(drawn.images[0]), pixels(replay.images[0]))


def test_negative_prompt_and_guidance_are_used(tiny_backend: DiffusersBackend) -> None:
    plain = tiny_backend.generate(GenerationParams("a red fox", seed=3, **SMALL)).images[0]
    negative = tiny_backend.generate(
        GenerationParams("a red fox", negative_prompt="blurry", seed=3, **SMALL)
    ).images[0]
    unguided = tiny_backend.generate(
        GenerationParams("a red fox", guidance_scale=0.0, seed=3, **SMALL)
    )
    assert not np.array_equal(pixels(plain), pixels(negative))
    assert unguided.guidance_scale == 0.0
    assert not np.array_equal(pixels(plain), pixels(unguided.images[0]))


def test_image_to_image_returns_the_requested_size(tiny_backend: DiffusersBackend) -> None:
    init = Image.new("RGB", (200, 120), (200, 40, 40))
    params = GenerationParams("a red fox", init_image=init, seed=5, width=96, height=64, steps=4)
    output = tiny_backend.generate(params)
    assert output.mode == "image-to-image"
    assert output.strength == 0.75 and output.steps == 4
    assert [(im.mode, im.size) for im in output.images] == [("RGB", (96, 64))]
    again = tiny_backend.generate(params)
    assert np.array_equal(pixels(output.images[0]), pixels(again.images[0]))


def test_image_to_image_from_a_real_photograph(tiny_backend: DiffusersBackend) -> None:
    astronaut = Image.open(io.BytesIO(photo("astronaut", size=None)))  # 512x512 RGB
    params = GenerationParams(
        "a 1/7 scale figure", init_image=astronaut, seed=9, width=128, height=64, steps=2
    )
    output = tiny_backend.generate(params)
    assert output.images[0].size == (128, 64)
    assert output.steps == 2 and output.seeds == [9]


def test_image_to_image_depends_on_the_input(tiny_backend: DiffusersBackend) -> None:
    def run(colour: tuple[int, int, int], strength: float) -> np.ndarray:
        init = Image.new("RGB", (64, 64), colour)
        params = GenerationParams(
            "a fox", init_image=init, strength=strength, seed=5, width=64, height=64, steps=4
        )
        return pixels(tiny_backend.generate(params).images[0])

    assert np.abs(run((255, 0, 0), 0.25) - run((0, 0, 255), 0.25)).mean() > 5


def test_transparent_input_is_flattened_on_white(tiny_backend: DiffusersBackend) -> None:
    init = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    output = tiny_backend.generate(
        GenerationParams("a fox", init_image=init, seed=1, width=64, height=64, steps=2)
    )
    assert output.images[0].mode == "RGB"


def test_default_steps_too_short_for_img2img_are_lengthened() -> None:
    # A turbo-like model: 1 step by default, which image-to-image at strength 0.5 cannot use.
    backend = DiffusersBackend(
        own_pipeline(),
        model_id="test/one-step",
        model_version="test",
        defaults=ModelDefaults(steps=1, width=64, height=64, guidance_scale=0.0),
    )
    init = Image.new("RGB", (64, 64), "white")
    output = backend.generate(GenerationParams("a fox", init_image=init, strength=0.5, seed=1))
    assert output.steps == 2
    with pytest.raises(InputError, match="at least 2 steps"):
        backend.generate(GenerationParams("a fox", init_image=init, strength=0.5, steps=1))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"width": 60}, "multiple of 8"),
        ({"height": 100}, "multiple of 8"),
        ({"width": 56}, "between 64 and 2048"),
        ({"height": 2056}, "between 64 and 2048"),
        ({"n": 0}, "n must be between 1 and 8"),
        ({"n": 9}, "n must be between 1 and 8"),
        ({"n": True}, "n must be an integer"),
        ({"steps": 0}, "steps must be between 1 and 150"),
        ({"steps": 151}, "steps must be between 1 and 150"),
        ({"prompt": ""}, "prompt must not be empty"),
        ({"prompt": "   "}, "prompt must not be empty"),
        ({"prompt": "x" * 2001}, "at most 2000"),
        ({"negative_prompt": "x" * 2001}, "at most 2000"),
        ({"guidance_scale": -1.0}, "guidance_scale"),
        ({"guidance_scale": math.nan}, "guidance_scale"),
        ({"seed": -1}, "seed must be between"),
        ({"seed": 2**32}, "seed must be between"),
    ],
)
def test_invalid_requests_raise_input_error(
    tiny_backend: DiffusersBackend, change: dict[str, object], message: str
) -> None:
    fields: dict[str, object] = {"prompt": "a fox", "seed": 1, **SMALL, **change}
    prompt = fields.pop("prompt")
    with pytest.raises(InputError, match=message):
        tiny_backend.generate(GenerationParams(prompt, **fields))  # type: ignore[arg-type]


@pytest.mark.parametrize("strength", [0.0, -0.5, 1.5])
def test_invalid_strength_raises_input_error(
    tiny_backend: DiffusersBackend, strength: float
) -> None:
    init = Image.new("RGB", (64, 64))
    with pytest.raises(InputError, match="strength"):
        tiny_backend.generate(
            GenerationParams("a fox", init_image=init, strength=strength, **SMALL)
        )


def test_failure_inside_the_pipeline_is_a_generation_error() -> None:
    # A real failure, not a mock: a text encoder whose width does not fit the UNet's
    # cross-attention (16 vs 32) fails deep inside the UNet.
    config = build_tiny_pipeline().text_encoder.config.to_dict() | {"hidden_size": 16}
    mismatched = CLIPTextModel(CLIPTextConfig(**config))
    backend = DiffusersBackend(
        own_pipeline(text_encoder=mismatched), model_id="t", model_version="t"
    )
    with pytest.raises(GenerationError, match="failed while generating") as caught:
        backend.generate(GenerationParams("a fox", seed=1, **SMALL))
    assert caught.value.__cause__ is not None


def test_non_finite_pixels_are_an_error_not_a_black_image() -> None:
    vae = copy.deepcopy(build_tiny_pipeline().vae)
    with torch.no_grad():
        vae.decoder.conv_out.bias.fill_(math.nan)
    backend = DiffusersBackend(own_pipeline(vae=vae), model_id="t", model_version="t")
    with pytest.raises(GenerationError, match="non-finite"):
        backend.generate(GenerationParams("a fox", seed=1, **SMALL))


def test_default_size_is_512(tiny_backend: DiffusersBackend) -> None:
    output = tiny_backend.generate(GenerationParams("a red fox", seed=1, steps=1, guidance_scale=0))
    assert output.images[0].size == (512, 512)
