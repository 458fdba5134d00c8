"""A crop-tolerant fingerprint: a 64x64 luminance thumbnail, matched by aligned correlation.

PDQ is global: cutting 5-10 % off an image moves it ~50-140 of 256 bits, as far as an
unrelated picture (measured on the scikit-image photos). So crops need evidence of their own.
The sealed image's thumbnail is kept (4 KiB) and a query is searched for *inside* it: the
query is resized to every crop size from 100 % down to ``_SCALES[-1]`` of each side and slid
over every position (normalised cross-correlation of the fine detail, i.e. the thumbnail
minus its blur, so that brightness, contrast and smooth gradients do not count).

Measured on 20 scikit-image photos (512x512): the same picture scores >= 0.93 after a 10 %
crop (centre or corner, also + JPEG 75 or resize), >= 0.77 after 20 %, >= 0.99 after JPEG 50,
noise, brightness; different pictures score <= 0.26. It does not survive rotation (0.39
after 2 degrees; PDQ does, within ~30-70 bits). It is only used to *corroborate* a watermark
lead, which already narrowed the store down to a handful of records: never on its own.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt
from PIL import Image

from provenance._media import split_alpha

__all__ = ["CROP_MATCH_THRESHOLD", "crop_match", "crop_print"]

_SIDE: Final = 64
_BYTES: Final = _SIDE * _SIDE
# Crop sizes searched per axis: the store keeps no original size, so every pair is tried.
_SCALES: Final = (1.0, 0.95, 0.9, 0.85, 0.8, 0.75)
_BLUR_SIGMA: Final = 3.0
# Below this spread of detail (grey levels) a thumbnail is too flat to say anything.
_MIN_DETAIL: Final = 2.0
CROP_MATCH_THRESHOLD: Final = 0.6


def crop_print(image: Image.Image) -> bytes:
    """The 64x64 8-bit luminance thumbnail to store with a sealed image."""
    rgb, _ = split_alpha(image)
    thumb = rgb.convert("L").resize((_SIDE, _SIDE), Image.Resampling.BOX)
    return np.asarray(thumb, dtype=np.uint8).tobytes()


def crop_match(stored: bytes, image: Image.Image) -> float | None:
    """Best correlation (-1..1) of ``image`` with any crop of the stored thumbnail.

    None when the stored print is malformed or either side is too flat to compare.
    """
    if len(stored) != _BYTES:
        return None
    reference = _detail(np.frombuffer(stored, dtype=np.uint8).reshape(_SIDE, _SIDE))
    if float(reference.std()) < _MIN_DETAIL:
        return None
    grey = split_alpha(image)[0].convert("L")
    best: float | None = None
    for sw in _SCALES:
        for sh in _SCALES:
            size = (round(sw * _SIDE), round(sh * _SIDE))
            query = _detail(np.asarray(grey.resize(size, Image.Resampling.BOX)))
            if float(query.std()) < _MIN_DETAIL:
                continue
            score = _best_ncc(reference, query)
            best = score if best is None else max(best, score)
    return best


def _detail(pixels: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    grey = pixels.astype(np.float32)
    # scipy loads lazily: importing it costs ~0.5 s on every command that never
    # compares crops (genseal screen).
    from scipy.ndimage import gaussian_filter

    blurred: npt.NDArray[np.float32] = gaussian_filter(grey, _BLUR_SIGMA)
    return grey - blurred


def _best_ncc(reference: npt.NDArray[np.float32], query: npt.NDArray[np.float32]) -> float:
    """Max over every placement of ``query`` inside ``reference`` of their normalised
    cross-correlation (what scikit-image's ``match_template`` computes, without needing it)."""
    qh, qw = query.shape
    centred = (query - query.mean()).astype(np.float64)
    q_norm = float(np.sqrt(np.sum(centred * centred)))
    ref = reference.astype(np.float64)
    from scipy.signal import fftconvolve

    numerator = fftconvolve(ref, centred[::-1, ::-1], mode="valid")
    window_sum = _box_sum(ref, qh, qw)
    window_sq = _box_sum(ref * ref, qh, qw)
    variance = np.maximum(window_sq - window_sum * window_sum / (qh * qw), 0.0)
    denominator = np.sqrt(variance) * q_norm
    scores = np.where(denominator > 1e-6, numerator / np.maximum(denominator, 1e-6), 0.0)
    return float(np.max(scores))


def _box_sum(values: npt.NDArray[np.float64], h: int, w: int) -> npt.NDArray[np.float64]:
    """Sum of every h x w window (valid positions only), from a summed-area table."""
    table = np.pad(values, ((1, 0), (1, 0))).cumsum(axis=0).cumsum(axis=1)
    return np.asarray(table[h:, w:] - table[:-h, w:] - table[h:, :-w] + table[:-h, :-w])
