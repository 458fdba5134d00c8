"""Face analysis on the real photos available offline: detection, identity, latency.

python -m bench.faces [--runs N]      or      genseal bench faces --json

Photos (all from scikit-image): the astronaut and the cameraman (512², one person each); the
100 faces of `lfw_subset` (25x25 grey tight crops of randomly chosen LFW people, upsampled to
150 px on a grey margin so a detector sees a head, not a crop); for false detections the 100
LFW background patches (same treatment) and the skimage photos without people. LFW faces are
random draws, so two of them may show the same person: the false-match rate is an upper bound
and the closest pairs are listed to look at.

Transforms are what users do to photos: JPEG, resize, crop, brightness, small rotations,
mirroring. `hog` is dlib's HOG detector (upsampled once, at the same detection scale) as the
baseline the detector was chosen against. `median_ms`/`p90_ms`: the default face pipeline
(detection, landmarks, age and gender; no descriptor) on a 512² photo, cache off.
"""

from __future__ import annotations

import io
import itertools
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageEnhance, ImageOps

from bench._harness import measure, report
from safety import (
    FaceAnalyzer,
    FaceRegistry,
    LikenessCheck,
    MinorsFaceCheck,
    ProtectedIdentityCheck,
    RealPersonCheck,
    Screener,
    Stage,
    descriptor_distance,
)

_SAME_PERSON = 0.6
_NO_PEOPLE = ("coffee", "chelsea", "rocket", "horse", "coins", "page", "text", "moon",
              "hubble_deep_field", "immunohistochemistry", "retina", "brick", "grass", "gravel",
              "cell", "logo", "colorwheel", "clock")  # fmt: skip


def _photo(name: str) -> Image.Image:
    from skimage import data

    return Image.fromarray(getattr(data, name)()).convert("RGB")


def _lfw(index: int) -> Image.Image:
    from skimage import data

    pixels = data.lfw_subset()[index]
    if pixels.dtype != np.uint8:
        pixels = (pixels * 255).round().astype(np.uint8)
    face = Image.fromarray(pixels).convert("RGB").resize((150, 150), Image.Resampling.BICUBIC)
    return ImageOps.expand(face, border=75, fill=(128, 128, 128))


def _jpeg(image: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def _crop(image: Image.Image, fraction: float) -> Image.Image:
    dx, dy = int(image.width * fraction / 2), int(image.height * fraction / 2)
    return image.crop((dx, dy, image.width - dx, image.height - dy))


def _scale(image: Image.Image, factor: float) -> Image.Image:
    size = (round(image.width * factor), round(image.height * factor))
    return image.resize(size, Image.Resampling.LANCZOS)


TRANSFORMS: dict[str, Callable[[Image.Image], Image.Image]] = {
    "jpeg 75": lambda im: _jpeg(im, 75),
    "jpeg 50": lambda im: _jpeg(im, 50),
    "resize 0.5": lambda im: _scale(im, 0.5),
    "resize 1.5": lambda im: _scale(im, 1.5),
    "crop 10%": lambda im: _crop(im, 0.10),
    "brightness 0.7": lambda im: ImageEnhance.Brightness(im).enhance(0.7),
    "brightness 1.3": lambda im: ImageEnhance.Brightness(im).enhance(1.3),
    "rotate +10": lambda im: im.rotate(10, resample=Image.Resampling.BILINEAR),
    "rotate -10": lambda im: im.rotate(-10, resample=Image.Resampling.BILINEAR),
    "mirror": ImageOps.mirror,
}


class _Hog:
    """dlib's HOG detector at the analyzer's detection scale (the baseline)."""

    def __init__(self, detect_size: int) -> None:
        import dlib

        self._detector = dlib.get_frontal_face_detector()
        self._size = detect_size

    def count(self, image: Image.Image) -> int:
        shrink = min(1.0, self._size / float(np.sqrt(image.width * image.height)))
        small = _scale(image, shrink) if shrink < 1.0 else image
        return len(self._detector(np.asarray(small), 1))


def _rate(hits: int, total: int) -> dict[str, Any]:
    return {"found": hits, "of": total, "rate": round(hits / total, 3) if total else None}


def _detection(analyzer: FaceAnalyzer, hog: _Hog, people: dict[str, Image.Image]) -> dict[str, Any]:
    ours = sum(1 for im in people.values() if analyzer.analyze(im).faces)
    theirs = sum(1 for im in people.values() if hog.count(im))
    probe = {k: v for k, v in people.items() if not k.startswith("lfw") or int(k[4:]) % 5 == 0}
    transforms: dict[str, Any] = {}
    for label, transform in TRANSFORMS.items():
        changed = {key: transform(im) for key, im in probe.items()}
        ours_missed = [k for k, im in changed.items() if not analyzer.analyze(im).faces]
        hog_missed = [k for k, im in changed.items() if not hog.count(im)]
        transforms[label] = {
            "yuface": {**_rate(len(probe) - len(ours_missed), len(probe)), "missed": ours_missed},
            "hog": {**_rate(len(probe) - len(hog_missed), len(probe)), "missed": hog_missed},
        }
    backgrounds = [_lfw(i) for i in range(100, 200)]
    photos = [_photo(n) for n in _NO_PEOPLE]
    return {
        "faces": {"yuface": _rate(ours, len(people)), "hog": _rate(theirs, len(people))},
        "faces_per_photo": {
            "astronaut": analyzer.analyze(people["astronaut"]).detected,
            "camera": analyzer.analyze(people["camera"]).detected,
            "hog_camera": hog.count(people["camera"]),
        },
        "under_transforms": transforms,
        "transform_probe": f"astronaut, camera and {len(probe) - 2} LFW faces",
        "false_detections": {
            "lfw_backgrounds": sum(1 for im in backgrounds if analyzer.analyze(im).faces),
            "skimage_photos_without_people": sum(1 for im in photos if analyzer.analyze(im).faces),
            "of": len(backgrounds) + len(photos),
            "hog": sum(1 for im in [*backgrounds, *photos] if hog.count(im)),
        },
    }


def _identity(analyzer: FaceAnalyzer, people: dict[str, Image.Image]) -> dict[str, Any]:
    originals: dict[str, np.ndarray] = {}
    for key, image in people.items():
        analysis = analyzer.analyze(image, descriptors=True)
        if analysis.faces and analysis.faces[0].descriptor is not None:
            originals[key] = analysis.faces[0].descriptor
    probe = [k for k in originals if not k.startswith("lfw") or int(k[4:]) % 5 == 0]
    same: dict[str, Any] = {}
    all_distances: list[float] = []
    for label, transform in TRANSFORMS.items():
        distances = []
        for key in probe:
            faces = analyzer.analyze(transform(people[key]), descriptors=True).faces
            if faces and faces[0].descriptor is not None:
                distances.append(descriptor_distance(originals[key], faces[0].descriptor))
        all_distances += distances
        matched = sum(1 for d in distances if d <= _SAME_PERSON)
        same[label] = {
            **_rate(matched, len(probe)),
            "median_distance": round(statistics.median(distances), 3) if distances else None,
            "max_distance": round(max(distances), 3) if distances else None,
        }
    pairs = [
        (descriptor_distance(originals[a], originals[b]), a, b)
        for a, b in itertools.combinations(sorted(originals), 2)
    ]
    false = [p for p in pairs if p[0] <= _SAME_PERSON]
    trade_off = {
        f"{t:.2f}": {
            "same_person_rate": round(
                sum(1 for d in all_distances if d <= t) / len(all_distances), 3
            ),
            "false_match_rate": round(sum(1 for p in pairs if p[0] <= t) / len(pairs), 4),
        }
        for t in (0.40, 0.45, 0.50, 0.55, 0.60)
    }
    by_size: dict[str, Any] = {}
    for key in ("astronaut", "camera"):
        for factor in (0.5, 0.35, 0.25):
            faces = analyzer.analyze(_scale(people[key], factor), descriptors=True).faces
            face = faces[0] if faces else None
            by_size[f"{key} x{factor}"] = {
                "face_px": face.box[2] - face.box[0] if face else None,
                "distance": (
                    round(descriptor_distance(originals[key], face.descriptor), 3)
                    if face is not None and face.descriptor is not None
                    else None
                ),
            }
    return {
        "threshold": _SAME_PERSON,
        "same_person_by_face_size": by_size,
        "same_person_under_transforms": same,
        "same_person_overall": _rate(
            sum(1 for d in all_distances if d <= _SAME_PERSON), len(probe) * len(TRANSFORMS)
        ),
        "by_threshold": trade_off,
        "different_people": {
            "pairs": len(pairs),
            "false_matches": len(false),
            "false_match_rate": round(len(false) / len(pairs), 4) if pairs else None,
            "median_distance": round(statistics.median(p[0] for p in pairs), 3),
            "closest_pairs": [
                {"a": a, "b": b, "distance": round(d, 3)} for d, a, b in sorted(pairs)[:5]
            ],
            "lfw_only": _rate(
                sum(1 for p in false if p[1].startswith("lfw") and p[2].startswith("lfw")),
                sum(1 for p in pairs if p[1].startswith("lfw") and p[2].startswith("lfw")),
            ),
            "astronaut_vs_camera": round(
                descriptor_distance(originals["astronaut"], originals["camera"]), 3
            ),
        },
    }


def _stage_latency(runs: int) -> dict[str, Any]:
    image = _photo("astronaut")
    cold = FaceAnalyzer(cache_size=0)
    stages: dict[str, list[float]] = {}
    for _ in range(runs):
        timings = cold.analyze(image, descriptors=True, attributes=True).timings_ms
        for stage, ms in timings.items():
            stages.setdefault(stage, []).append(ms)
    return {stage: round(statistics.median(ms), 2) for stage, ms in stages.items()}


def _screening(runs: int) -> dict[str, Any]:
    """The four face checks through the Screener, as the service would run them (one shared,
    caching analyzer), on a 512² input photo and a JPEG copy as the output."""
    source = _photo("astronaut")
    output = _jpeg(source, 85)
    analyzer = FaceAnalyzer()
    registry = FaceRegistry(f"sqlite:///{Path(tempfile.mkdtemp()) / 'genseal.db'}")
    registry.enroll(
        "someone else",
        [analyzer.single_face_descriptor(_photo("camera"), "camera")],
        model=analyzer.descriptor_model,
        sources=["0" * 64],
    )
    screener = Screener(
        [],
        [
            MinorsFaceCheck(analyzer=analyzer),
            RealPersonCheck(analyzer=analyzer),
            ProtectedIdentityCheck(registry, analyzer=analyzer),
            LikenessCheck(analyzer=analyzer),
        ],
    )

    def request() -> None:
        analyzer.clear_cache()  # every request brings new pixels
        screener.screen_images([source], Stage.INPUT)
        screener.screen_images([output], Stage.OUTPUT, reference=source)

    stats = measure(request, max(3, runs // 2), warmup=1)
    analyzer.clear_cache()
    start = time.perf_counter()
    findings = screener.screen_images([source], Stage.INPUT)
    findings += screener.screen_images([output], Stage.OUTPUT, reference=source)
    return {
        "input_and_output_median_ms": stats["median_ms"],
        "input_and_output_p90_ms": stats["p90_ms"],
        "findings": [
            {
                "check": f.check,
                "stage": f.stage.value,
                "state": f.state.value,
                "latency_ms": round(f.latency_ms, 1),
            }
            for f in findings
        ],
        "one_request_ms": round((time.perf_counter() - start) * 1000, 1),
    }


def run(runs: int = 20) -> dict[str, Any]:
    analyzer = FaceAnalyzer()
    analyzer.load()
    image = _photo("astronaut")
    cold = FaceAnalyzer(cache_size=0)
    stats = measure(lambda: cold.analyze(image, attributes=True), runs)
    with_descriptor = measure(lambda: cold.analyze(image, descriptors=True, attributes=True), runs)
    people = {"astronaut": image, "camera": _photo("camera")}
    people.update({f"lfw {i:02d}": _lfw(i) for i in range(100)})
    hog = _Hog(analyzer.detect_size)
    hog_latency = measure(lambda: hog.count(image), runs)
    return report(
        "faces",
        stats,
        image="skimage astronaut 512x512, one face",
        pipeline="detect + landmarks + age/gender (no descriptor), cache off",
        with_descriptor_median_ms=with_descriptor["median_ms"],
        with_descriptor_p90_ms=with_descriptor["p90_ms"],
        stage_median_ms=_stage_latency(runs),
        hog_detect_median_ms=hog_latency["median_ms"],
        screening=_screening(runs),
        detection=_detection(analyzer, hog, people),
        identity=_identity(analyzer, people),
        models=analyzer.models,
        version=analyzer.version,
    )


if __name__ == "__main__":
    from bench._cli import main

    main(run)
