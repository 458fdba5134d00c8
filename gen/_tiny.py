"""The embedded `tiny` model: a real Stable Diffusion pipeline with tiny random weights.

No weights can be downloaded on the machines genseal is built and tested on, so the default model
is built from configs, the way diffusers' own tests build `get_dummy_components`: every stage is
real (CLIP tokenizer and text encoder, UNet with cross-attention, Euler scheduler, VAE), only the
weights are random, so it draws structured noise. Weights are deterministic for a seed.

Geometry: unlike diffusers' dummy components (a 2-block VAE, scale factor 2, which takes ~30 s at
512² on a 2-core CPU), the VAE here has 4 blocks like Stable Diffusion 1.x: scale factor 8,
4 latent channels, and a UNet with `sample_size` 64, so the default size is 512² and any side
that is a multiple of 8 works (the UNet upsamples odd latent sizes explicitly).

The tokenizer is the real CLIP BPE (49408 tokens), built offline from the vocabulary file that
`open-clip-torch` ships. In transformers 5, `CLIPTokenizer(vocab_file=...)` silently yields an
empty vocabulary, so the vocabulary and merges are passed in as objects.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import importlib.util
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from genseal.errors import ModelError

if TYPE_CHECKING:
    from transformers import CLIPTokenizer

# torch, diffusers and transformers take seconds to import (diffusers' pipelines ~9 s here): they
# are imported where used, so that importing genseal (e.g. for `genseal verify`) does not pay.
# Pipelines are typed Any: diffusers' annotations do not see nn.Module's methods through its mixins.

__all__ = [
    "CLIP_VOCAB_SIZE",
    "TINY_MODEL_ID",
    "TINY_SEED",
    "build_clip_tokenizer",
    "build_tiny_pipeline",
    "new_tiny_pipeline",
    "tiny_model_version",
]

TINY_MODEL_ID: Final = "genseal/tiny-sd"
TINY_SEED: Final = 0
CLIP_VOCAB_SIZE: Final = 49408
_CLIP_MAX_TOKENS: Final = 77
_ROUND_TRIP_TEXT: Final = "a ceramic figurine of a red fox"
# 256 byte tokens + 256 end-of-word byte tokens + merges + 2 specials = 49408, as in open_clip.
_CLIP_MERGES: Final = CLIP_VOCAB_SIZE - 2 * 256 - 2

# Bump when the configs below change on purpose: it is part of the model version.
_FORMAT: Final = 1

_UNET: Final[dict[str, Any]] = {
    "sample_size": 64,
    "in_channels": 4,
    "out_channels": 4,
    "block_out_channels": (32, 64),
    "layers_per_block": 2,
    "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D"),
    "up_block_types": ("CrossAttnUpBlock2D", "UpBlock2D"),
    "cross_attention_dim": 32,
    "attention_head_dim": (2, 4),
    "norm_num_groups": 8,
}
_VAE: Final[dict[str, Any]] = {
    "sample_size": 512,
    "in_channels": 3,
    "out_channels": 3,
    "latent_channels": 4,
    "block_out_channels": (8, 16, 32, 32),
    "down_block_types": ("DownEncoderBlock2D",) * 4,
    "up_block_types": ("UpDecoderBlock2D",) * 4,
    "layers_per_block": 1,
    "norm_num_groups": 8,
}
_TEXT_ENCODER: Final[dict[str, Any]] = {
    "vocab_size": CLIP_VOCAB_SIZE,
    "bos_token_id": 49406,
    "eos_token_id": 49407,
    "pad_token_id": 49407,
    "hidden_size": 32,
    "intermediate_size": 37,
    "projection_dim": 32,
    "num_attention_heads": 4,
    "num_hidden_layers": 5,
    "max_position_embeddings": _CLIP_MAX_TOKENS,
    "layer_norm_eps": 1e-05,
}
# Stable Diffusion 1.x's scheduler settings, so the tiny model schedules like the real thing.
_SCHEDULER: Final[dict[str, Any]] = {
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "steps_offset": 1,
    "timestep_spacing": "leading",
}


@functools.cache
def build_clip_tokenizer() -> CLIPTokenizer:
    """The real CLIP ViT-L/14 BPE tokenizer (as used by Stable Diffusion 1.x), built offline."""
    from transformers import CLIPTokenizer

    vocab, merges = _clip_vocabulary()
    # The annotation says list[str], but the tokenizers backend accepts only (a, b) pairs.
    tokenizer = CLIPTokenizer(
        vocab=vocab,
        merges=merges,  # type: ignore[arg-type]
        model_max_length=_CLIP_MAX_TOKENS,
    )
    # Guard against a silently empty or misaligned vocabulary (see the module docstring):
    # it would still "work", mapping every word to <|endoftext|>.
    ids = tokenizer(_ROUND_TRIP_TEXT).input_ids
    decoded = tokenizer.decode(ids, skip_special_tokens=True)
    if len(tokenizer) != CLIP_VOCAB_SIZE or decoded != _ROUND_TRIP_TEXT or len(ids) != 9:
        raise ModelError(
            "the CLIP tokenizer built from open-clip-torch's vocabulary does not round-trip "
            f"({len(tokenizer)} tokens, {_ROUND_TRIP_TEXT!r} -> {decoded!r})",
            hint="check the installed open-clip-torch and transformers versions",
        )
    return tokenizer


def _clip_vocabulary() -> tuple[dict[str, int], list[tuple[str, str]]]:
    # The vocabulary file only: importing open_clip itself (timm and friends) would cost the
    # tiny model a second of start, and transformers, loaded anyway, has the byte table.
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    spec = importlib.util.find_spec("open_clip")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            "the tiny model's tokenizer needs open-clip-torch", hint="pip install open-clip-torch"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "bpe_simple_vocab_16e6.txt.gz"
    try:
        lines = gzip.decompress(path.read_bytes()).decode("utf-8").split("\n")
    except OSError as exc:
        raise ModelError(f"cannot read the CLIP BPE vocabulary at {path}: {exc}") from exc
    # Line 0 is a version header; open_clip keeps exactly this many merges.
    merges = [(a, b) for a, b in (line.split() for line in lines[1 : _CLIP_MERGES + 1])]
    byte_tokens = list(bytes_to_unicode().values())
    tokens = [
        *byte_tokens,
        *(token + "</w>" for token in byte_tokens),
        *(a + b for a, b in merges),
        "<|startoftext|>",
        "<|endoftext|>",
    ]
    return {token: index for index, token in enumerate(tokens)}, merges


def build_tiny_pipeline(seed: int = TINY_SEED) -> Any:
    """The tiny pipeline for `seed`, built once per process and shared.

    Shared means: do not move it to another device, change its dtype or swap its components;
    wrap it with `from_pipe(..., scheduler=...)` (what DiffusersBackend does), or build a private
    one with `new_tiny_pipeline`.
    """
    # functools.cache keys f() and f(0) apart; normalise the argument before the cache.
    return _cached_tiny_pipeline(int(seed))


@functools.cache
def _cached_tiny_pipeline(seed: int) -> Any:
    return new_tiny_pipeline(seed)


def new_tiny_pipeline(seed: int = TINY_SEED) -> Any:
    """A freshly built (uncached) tiny StableDiffusionPipeline on the CPU in float32."""
    import torch
    from diffusers import (
        AutoencoderKL,
        EulerDiscreteScheduler,
        StableDiffusionPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel

    tokenizer = build_clip_tokenizer()
    # fork_rng: seed the initialisation without disturbing the caller's global torch RNG.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        unet: Any = UNet2DConditionModel(**_UNET)
        vae: Any = AutoencoderKL(**_VAE)
        text_encoder: Any = CLIPTextModel(CLIPTextConfig(**_TEXT_ENCODER))
    pipe: Any = StableDiffusionPipeline(
        unet=unet.eval(),
        vae=vae.eval(),
        text_encoder=text_encoder.eval(),
        tokenizer=tokenizer,
        scheduler=EulerDiscreteScheduler(**_SCHEDULER),
        # genseal screens every output itself and never blanks an image in place.
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def tiny_model_version(pipe: Any, seed: int = TINY_SEED) -> str:
    """Short sha256 over the configs, the seed and the weights themselves.

    The weights are hashed (~20 ms) rather than trusted to follow from config + seed: torch does
    not promise the same random initialisation across releases, and the version is what a
    provenance manifest records as "which model made this".
    """
    import torch

    digest = hashlib.sha256()
    configs = {
        "format": _FORMAT,
        "seed": seed,
        "unet": _UNET,
        "vae": _VAE,
        "text_encoder": _TEXT_ENCODER,
        "scheduler": _SCHEDULER,
        "vocab_size": CLIP_VOCAB_SIZE,
    }
    digest.update(json.dumps(configs, sort_keys=True).encode())
    for name in ("unet", "vae", "text_encoder"):
        state = getattr(pipe, name).state_dict()
        for key in sorted(state):
            digest.update(f"{name}.{key}".encode())
            tensor = state[key].detach().to(device="cpu", dtype=torch.float32).contiguous()
            digest.update(tensor.numpy().tobytes())
    return digest.hexdigest()[:16]
