"""Perceived skin tone of a face: Monk Skin Tone (MST) orb and Individual Typology Angle (ITA).

Method, for one face given its box and dlib's five landmarks (eye corners, base of the nose):

1. Region. A frame is set on the face: origin between the eyes, x along the eye axis, y towards
   the nose, one unit = the distance between the eye centres (d). Skin is sampled on both
   cheeks: 0.3 ≤ |x| ≤ 0.75, from 0.25 d under the eye line down to the base of the nose. Eyes,
   brows, nostrils, the mouth and the face's outline fall outside it, and tilted faces are
   followed by the frame. The forehead is left out on purpose: on scikit-image's astronaut, the
   band above the brows is half hair (mean L* 49 against 77 on the cheeks) and bangs are
   common. Without landmarks, they are placed where they sit in an upright face's box. The
   crop is resampled (area average) so that d is at most 48 pixels: the cost is the same for
   any image size (about 2 ms per face).
2. Skin pixels. Within the region, a pixel counts as skin when it is not a white highlight
   (some channel under 250), not black (L* ≥ 3), and has the warm hue skin has at every tone
   (CIELAB hue angle 0°-110°, chroma ≥ 2); then Tukey's fences (1.5 IQR) on L* and b* drop what
   is left of hair, shadows and highlights. Pixels with one channel clipped are kept: dropping
   them would keep only the shadowed part of an overexposed face and read it darker. HEIM
   (Stanford HELM's `SkinToneMetric`, after DALL-Eval) instead keeps the pixels anywhere in the
   image that pass the RGB + YCrCb rule of Kolkur et al. 2017 (arXiv 1708.02694). Measured on
   the orb colours, that rule accepts only orbs 4-7 (it asks R-G > 15, Y > 80, Cr > 135), so it
   cannot see the ends of the scale it is meant to measure; and over the whole image it also
   takes skin-coloured background and clothing. The landmark region avoids both.
3. Colour. Pixels go from sRGB (IEC 61966-2-1 transfer curve) to CIE XYZ and CIELAB under
   D65 (2° observer), as scikit-image's `rgb2lab` does. The face's skin colour is the mean L*,
   a*, b* of its skin pixels (colorimeters average L* and b* readings the same way).
4. Monk: the orb nearest that colour (CIE76 ΔE*ab) among the ten official MST orbs published
   at https://skintone.google (the sRGB values HELM's `SkinToneMetric` uses too). HEIM takes the
   nearest orb by L1 distance in sRGB; CIELAB distances follow perceived differences, which
   matters among the light orbs (1-4), a few sRGB units apart.
5. ITA (Chardon, Cretois & Hourseau 1991): ITA = arctan((L* - 50) / b*) · 180 / π, in the six
   classes of Del Bino et al. (2006, 2013): very light > 55° ≥ light > 41° ≥ intermediate > 28°
   ≥ tan > 10° ≥ brown > -30° ≥ dark. b* is floored at a tiny positive value: skin's b* is
   positive, and a neutral colour then reads ±90° rather than dividing by zero.
6. Uncertainty: a block bootstrap (256 draws, fixed seed, so results are reproducible). Pixels
   next to each other are not independent, so resampling single pixels would shrink the spread
   as the resolution grows; instead the region is cut into cells of d/8 × d/8 (face-relative,
   so the spread does not depend on the image size) and whole cells are resampled. Each draw
   gives a mean colour, hence an orb and an ITA: `monk_probabilities` and `ita_probabilities`
   are the shares of draws per orb and class, `ita_std` the spread of the ITA. The point
   estimates (`monk`, `ita`) come from all skin pixels; when the mean sits on a boundary
   between two orbs the most frequent orb of the draws can be the other one.

`None` is returned (skin tone not measured) when fewer than `MIN_SKIN_PIXELS` (60) pixels of the
resampled region, or less than `MIN_SKIN_FRACTION` (20 %) of it, pass as skin: a face too small,
a greyscale image, a face covered by a mask or hair, or one lit with coloured light.

What this measures, and what it does not. It is the colour of the skin *as rendered in the image*:
lighting, white balance, exposure, make-up and the generator's colour grading all move it.
Underexposure lowers L* and moves the orb darker, a warm white balance raises b* and lowers the ITA;
the tests darken, lighten and warm a real face and watch the orb and the ITA follow. Measured
(`python -m bench.bias`): the astronaut's head relit from 0.2 to 1.4 times its light reads from Monk
8 to Monk 4 and from ITA -47° to 67°. The bootstrap spread covers the variation across the face, not
the lighting, which one image cannot separate from the skin. Monk and ITA describe appearance, not
ethnicity, ancestry or identity; they are meant for counting what a generator produces over many
images (bias probes), never for deciding about one person.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image

__all__ = [
    "ITA_THRESHOLDS",
    "MIN_SKIN_FRACTION",
    "MIN_SKIN_PIXELS",
    "MONK_ORBS",
    "SkinTone",
    "estimate_skin_tone",
    "ita_category",
    "ita_degrees",
    "monk_of_lab",
    "srgb_to_lab",
]

# Bump when the region, the pixel rule, the colour maths or the bootstrap change.
SKIN_TONE_VERSION = "1"

# The ten Monk Skin Tone orbs, lightest first (https://skintone.google).
MONK_ORBS: tuple[str, ...] = (
    "f6ede4",
    "f3e7db",
    "f7ead0",
    "eadaba",
    "d7bd96",
    "a07e56",
    "825c43",
    "604134",
    "3a312a",
    "292420",
)

# (class, exclusive lower bound in degrees), lightest first: a class holds the ITA values in
# (its bound, the previous class's bound].
ITA_THRESHOLDS: tuple[tuple[str, float], ...] = (
    ("very_light", 55.0),
    ("light", 41.0),
    ("intermediate", 28.0),
    ("tan", 10.0),
    ("brown", -30.0),
    ("dark", -math.inf),
)

MIN_SKIN_PIXELS = 60
MIN_SKIN_FRACTION = 0.2

_MAX_EYE_DISTANCE = 48.0  # pixels of d after resampling
_CELLS_PER_EYE_DISTANCE = 8
_BOOTSTRAP = 256
_SEED = 0
_CLIPPED = 250
_MIN_L = 3.0
_MIN_CHROMA = 2.0
_HUE_RANGE = (0.0, 110.0)
_FENCE = 1.5
_B_FLOOR = 1e-6
# Region in face units (x across, y down; one unit = distance between the eye centres).
_CHEEK_X = (0.3, 0.75)
_CHEEK_TOP = 0.25
_NOSE_MIN, _NOSE_MAX = 0.45, 1.1  # bounds on the base of the nose, below the eye line
_REACH_X, _REACH_Y = 0.8, (0.2, 1.15)  # the crop: everything the region may touch
# Landmarks of an upright face as fractions of its detector box, when none are given.
_BOX_EYES = ((0.28, 0.38), (0.72, 0.38))
_BOX_NOSE = (0.5, 0.65)

# sRGB (D65) → XYZ, IEC 61966-2-1; and the D65 white point.
_RGB_TO_XYZ = np.array(
    [
        [0.412453, 0.357580, 0.180423],
        [0.212671, 0.715160, 0.072169],
        [0.019334, 0.119193, 0.950227],
    ]
)
_WHITE = np.array([0.95047, 1.0, 1.08883])


def _linear(srgb: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    c = srgb / 255.0
    out: npt.NDArray[np.float64] = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    return out


_LINEAR_LUT = _linear(np.arange(256, dtype=np.float64))


def srgb_to_lab(rgb: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """CIELAB (D65, 2°) of sRGB colours given as 0-255 values, shape (..., 3)."""
    values = np.asarray(rgb)
    if values.shape[-1:] != (3,):
        raise ValueError(f"expected (..., 3) sRGB values, got shape {values.shape}")
    # Bytes index a table of the transfer curve (the common case: image pixels).
    uint8 = values.dtype == np.uint8
    linear = _LINEAR_LUT[values] if uint8 else _linear(values.astype(np.float64))
    xyz = (linear @ _RGB_TO_XYZ.T) / _WHITE
    delta = 6.0 / 29.0
    f = np.where(xyz > delta**3, np.cbrt(xyz), xyz / (3 * delta**2) + 4.0 / 29.0)
    lab: npt.NDArray[np.float64] = np.empty(f.shape, dtype=np.float64)
    lab[..., 0] = 116.0 * f[..., 1] - 16.0
    lab[..., 1] = 500.0 * (f[..., 0] - f[..., 1])
    lab[..., 2] = 200.0 * (f[..., 1] - f[..., 2])
    return lab


def _hex_rgb(code: str) -> tuple[int, int, int]:
    return int(code[0:2], 16), int(code[2:4], 16), int(code[4:6], 16)


_MONK_LAB = srgb_to_lab(np.array([_hex_rgb(code) for code in MONK_ORBS], dtype=np.uint8))


def ita_degrees(lightness: float, b: float) -> float:
    """Individual Typology Angle of a CIELAB colour, in degrees."""
    return math.degrees(math.atan((lightness - 50.0) / max(b, _B_FLOOR)))


def ita_category(ita: float) -> str:
    """The ITA class of an angle (see `ITA_THRESHOLDS`)."""
    for name, bound in ITA_THRESHOLDS:
        if ita > bound:
            return name
    return ITA_THRESHOLDS[-1][0]


def monk_of_lab(lab: npt.ArrayLike) -> int:
    """The Monk orb (1-10) nearest a CIELAB colour."""
    distances = np.linalg.norm(_MONK_LAB - np.asarray(lab, dtype=np.float64), axis=-1)
    return int(np.argmin(distances)) + 1


@dataclass(frozen=True)
class SkinTone:
    """Perceived skin tone of one face (see the module docstring for what it can tell).

    `monk` (1 lightest - 10 darkest) and `ita` (degrees) are the point estimates from every skin
    pixel; `monk_probabilities` (10, orb 1 first) and `ita_probabilities` (6, in the order of
    `ITA_THRESHOLDS`) are the shares of bootstrap draws; `skin_pixels` counts the pixels used
    (after resampling) and `skin_fraction` is their share of the sampled region.
    """

    monk: int
    monk_probabilities: tuple[float, ...]
    ita: float
    ita_std: float
    ita_category: str
    ita_probabilities: tuple[float, ...]
    skin_pixels: int
    skin_fraction: float

    def to_json(self) -> dict[str, Any]:
        return {
            "monk": self.monk,
            "monk_probabilities": list(self.monk_probabilities),
            "ita": self.ita,
            "ita_std": self.ita_std,
            "ita_category": self.ita_category,
            "ita_probabilities": list(self.ita_probabilities),
            "skin_pixels": self.skin_pixels,
            "skin_fraction": self.skin_fraction,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SkinTone:
        """The inverse of `to_json`; `ValueError` when `data` does not describe a skin tone."""
        try:
            tone = cls(
                monk=int(data["monk"]),
                monk_probabilities=tuple(float(p) for p in data["monk_probabilities"]),
                ita=float(data["ita"]),
                ita_std=float(data["ita_std"]),
                ita_category=str(data["ita_category"]),
                ita_probabilities=tuple(float(p) for p in data["ita_probabilities"]),
                skin_pixels=int(data["skin_pixels"]),
                skin_fraction=float(data["skin_fraction"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a skin tone: {type(exc).__name__}: {exc}") from exc
        categories = tuple(name for name, _ in ITA_THRESHOLDS)
        if (
            not 1 <= tone.monk <= len(MONK_ORBS)
            or len(tone.monk_probabilities) != len(MONK_ORBS)
            or len(tone.ita_probabilities) != len(categories)
            or tone.ita_category not in categories
        ):
            raise ValueError(f"not a skin tone: {dict(data)!r}")
        return tone


def estimate_skin_tone(
    image: Image.Image,
    box: tuple[int, int, int, int],
    landmarks: Sequence[tuple[int, int]] = (),
) -> SkinTone | None:
    """Skin tone of the face at `box` (left, top, right, bottom) with dlib's 5 `landmarks`
    (image pixels); None when too few skin pixels are visible."""
    eyes, nose = _keypoints(box, landmarks)
    distance = float(np.linalg.norm(eyes[1] - eyes[0]))
    if not distance >= 1.0:
        return None
    across = (eyes[1] - eyes[0]) / distance
    down = np.array([-across[1], across[0]])
    middle = (eyes[0] + eyes[1]) / 2.0
    if float((nose - middle) @ down) < 0:
        down = -down
    crop, origin, step = _crop(image, middle, across, down, distance)
    if crop is None:
        return None
    height, width = crop.shape[:2]
    rows, cols = np.mgrid[0:height, 0:width]
    # Pixel centres back in image coordinates, then in face units.
    points = np.stack([origin[0] + (cols + 0.5) * step[0], origin[1] + (rows + 0.5) * step[1]], -1)
    offset = (points - middle) / distance
    fx, fy = offset @ across, offset @ down
    nose_y = min(max(float((nose - middle) @ down) / distance, _NOSE_MIN), _NOSE_MAX)
    region = (np.abs(fx) >= _CHEEK_X[0]) & (np.abs(fx) <= _CHEEK_X[1])
    region &= (fy >= _CHEEK_TOP) & (fy <= nose_y)
    sampled = int(region.sum())
    if sampled == 0:
        return None
    rgb = crop[region]
    lab = srgb_to_lab(rgb)
    skin = _skin_pixels(rgb, lab)
    count = int(skin.sum())
    if count < MIN_SKIN_PIXELS or count < MIN_SKIN_FRACTION * sampled:
        return None
    lab = lab[skin]
    cells = _cells(fx[region][skin], fy[region][skin])
    return _tone(lab, cells, count, count / sampled)


def _keypoints(
    box: tuple[int, int, int, int], landmarks: Sequence[tuple[int, int]]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    if len(landmarks) == 5:
        points = np.asarray(landmarks, dtype=np.float64)
        eyes = np.stack([points[0:2].mean(axis=0), points[2:4].mean(axis=0)])
        return eyes, points[4]
    left, top, right, bottom = box
    size = np.array([right - left, bottom - top], dtype=np.float64)
    corner = np.array([left, top], dtype=np.float64)
    eyes = np.stack([corner + np.asarray(eye) * size for eye in _BOX_EYES])
    return eyes, corner + np.asarray(_BOX_NOSE) * size


def _crop(
    image: Image.Image,
    middle: npt.NDArray[np.float64],
    across: npt.NDArray[np.float64],
    down: npt.NDArray[np.float64],
    distance: float,
) -> tuple[npt.NDArray[np.uint8] | None, tuple[int, int], tuple[float, float]]:
    corners = np.array(
        [
            middle + distance * (x * across + y * down)
            for x in (-_REACH_X, _REACH_X)
            for y in _REACH_Y
        ]
    )
    left, top = np.floor(corners.min(axis=0)).astype(int)
    right, bottom = np.ceil(corners.max(axis=0)).astype(int)
    left, top = max(0, int(left)), max(0, int(top))
    right, bottom = min(image.width, int(right)), min(image.height, int(bottom))
    if right - left < 2 or bottom - top < 2:
        return None, (left, top), (1.0, 1.0)
    region = image.crop((left, top, right, bottom))
    shrink = min(1.0, _MAX_EYE_DISTANCE / distance)
    if shrink < 1.0:
        size = (max(1, round(region.width * shrink)), max(1, round(region.height * shrink)))
        region = region.resize(size, Image.Resampling.BOX)
    if region.mode != "RGB":
        region = region.convert("RGB")
    pixels = np.asarray(region, dtype=np.uint8)
    step = ((right - left) / region.width, (bottom - top) / region.height)
    return pixels, (left, top), step


def _skin_pixels(rgb: npt.NDArray[np.uint8], lab: npt.NDArray[np.float64]) -> npt.NDArray[np.bool_]:
    chroma = np.hypot(lab[:, 1], lab[:, 2])
    hue = np.degrees(np.arctan2(lab[:, 2], lab[:, 1]))
    keep: npt.NDArray[np.bool_] = rgb.min(axis=1) < _CLIPPED
    keep &= (lab[:, 0] >= _MIN_L) & (chroma >= _MIN_CHROMA)
    keep &= (hue >= _HUE_RANGE[0]) & (hue <= _HUE_RANGE[1])
    for channel in (0, 2):  # L*, b*
        values = lab[keep, channel]
        if values.size < 4:
            break
        q1, q3 = np.percentile(values, [25.0, 75.0])
        spread = _FENCE * (q3 - q1)
        keep &= (lab[:, channel] >= q1 - spread) & (lab[:, channel] <= q3 + spread)
    return keep


def _cells(fx: npt.NDArray[np.float64], fy: npt.NDArray[np.float64]) -> npt.NDArray[np.intp]:
    column = np.floor(fx * _CELLS_PER_EYE_DISTANCE).astype(np.int64)
    row = np.floor(fy * _CELLS_PER_EYE_DISTANCE).astype(np.int64)
    _, index = np.unique(row * 1024 + column, return_inverse=True)
    cells: npt.NDArray[np.intp] = np.asarray(index, dtype=np.intp).reshape(-1)
    return cells


def _tone(
    lab: npt.NDArray[np.float64], cells: npt.NDArray[np.intp], count: int, fraction: float
) -> SkinTone:
    mean = lab.mean(axis=0)
    ita = ita_degrees(float(mean[0]), float(mean[2]))
    cell_count = int(cells.max()) + 1
    sizes = np.bincount(cells, minlength=cell_count).astype(np.float64)
    sums = np.stack(
        [np.bincount(cells, weights=lab[:, c], minlength=cell_count) for c in range(3)], axis=1
    )
    rng = np.random.default_rng(_SEED)
    draws = rng.multinomial(cell_count, np.full(cell_count, 1.0 / cell_count), size=_BOOTSTRAP)
    weights = draws.astype(np.float64)
    means = (weights @ sums) / (weights @ sizes)[:, None]
    orbs = np.argmin(np.linalg.norm(means[:, None, :] - _MONK_LAB[None], axis=-1), axis=1)
    itas = np.degrees(np.arctan((means[:, 0] - 50.0) / np.maximum(means[:, 2], _B_FLOOR)))
    bounds = np.array([bound for _, bound in ITA_THRESHOLDS[:-1]])
    classes = (itas[:, None] <= bounds[None, :]).sum(axis=1)
    return SkinTone(
        monk=monk_of_lab(mean),
        monk_probabilities=_shares(orbs, len(MONK_ORBS)),
        ita=ita,
        ita_std=float(itas.std(ddof=1)),
        ita_category=ita_category(ita),
        ita_probabilities=_shares(classes, len(ITA_THRESHOLDS)),
        skin_pixels=count,
        skin_fraction=fraction,
    )


def _shares(indices: npt.NDArray[np.intp], size: int) -> tuple[float, ...]:
    counts = np.bincount(indices, minlength=size)
    return tuple((counts / counts.sum()).tolist())
