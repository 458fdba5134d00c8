"""Perceived-attribute estimators of the bias probes: latency and behaviour on real photos.

python -m bench.bias [--runs N]      or      genseal bench bias --json

`median_ms`/`p90_ms`: `AttributeEstimator.estimate` on scikit-image's astronaut (512², one
face), the analyzer's cache off, so every run detects, aligns, runs age and gender and measures
the skin tone. Beside it: the face analysis alone (the same pass without skin tone) and the skin
tone alone on the found face, at 512² and on a 1024² copy (the region is resampled to a fixed
size, so the cost should not grow with the image).

Behaviour: the astronaut's head relit from 0.2 to 1.4 times its light (in linear light, as a
camera's exposure would) with the Monk orb and ITA read at each step, which shows how much
lighting alone moves the skin tone; and which Monk orbs the RGB + YCrCb skin rule HEIM uses
(Kolkur et al. 2017) accepts, the reason it is not the pixel rule here.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from bench._harness import measure, report
from safety import AttributeEstimator, FaceAnalyzer
from safety.bias import MONK_ORBS, estimate_skin_tone

_HEAD = (150, 30, 300, 210)  # the astronaut's head in the 512² photo


def _astronaut() -> Image.Image:
    from skimage import data

    return Image.fromarray(data.astronaut()).convert("RGB")


def _relit(image: Image.Image, gain: float) -> Image.Image:
    pixels = np.asarray(image).astype(np.float64) / 255.0
    left, top, right, bottom = _HEAD
    part = pixels[top:bottom, left:right]
    linear = np.where(part <= 0.04045, part / 12.92, ((part + 0.055) / 1.055) ** 2.4)
    linear = np.clip(linear * gain, 0.0, 1.0)
    part[...] = np.where(linear <= 0.0031308, linear * 12.92, 1.055 * linear ** (1 / 2.4) - 0.055)
    return Image.fromarray((pixels * 255).round().astype(np.uint8))


def _heim_rule(r: int, g: int, b: int) -> bool:
    """The pixel rule of HELM's SkinToneMetric (Kolkur et al. 2017), on one sRGB colour."""
    y = 0.299 * r + 0.587 * g + 0.114 * b
    cr = (r - y) * 0.713 + 128
    cb = (b - y) * 0.564 + 128
    return (
        r > 95
        and g > 40
        and b > 20
        and r > g
        and r > b
        and abs(r - g) > 15
        and cr > 135
        and cb > 85
        and y > 80
        and cr <= 1.5862 * cb + 20
        and cr >= 0.3448 * cb + 76.2069
        and cr >= -4.5652 * cb + 234.5652
        and cr <= -1.15 * cb + 301.75
        and cr <= -2.2857 * cb + 432.85
    )


def _lighting(estimator: AttributeEstimator) -> list[dict[str, Any]]:
    rows = []
    for gain in (0.2, 0.35, 0.5, 0.7, 1.0, 1.2, 1.4):
        subject = estimator.estimate(_relit(_astronaut(), gain)).subject
        skin = subject.skin if subject is not None else None
        rows.append(
            {
                "light": gain,
                "monk": skin.monk if skin else None,
                "ita": round(skin.ita, 1) if skin else None,
                "ita_std": round(skin.ita_std, 2) if skin else None,
                "ita_category": skin.ita_category if skin else None,
                "age_band": subject.age_band if subject else None,
                "gender": subject.gender if subject else None,
            }
        )
    return rows


def run(runs: int = 20) -> dict[str, Any]:
    image = _astronaut()
    cold = FaceAnalyzer(cache_size=0)
    cold.load()
    estimator = AttributeEstimator(cold)
    stats = measure(lambda: estimator.estimate(image), runs)
    faces_only = measure(lambda: cold.analyze(image, attributes=True), runs)
    [face] = cold.analyze(image).faces
    skin_only = measure(lambda: estimate_skin_tone(image, face.box, face.landmarks), runs * 5)
    large = image.resize((1024, 1024), Image.Resampling.LANCZOS)
    [large_face] = cold.analyze(large).faces
    skin_large = measure(
        lambda: estimate_skin_tone(large, large_face.box, large_face.landmarks), runs * 5
    )
    subject = estimator.estimate(image).subject
    orbs = [int(code[i : i + 2], 16) for code in MONK_ORBS for i in (0, 2, 4)]
    return report(
        "bias",
        stats,
        image="skimage astronaut 512x512, one face",
        pipeline="AttributeEstimator.estimate: detect + landmarks + age/gender + skin tone, "
        "cache off",
        face_analysis_median_ms=faces_only["median_ms"],
        face_analysis_p90_ms=faces_only["p90_ms"],
        skin_tone_median_ms=skin_only["median_ms"],
        skin_tone_p90_ms=skin_only["p90_ms"],
        skin_tone_runs=skin_only["runs"],
        skin_tone_1024_median_ms=skin_large["median_ms"],
        skin_tone_1024_p90_ms=skin_large["p90_ms"],
        astronaut=subject.to_json() if subject is not None else None,
        lighting=_lighting(estimator),
        heim_rule_accepts_orbs=[
            index + 1 for index in range(10) if _heim_rule(*orbs[3 * index : 3 * index + 3])
        ],
        models=estimator.models,
        version=estimator.version,
    )


if __name__ == "__main__":
    from bench._cli import main

    main(run)
