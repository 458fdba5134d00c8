"""Choosing a watermark backend by name (the ``watermark`` setting)."""

from __future__ import annotations

from pathlib import Path
from typing import Final, Literal

from genseal.errors import ConfigError
from provenance.watermark._protocol import Watermarker

__all__ = [
    "OPTIONAL_WATERMARK_BACKENDS",
    "WATERMARK_BACKENDS",
    "WatermarkBackend",
    "make_watermarker",
]

WatermarkBackend = Literal["dwtdctsvd", "rivagan", "trustmark"]
#: Backends that run with genseal's own dependencies alone (what tests and benchmarks sweep).
WATERMARK_BACKENDS: Final[tuple[str, ...]] = ("dwtdctsvd", "rivagan")
#: Backends that need an extra and model files on disk: ``trustmark`` (GENSEAL_TRUSTMARK_MODELS).
OPTIONAL_WATERMARK_BACKENDS: Final[tuple[str, ...]] = ("trustmark",)


def make_watermarker(
    name: str, *, trustmark_models: Path | None = None, cache_dir: Path | None = None
) -> Watermarker:
    """The watermarker called ``name``; ConfigError for an unknown one.

    Construction is cheap: rivaGan loads its ONNX models on first use (keeping the int8
    decoder it derives in ``cache_dir``), and so does TrustMark (from ``trustmark_models``,
    the GENSEAL_TRUSTMARK_MODELS setting; a WatermarkError then says what is missing).
    """
    # Each backend is imported only when chosen: DWT-DCT-SVD brings scipy, which a process
    # reading rivaGan marks never needs.
    if name == "dwtdctsvd":
        from provenance.watermark._dwtdctsvd import DwtDctSvdWatermarker

        return DwtDctSvdWatermarker()
    if name == "rivagan":
        from provenance.watermark._rivagan import RivaGanWatermarker

        return RivaGanWatermarker(cache_dir=cache_dir)
    if name == "trustmark":
        from provenance.watermark._trustmark import TrustMarkWatermarker

        return TrustMarkWatermarker(trustmark_models)
    known = (*WATERMARK_BACKENDS, *OPTIONAL_WATERMARK_BACKENDS)
    raise ConfigError(f"unknown watermark backend {name!r}; choose one of {', '.join(known)}")
