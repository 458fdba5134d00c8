"""The int8 rivaGan decoder reads the same bits as the float one, and never breaks loading."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
from PIL import Image

from provenance import RivaGanWatermarker
from provenance.watermark._rivagan import _model, _sessions, _to_frame, _working, rivagan_model_dir
from provenance.watermark._rivagan_int8 import quantize_decoder


def _float_decoder() -> Any:
    return ort.InferenceSession(
        _model(rivagan_model_dir() / "rivagan_decoder.onnx"),
        providers=["CPUExecutionProvider"],
    )


def test_the_copy_runs_its_convolutions_on_quantised_tensors() -> None:
    import onnx

    encoder, decoder = _sessions(rivagan_model_dir())
    source = _model(rivagan_model_dir() / "rivagan_decoder.onnx")
    assert isinstance(source, bytes)
    model = quantize_decoder(source, encoder)
    assert model is not None
    graph = onnx.load_from_string(model).graph
    ops = [node.op_type for node in graph.node]
    assert ops.count("Conv") == 4 and "QuantizeLinear" in ops and "DequantizeLinear" in ops
    # Every convolution's weights reach it through a DequantizeLinear: int8 on disk.
    produced_by = {output: node.op_type for node in graph.node for output in node.output}
    assert all(
        produced_by.get(n.input[1]) == "DequantizeLinear" for n in graph.node if n.op_type == "Conv"
    )
    assert decoder.get_inputs()[0].name == "frame"


@pytest.mark.parametrize("quality", [None, 75])
def test_int8_and_float_decoders_read_the_same_bits(
    photos: dict[str, Image.Image], quality: int | None
) -> None:
    watermarker = RivaGanWatermarker()
    _, int8 = _sessions(rivagan_model_dir())
    exact = _float_decoder()
    for name, payload in (("astronaut", "c0ffee42"), ("coffee", "0badcafe")):
        marked = watermarker.embed(photos[name], payload)
        if quality is not None:
            buffer = io.BytesIO()
            marked.save(buffer, format="JPEG", quality=quality)
            marked = Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
        frame = {"frame": _to_frame(_working(marked, 224))}
        quick, reference = int8.run(None, frame)[0][0], exact.run(None, frame)[0][0]
        assert np.array_equal(quick > 0, reference > 0)
        assert np.mean(np.abs(quick)) == pytest.approx(np.mean(np.abs(reference)), rel=0.15)


def test_a_model_the_quantiser_cannot_read_leaves_the_float_decoder() -> None:
    encoder, _ = _sessions(rivagan_model_dir())
    assert quantize_decoder(b"not an onnx model", encoder) is None


def test_the_copy_is_kept_in_the_cache_and_reused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import provenance.watermark._rivagan_int8 as int8

    encoder, _ = _sessions(rivagan_model_dir())
    source = _model(rivagan_model_dir() / "rivagan_decoder.onnx")
    assert isinstance(source, bytes)
    made = quantize_decoder(source, encoder, tmp_path)
    [cached] = tmp_path.glob("rivagan-decoder-int8-*.onnx")
    assert made is not None and cached.read_bytes() == made

    def no_rebuild(*_: object) -> bytes:
        raise AssertionError("the cached copy should have been used")

    monkeypatch.setattr(int8, "_quantize", no_rebuild)
    assert quantize_decoder(source, encoder, tmp_path) == made
    # Another float model (another release) does not pick up this copy.
    with pytest.raises(AssertionError, match="cached copy"):
        quantize_decoder(source + b" ", encoder, tmp_path)


def test_an_unwritable_cache_only_costs_the_rebuild(tmp_path: Path) -> None:
    encoder, _ = _sessions(rivagan_model_dir())
    source = _model(rivagan_model_dir() / "rivagan_decoder.onnx")
    assert isinstance(source, bytes)
    blocked = tmp_path / "file"
    blocked.write_bytes(b"")  # a file where the cache directory should be
    assert quantize_decoder(source, encoder, blocked / "cache") is not None
