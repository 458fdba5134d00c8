"""RivaGAN invisible watermark: the ONNX encoder/decoder that invisible-watermark ships, run
directly with onnxruntime (no torch import; invisible-watermark's own wrapper imports torch).

RivaGAN (Zhang et al., 2019) is a learned 32-bit watermark whose decoder pools over the whole
frame, which is what survives cropping, small rotations, brightness and noise where
DWT-DCT-SVD, tied to an 8x8 block grid, does not.

Speed: run as shipped on a 512x512 frame it takes ~1 s on a 2-core CPU. Five changes, each
measured (``genseal bench watermark``, ``python -m bench.robustness``):

- the networks are exported from a video model: their four 11x11 convolutions are 3-D with a
  time depth of 1, which onnxruntime runs ~3x slower than the same 2-D convolution. When the
  ``onnx`` package is there, the graphs are rewritten on load (Squeeze → Conv2d → Unsqueeze,
  same weights; outputs equal to ~1e-5); without it the shipped graphs run unchanged;
- both networks run at a fixed *working resolution* (224x224 by default): the image is
  resized down, the encoder marks the small copy, and only the *difference* it made is
  resized up (bicubic) and added to the full-resolution pixels, so the picture keeps its
  detail. The detector resizes any image to the same working resolution, which also undoes
  rescaling attacks. 224 is the measured compromise: at 256 the networks cost ~30 % more
  for the same recoveries on the robustness benchmark; at 192 20 % corner crops of strongly
  coloured pictures start to fail. A CUDA provider is used when onnxruntime has one;
- the decoder ends in a per-pixel product of two 32-channel maps that is *averaged over the
  frame*, and its two 32→32 convolutions (85 % of its work) only feed that average: they run
  at stride 2, averaging a quarter of the positions (an unbiased sample of the same mean);
- the encoder's attention branch (a 32→32 convolution, 75 % of its work) only decides *where*
  the mark goes: it runs at stride 2 and its one-channel map is upsampled (bilinear) before
  the rest of the encoder, which still works at full working resolution.
  Strides of 3 and 4, and computing the attention on a pooled frame, were tried and rejected:
  the sampling grid aliases with the mark, whose payload lives in the attention map's fine
  structure (unmarked-level readings);
- on a CPU the decoder runs as an int8 copy made on load (``_rivagan_int8``): ~1.6x faster,
  the same bits. The encoder stays float: int8 does not speed up its 32→3 output layer,
  which dominates it, and its output is the mark itself.

Crops: a crop that keeps a fraction ``f`` of each side, resized to the working size, shows the
mark magnified by 1/f, which the decoder reads poorly (20 % crops: ~7 of 32 bits wrong at
worst). The decoder is fully convolutional, so the detector also reads the image resized to
``f`` x the working size for ``f`` in ``_CROP_SCALES``, which restores the mark's scale whatever
was cut, and pools the strongest readings. Those extra reads run only when asked
(``detect(thorough=True)``): the verifier asks when a quick reading recovered nothing.

Detection: 32 bits leave no room for a checksum next to a 32-bit id, so ``detected`` rests on
the decoder's confidence (mean |logit| over the bits, after a keyed whitening mask so that no
payload is all-zero on the wire). Busy unmarked textures can reach that confidence with a
random payload; that is why a watermark reading is only ever a lead and recovery needs the
fingerprint to agree (see ``Verifier``). The reading also lists ``candidates``, most likely
first: soft-decision list decoding, i.e. every set of flipped bits in increasing order of the
decoder confidence it overrides (1,024 of them; 4,096 from a thorough reading, interleaving the
pooled and the strongest single reading). Recovery looks them up when the hard decision names
no stored manifest that looks like the image; a random store hit still has to pass the crop
print or PDQ. After 20 % crops of the scikit-image photos the right payload ranked at worst
~3,100th. For an id with a CRC use ``dwtdctsvd``.
"""

from __future__ import annotations

import functools
import hashlib
import heapq
import importlib.util
import os
import threading
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from PIL import Image

from genseal.errors import WatermarkError
from provenance._media import split_alpha
from provenance.watermark._protocol import WatermarkReading, check_payload
from provenance.watermark._rivagan_int8 import quantize_decoder, write_atomically

__all__ = ["RivaGanWatermarker", "rivagan_model_dir"]

_BITS: Final = 32
_MIN_SIDE: Final = 256
# Mean |logit| that counts as a mark. Marked 512² photos read 9-15 untouched and >= 3.3 after
# JPEG 50 or a 20 % corner crop; unmarked photos mostly 0.2-3, a few busy textures up to ~5.5.
_MIN_STRENGTH: Final = 3.0
# Logit at which a bit counts as "sure" for the confidence figure.
_SURE_LOGIT: Final = 10.0
# Fractions of each side a crop may have kept; the detector re-reads at each.
_CROP_SCALES: Final = (0.9, 0.85, 0.8, 0.75)
# How many of the strongest readings are pooled into one.
_POOLED: Final = 3
# Soft-decision list decoding: how many payloads a reading offers, most likely first. After a
# 20 % crop the right one ranked at worst ~3,100th among the scikit-image photos.
_CANDIDATES: Final = 4096
_FEW_CANDIDATES: Final = 1024
# Convolution stride of the decoder's 32→32 layers and of the encoder's attention layer.
_DECODER_STRIDE: Final = 2
_ATTENTION_STRIDE: Final = 2
# Names the rewrite below: change it when the rewrite changes, so cached copies are remade.
_REWRITE_RECIPE: Final = "conv3d-as-2d-v1"
_SEED_MASK: Final = 0x21FA_6A11


class RivaGanWatermarker:
    """32-bit RivaGAN payload applied at a working resolution; see the module docstring."""

    name: str = "rivagan"
    version: str = "1"
    min_side: int = _MIN_SIDE

    def __init__(
        self,
        working_size: int = 224,
        model_dir: Path | None = None,
        *,
        cache_dir: Path | None = None,
    ) -> None:
        """``cache_dir``: where the int8 decoder made on first use is kept for the next
        process (see ``_rivagan_int8``); None makes it anew in every process."""
        if working_size < 64 or working_size % 16:
            raise WatermarkError(
                f"the rivaGan working size must be a multiple of 16, >= 64; got {working_size}"
            )
        self._size = working_size
        self._model_dir = model_dir
        self._cache_dir = cache_dir

    def embed(self, image: Image.Image, payload: str) -> Image.Image:
        """Return a marked copy (RGB, or RGBA with the alpha channel untouched)."""
        bits = np.unpackbits(np.frombuffer(bytes.fromhex(check_payload(payload)), np.uint8))
        rgb_image, alpha = split_alpha(image)
        width, height = rgb_image.size
        if min(width, height) < _MIN_SIDE:
            raise WatermarkError(
                f"the image is {width}x{height}; rivaGan needs at least {_MIN_SIDE}x{_MIN_SIDE}"
            )
        small = _working(rgb_image, self._size)
        encoder, _ = _sessions(self._models(), self._cache_dir)
        word = bits ^ _mask()
        marked = encoder.run(
            None, {"frame": _to_frame(small), "data": word.astype(np.float32)[None, :]}
        )[0]
        residual = _from_frame(marked) - small
        # Upsample the change, not the marked image: the full-resolution detail stays.
        up = np.stack(
            [
                np.asarray(
                    Image.fromarray(residual[..., k]).resize(
                        (width, height), Image.Resampling.BICUBIC
                    )
                )
                for k in range(3)
            ],
            axis=-1,
        )
        pixels = np.asarray(rgb_image, dtype=np.float32) + up
        result = Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8), mode="RGB")
        if alpha is not None:
            result.putalpha(alpha)
        return result

    def detect(self, image: Image.Image, *, thorough: bool = False) -> WatermarkReading:
        """Read the payload; ``detected`` when the decoder is confident enough.

        ``thorough``: also read at every scale a crop may have left (``_CROP_SCALES``) and pool
        the strongest readings; ~5x the time, and a longer list of ``candidates``.
        """
        rgb_image, _ = split_alpha(image)
        if min(rgb_image.size) < _MIN_SIDE // 2:
            return WatermarkReading(algorithm=self.name, detected=False, confidence=0.0)
        readings = [self._logits(rgb_image, 1.0)]
        if thorough:
            readings += [self._logits(rgb_image, scale) for scale in _CROP_SCALES]
        readings.sort(key=_strength, reverse=True)
        strength = _strength(readings[0])
        if strength < _MIN_STRENGTH:
            return WatermarkReading(
                algorithm=self.name, detected=False, confidence=min(strength / _SURE_LOGIT, 1.0)
            )
        if len(readings) == 1:
            candidates = _ordered_payloads(readings[0], _FEW_CANDIDATES)
        else:
            # Neighbouring scales read the same mark with independent errors: their
            # normalised sum is usually right where each alone is not.
            pooled = np.sum([r / _strength(r) for r in readings[:_POOLED]], axis=0) * strength
            candidates = _interleave(
                _ordered_payloads(pooled, _CANDIDATES), _ordered_payloads(readings[0], _CANDIDATES)
            )[:_CANDIDATES]
        return WatermarkReading(
            algorithm=self.name,
            detected=True,
            payload=candidates[0],
            confidence=min(strength / _SURE_LOGIT, 1.0),
            candidates=tuple(candidates[1:]),
        )

    def read_bits(self, image: Image.Image) -> npt.NDArray[np.uint8]:
        """The 32 payload bits of the strongest reading, whether or not detection holds (for
        bit accuracy)."""
        rgb_image = split_alpha(image)[0]
        readings = [self._logits(rgb_image, s) for s in (1.0, *_CROP_SCALES)]
        return (max(readings, key=_strength) > 0).astype(np.uint8) ^ _mask()

    def logits(self, image: Image.Image) -> npt.NDArray[np.float32]:
        """The decoder's 32 raw logits at the working size (positive: bit 1 on the wire,
        before unmasking)."""
        return self._logits(image.convert("RGB"), 1.0)

    def _logits(self, image: Image.Image, scale: float) -> npt.NDArray[np.float32]:
        _, decoder = _sessions(self._models(), self._cache_dir)
        step = _DECODER_STRIDE
        side = max(step * 8, round(self._size * scale / step) * step)
        out = decoder.run(None, {"frame": _to_frame(_working(image, side))})
        return np.asarray(out[0][0], dtype=np.float32)

    def _models(self) -> Path:
        return self._model_dir if self._model_dir is not None else rivagan_model_dir()


def rivagan_model_dir() -> Path:
    """Where invisible-watermark keeps its rivaGan ONNX files (without importing it: its
    package imports torch)."""
    spec = importlib.util.find_spec("imwatermark")
    if spec is None or not spec.submodule_search_locations:
        raise WatermarkError(
            "the rivaGan watermark needs the ONNX models shipped by invisible-watermark",
            hint="pip install invisible-watermark (a genseal dependency)",
        )
    return Path(next(iter(spec.submodule_search_locations)))


_LOADED: dict[Path, tuple[Any, Any]] = {}
_LOADING = threading.Lock()


def _sessions(model_dir: Path, cache_dir: Path | None = None) -> tuple[Any, Any]:
    """The encoder and decoder sessions, made once per process and model directory (the
    first caller's ``cache_dir`` supplies the int8 decoder)."""
    with _LOADING:
        if model_dir not in _LOADED:
            _LOADED[model_dir] = _load(model_dir, cache_dir)
        return _LOADED[model_dir]


def _load(model_dir: Path, cache_dir: Path | None) -> tuple[Any, Any]:
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise WatermarkError(
            "the rivaGan watermark needs onnxruntime", hint="pip install onnxruntime"
        ) from exc
    options = ort.SessionOptions()
    options.intra_op_num_threads = os.cpu_count() or 1
    available = ort.get_available_providers()
    providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]
    try:
        encoder = ort.InferenceSession(
            _model(model_dir / "rivagan_encoder.onnx", cache_dir), options, providers=providers
        )
        decoder_model = _model(model_dir / "rivagan_decoder.onnx", cache_dir)
        if isinstance(decoder_model, bytes) and "CUDAExecutionProvider" not in providers:
            decoder_model = quantize_decoder(decoder_model, encoder, cache_dir) or decoder_model
        decoder = ort.InferenceSession(decoder_model, options, providers=providers)
    except Exception as exc:  # onnxruntime raises its own untyped errors
        raise WatermarkError(f"cannot load the rivaGan models from {model_dir}: {exc}") from exc
    return encoder, decoder


def _model(path: Path, cache_dir: Path | None = None) -> bytes | str:
    """The model with its depth-1 3-D convolutions turned 2-D and strided as the module
    docstring says, or the path as shipped.

    The rewritten copy is kept in ``cache_dir``: importing ``onnx`` to make it costs most of a
    second, which every later process (a one-off ``genseal verify``) is spared.
    """
    cached = None
    if cache_dir is not None:
        try:
            source = path.read_bytes()
        except OSError as exc:
            raise WatermarkError(f"cannot read the rivaGan model {path}: {exc}") from exc
        recipe = f"{_REWRITE_RECIPE}/{_DECODER_STRIDE}/{_ATTENTION_STRIDE}".encode()
        key = hashlib.sha256(source + recipe).hexdigest()[:24]
        cached = cache_dir / f"{path.stem}-2d-{key}.onnx"
        try:
            return cached.read_bytes()
        except OSError:
            pass
    rewritten = _rewrite(path)
    if cached is not None and isinstance(rewritten, bytes):
        write_atomically(cached, rewritten)
    return rewritten


def _rewrite(path: Path) -> bytes | str:
    try:
        import onnx
        from onnx import helper, numpy_helper
    except ImportError:
        return str(path)
    model = onnx.load(str(path))
    graph = model.graph
    decoder = "decoder" in path.name
    weights = {init.name: init for init in graph.initializer}
    nodes = []
    for node in graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        kernel = attrs.get("kernel_shape", [])
        pads = attrs.get("pads", [0] * 6)
        strides = attrs.get("strides", [1, 1, 1])
        rewritable = (
            node.op_type == "Conv"
            and len(kernel) == 3
            and kernel[0] == 1
            and pads[0] == pads[3] == 0
            and strides[0] == 1
            and node.input[1] in weights
        )
        if not rewritable:
            nodes.append(node)
            continue
        weight = numpy_helper.to_array(weights[node.input[1]])[:, :, 0]
        # Which layers may run strided: the decoder's 32→32 ones (they only feed the frame
        # average) and the encoder's attention layer (upsampled below).
        strided = weight.shape[:2] == (32, 32) and (
            decoder or node.input[1].startswith("_attention.")
        )
        step = (_DECODER_STRIDE if decoder else _ATTENTION_STRIDE) if strided else 1
        name2d = f"{node.input[1]}__2d"
        if name2d not in weights:
            weights[name2d] = numpy_helper.from_array(weight, name2d)
            graph.initializer.append(weights[name2d])
        squeezed, conv = f"{node.output[0]}__in2d", f"{node.output[0]}__out2d"
        # The graphs are opset < 13: Squeeze/Unsqueeze take ``axes`` as an attribute.
        nodes += [
            helper.make_node("Squeeze", [node.input[0]], [squeezed], axes=[2]),
            helper.make_node(
                "Conv",
                [squeezed, name2d, *node.input[2:]],
                [conv],
                kernel_shape=kernel[1:],
                pads=[pads[1], pads[2], pads[4], pads[5]],
                strides=[step * strides[1], step * strides[2]],
                dilations=attrs.get("dilations", [1, 1, 1])[1:],
                group=attrs.get("group", 1),
            ),
            helper.make_node("Unsqueeze", [conv], [node.output[0]], axes=[2]),
        ]
    if not decoder:
        nodes = _upsample_attention(nodes, graph)
    del graph.node[:]
    graph.node.extend(nodes)
    # The 3-D weights the rewrite replaced are no longer read by any node.
    used = {name for node in graph.node for name in node.input}
    kept = [init for init in graph.initializer if init.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    return bytes(model.SerializeToString())


def _upsample_attention(nodes: list[Any], graph: Any) -> list[Any]:
    """Bring the encoder's strided attention map back to the frame's size where it joins
    the frame (the one Concat of ``frame`` with a computed map)."""
    from onnx import helper, numpy_helper

    scales = "genseal_attention_scales"
    factor = _ATTENTION_STRIDE
    graph.initializer.append(
        numpy_helper.from_array(np.array([1, 1, factor, factor], np.float32), scales)
    )
    out = []
    for node in nodes:
        if node.op_type == "Concat" and len(node.input) == 2 and node.input[0] == "frame":
            attention = node.input[1]
            small, large = f"{attention}__4d", f"{attention}__up4d"
            out += [
                helper.make_node("Squeeze", [attention], [small], axes=[2]),
                # Opset 10 Resize: ``scales`` as an input, asymmetric coordinates.
                helper.make_node("Resize", [small, scales], [large], mode="linear"),
                helper.make_node("Unsqueeze", [large], [f"{attention}__up"], axes=[2]),
            ]
            node.input[1] = f"{attention}__up"
        out.append(node)
    return out


def _working(image: Image.Image, size: int) -> npt.NDArray[np.float32]:
    return np.asarray(image.resize((size, size), Image.Resampling.BILINEAR), dtype=np.float32)


def _to_frame(rgb: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    # The networks were trained on OpenCV frames: BGR, scaled to [-1, 1], (N, C, T, H, W).
    bgr = rgb[..., ::-1] / 127.5 - 1.0
    return np.ascontiguousarray(bgr.transpose(2, 0, 1)[None, :, None], dtype=np.float32)


def _from_frame(frame: Any) -> npt.NDArray[np.float32]:
    bgr = np.clip(np.asarray(frame, dtype=np.float32)[0, :, 0].transpose(1, 2, 0), -1.0, 1.0)
    return np.ascontiguousarray((bgr[..., ::-1] + 1.0) * 127.5, dtype=np.float32)


def _strength(logits: npt.NDArray[np.float32]) -> float:
    return float(np.mean(np.abs(logits)))


def _ordered_payloads(logits: npt.NDArray[np.float32], count: int) -> list[str]:
    """The ``count`` most likely payloads given ``logits``: the hard decision, then every set
    of flipped bits in increasing order of the confidence it overrides (the sum of their
    |logit|), enumerated lazily with a heap: each set's successors either add the next
    weakest bit or move its last bit to the next one, which visits every set once."""
    word = int(np.packbits((logits > 0).astype(np.uint8) ^ _mask()).view(">u4")[0])
    order = np.argsort(np.abs(logits))
    weights = [float(w) for w in np.abs(logits)[order]]
    # Bit k of the payload is bit (31 - k) of the integer (most significant first).
    masks = [1 << (_BITS - 1 - int(k)) for k in order]
    found = [word]
    heap: list[tuple[float, int, int]] = [(weights[0], 0, masks[0])]
    while heap and len(found) < count:
        cost, last, flips = heapq.heappop(heap)
        found.append(word ^ flips)
        if last + 1 < _BITS:
            nxt = last + 1
            heapq.heappush(heap, (cost + weights[nxt], nxt, flips | masks[nxt]))
            moved = flips ^ masks[last] | masks[nxt]
            heapq.heappush(heap, (cost - weights[last] + weights[nxt], nxt, moved))
    return [f"{value:08x}" for value in found]


def _interleave(*lists: list[str]) -> list[str]:
    """The lists' items in turn (first of each, then second of each...), without repeats."""
    seen: dict[str, None] = {}
    for group in zip(*lists, strict=False):
        for item in group:
            seen.setdefault(item, None)
    return list(seen)


@functools.cache
def _mask() -> npt.NDArray[np.uint8]:
    return np.random.default_rng(_SEED_MASK).integers(0, 2, _BITS, dtype=np.uint8)
