"""Invisible watermarks: the `Watermarker` seam, what a reading reports, the backends
(DWT-DCT-SVD, RivaGAN, the optional TrustMark) and choosing one by name.

A payload is 8 hex characters (32 bits): a reading is a lead for recovery, never proof.
"""

from provenance.watermark._backends import (
    OPTIONAL_WATERMARK_BACKENDS,
    WATERMARK_BACKENDS,
    WatermarkBackend,
    make_watermarker,
)
from provenance.watermark._dwtdctsvd import DwtDctSvdWatermarker
from provenance.watermark._protocol import Watermarker, WatermarkReading
from provenance.watermark._rivagan import RivaGanWatermarker
from provenance.watermark._trustmark import TrustMarkWatermarker

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
