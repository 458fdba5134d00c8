"""Perceptual fingerprints: what ties a copy to its sealed original once metadata is gone.

`fingerprint` is PDQ (256 bits, compared by `hamming`); `crop_print` keeps a 64x64 thumbnail
of the sealed image, which `crop_match` searches a cropped copy in.
"""

from provenance.fingerprints._crop import CROP_MATCH_THRESHOLD, crop_match, crop_print
from provenance.fingerprints._pdq import (
    FINGERPRINT_BITS,
    Fingerprint,
    Fingerprinter,
    fingerprint,
    hamming,
)

__all__ = [
    "CROP_MATCH_THRESHOLD",
    "FINGERPRINT_BITS",
    "Fingerprint",
    "Fingerprinter",
    "crop_match",
    "crop_print",
    "fingerprint",
    "hamming",
]
