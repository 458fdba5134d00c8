"""The embedded tiny model: real tokenizer, real components, deterministic weights."""

from __future__ import annotations

import open_clip
import torch

from gen._tiny import (
    CLIP_VOCAB_SIZE,
    build_clip_tokenizer,
    build_tiny_pipeline,
    new_tiny_pipeline,
    tiny_model_version,
)

FOX = "a ceramic figurine of a red fox"


def test_tokenizer_has_the_real_clip_vocabulary() -> None:
    tokenizer = build_clip_tokenizer()
    assert len(tokenizer) == CLIP_VOCAB_SIZE == 49408
    ids = tokenizer(FOX).input_ids
    # open_clip's own tokenizer is the independent reference for the word pieces.
    assert ids == [49406, *open_clip.tokenizer.SimpleTokenizer().encode(FOX), 49407]
    assert ids == [49406, 320, 15112, 33306, 539, 320, 736, 3240, 49407]
    assert tokenizer.decode(ids, skip_special_tokens=True) == FOX
    assert tokenizer.model_max_length == 77


def test_unknown_words_split_into_pieces_not_unk() -> None:
    tokenizer = build_clip_tokenizer()
    ids = tokenizer("zorblaxian genseal").input_ids[1:-1]
    assert len(ids) > 2
    assert tokenizer.eos_token_id not in ids


def test_pipeline_components_fit_together() -> None:
    pipe = build_tiny_pipeline()
    assert pipe.text_encoder.config.vocab_size == len(pipe.tokenizer)
    assert pipe.vae_scale_factor == 8
    assert pipe.unet.config.cross_attention_dim == pipe.text_encoder.config.hidden_size
    assert pipe.safety_checker is None


def test_pipeline_is_cached_per_process() -> None:
    assert build_tiny_pipeline() is build_tiny_pipeline(0)


def test_weights_are_deterministic_for_a_seed() -> None:
    shared = tiny_model_version(build_tiny_pipeline(0), 0)
    assert tiny_model_version(new_tiny_pipeline(0), 0) == shared
    assert tiny_model_version(new_tiny_pipeline(1), 1) != shared
    assert len(shared) == 16


def test_building_leaves_the_global_rng_alone() -> None:
    before = torch.random.get_rng_state()
    new_tiny_pipeline(3)
    assert torch.equal(before, torch.random.get_rng_state())
