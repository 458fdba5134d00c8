"""Type stub of `provenance.watermark`: the names below are imported on first use."""

from ._backends import (
    OPTIONAL_WATERMARK_BACKENDS,
    WATERMARK_BACKENDS,
    WatermarkBackend,
    make_watermarker,
)
from ._dwtdctsvd import DwtDctSvdWatermarker
from ._protocol import Watermarker, WatermarkReading
from ._rivagan import RivaGanWatermarker
from ._trustmark import TrustMarkWatermarker

__all__ = [
    "OPTIONAL_WATERMARK_BACKENDS",
    "WATERMARK_BACKENDS",
    "DwtDctSvdWatermarker",
    "RivaGanWatermarker",
    "TrustMarkWatermarker",
    "WatermarkBackend",
    "WatermarkReading",
    "Watermarker",
    "make_watermarker",
]
