"""Choosing a watermark backend by name (the ``watermark`` setting)."""

from __future__ import annotations

from typing import Final, Literal, get_args

from genseal.errors import ConfigError

from ._dwtdctsvd import DwtDctSvdWatermarker
from ._rivagan import RivaGanWatermarker
from ._watermark import Watermarker

__all__ = ["WATERMARK_BACKENDS", "WatermarkBackend", "make_watermarker"]

WatermarkBackend = Literal["dwtdctsvd", "rivagan"]
WATERMARK_BACKENDS: Final[tuple[str, ...]] = get_args(WatermarkBackend)


def make_watermarker(name: str) -> Watermarker:
    """The watermarker called ``name``; ConfigError for an unknown one.

    Construction is cheap: rivaGan loads its ONNX models on first use.
    """
    if name == "dwtdctsvd":
        return DwtDctSvdWatermarker()
    if name == "rivagan":
        return RivaGanWatermarker()
    raise ConfigError(
        f"unknown watermark backend {name!r}; choose one of {', '.join(WATERMARK_BACKENDS)}"
    )
