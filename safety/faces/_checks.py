"""Face checks: minors, real people in input photos, protected identities, output likeness.

All four share one `FaceAnalyzer` (by default the process-wide one), so screening an image
runs detection once and descriptors only for the checks that need them and only when there
is something to compare them with.

State rules. A check reports CLEAN, with the reason, whenever the harm it looks for cannot be
present: no face in the image, no enrolled identity, no input image to resemble, or a stage the
check does not apply to (the real-person check judges the caller's input photo; the likeness
check judges a generated output against that input). It raises when it could not look (models
missing, registry unreachable), and the `Screener` reports ERROR, which policies block on.

Scores follow the finding convention, higher is riskier and `score >= threshold` flags:
distances become similarities (`1 - distance`, threshold `1 - max distance`); the raw distance
and the policy's distance threshold are in `details`.

What findings carry: boxes, detector confidences, perceived ages and genders, distances —
never a descriptor. A protected identity's name appears only in a flagged finding; a clean one
carries the closest distance alone, because clean findings travel in the manifests of released
images.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from PIL import Image

from genseal.errors import CheckError, ConfigError

from .._findings import Category, CheckState, Finding, Stage
from ._analysis import Face, FaceAnalyzer, descriptor_distance, face_analyzer
from ._registry import FaceRegistry

if TYPE_CHECKING:
    from ..policy import Policy

__all__ = [
    "DEFAULT_IDENTITY_MATCH_DISTANCE",
    "DEFAULT_LIKENESS_DISTANCE",
    "DEFAULT_MINOR_AGE_MARGIN",
    "LikenessCheck",
    "MinorsFaceCheck",
    "ProtectedIdentityCheck",
    "RealPersonCheck",
]

_CODE_VERSION = "1"
ADULT_AGE = 18.0
# Age estimators err by years (this one's 10th-90th percentile range for the skimage astronaut
# spans 26-50): flag faces that look younger than 18 + margin.
DEFAULT_MINOR_AGE_MARGIN = 4.0
# dlib's documented same-person bar for its ResNet descriptors.
DEFAULT_IDENTITY_MATCH_DISTANCE = 0.6
DEFAULT_LIKENESS_DISTANCE = 0.6


def _distance_threshold(value: float, name: str) -> float:
    if not 0.0 < value <= 2.0:
        raise ConfigError(f"thresholds.{name} must be within (0, 2], got {value}")
    return float(value)


class _FaceCheck:
    """What the face checks share: the analyzer, the version and building findings."""

    name: str
    categories: tuple[Category, ...]
    _uses: tuple[str, ...] = ("detector",)

    def __init__(self, analyzer: FaceAnalyzer | None) -> None:
        self.analyzer = analyzer if analyzer is not None else face_analyzer()
        self.version = f"{self.name}.{_CODE_VERSION}+{self.analyzer.version}"

    def load(self) -> None:
        """Load the face models now (e.g. at service start); raises `CheckError` if they cannot."""
        self.analyzer.load()

    def _finding(
        self,
        stage: Stage,
        image_index: int,
        start: float,
        *,
        state: CheckState,
        reason: str,
        score: float | None = None,
        threshold: float | None = None,
        details: dict[str, Any] | None = None,
        ran_models: bool = True,
    ) -> Finding:
        info = dict(details or {})
        if ran_models:
            info["models"] = {part: self.analyzer.models[part] for part in self._uses}
        return Finding(
            check=self.name,
            check_version=self.version,
            category=self.categories[0],
            stage=stage,
            state=state,
            score=score,
            threshold=threshold,
            reason=reason,
            image_index=image_index,
            latency_ms=(time.perf_counter() - start) * 1000.0,
            details=info,
        )

    def _no_face(
        self,
        stage: Stage,
        image_index: int,
        start: float,
        details: dict[str, Any],
        *,
        threshold: float | None = None,
        where: str = "",
    ) -> list[Finding]:
        """The CLEAN finding, at score 0, for an image (`where`) in which no face was found."""
        return [
            self._finding(
                stage,
                image_index,
                start,
                state=CheckState.CLEAN,
                score=0.0,
                threshold=threshold,
                reason=f"no face found{where}",
                details=details,
            )
        ]


def _uncovered(detected: int, analysed: int) -> str:
    return "" if detected <= analysed else f" ({detected - analysed} smaller faces not analysed)"


class MinorsFaceCheck(_FaceCheck):
    """Flags an image with a face whose perceived age is under 18 + `margin` (category minors).

    The score is the age model's probability of an age under 18, for the face where it is
    highest; the estimated ages and their 10th-90th percentile ranges are in `details`.
    """

    name = "face_age"
    categories: tuple[Category, ...] = (Category.MINORS,)
    _uses = ("detector", "landmarks", "age_gender")

    def __init__(
        self, margin: float = DEFAULT_MINOR_AGE_MARGIN, *, analyzer: FaceAnalyzer | None = None
    ) -> None:
        if not 0.0 <= margin <= 30.0:
            raise ConfigError(f"thresholds.minor_age_margin must be within [0, 30], got {margin}")
        self.margin = float(margin)
        super().__init__(analyzer)

    @classmethod
    def from_policy(cls, policy: Policy, **kwargs: Any) -> MinorsFaceCheck:
        """The check at the policy's `thresholds.minor_age_margin` (4 years when unset)."""
        return cls(
            margin=policy.thresholds.get("minor_age_margin", DEFAULT_MINOR_AGE_MARGIN), **kwargs
        )

    @property
    def flag_below(self) -> float:
        return ADULT_AGE + self.margin

    def check(self, image: Image.Image, stage: Stage, image_index: int = 0) -> list[Finding]:
        start = time.perf_counter()
        analysis = self.analyzer.analyze(image, attributes=True)
        details: dict[str, Any] = {
            "face_count": analysis.detected,
            "flag_below_age": self.flag_below,
            "faces": [face.describe() for face in analysis.faces],
        }
        if not analysis.faces:
            return self._no_face(stage, image_index, start, details)
        faces = sorted(analysis.faces, key=_years)
        youngest = faces[0]
        assert youngest.age is not None  # analysed with attributes
        young = [f for f in faces if _years(f) < self.flag_below]
        score = max(f.age.p_under_18 for f in faces if f.age is not None)
        looks = (
            f"looks {youngest.age.years:.0f} (range {youngest.age.low:.0f}-{youngest.age.high:.0f})"
        )
        rest = _uncovered(analysis.detected, len(analysis.faces))
        details["youngest_age"] = round(youngest.age.years, 1)
        if young:
            reason = (
                f"{len(young)} of {len(faces)} faces look younger than {self.flag_below:g} "
                f"(18 + {self.margin:g} year margin); the youngest {looks}{rest}"
            )
            state = CheckState.FLAGGED
        else:
            reason = (
                f"the youngest-looking of {len(faces)} faces {looks}, at or above "
                f"{self.flag_below:g}{rest}"
            )
            state = CheckState.CLEAN
        return [
            self._finding(
                stage, image_index, start, state=state, score=score, reason=reason, details=details
            )
        ]


def _years(face: Face) -> float:
    return face.age.years if face.age is not None else float("inf")


class RealPersonCheck(_FaceCheck):
    """At the input stage, flags a photo showing a face (category real_person).

    Editing a photo of a real person needs that person's consent (policy rule
    `require-consent-real-person`). Any detected face counts: there is no reliable
    photo-versus-drawing classifier here, so a drawn face errs toward asking for consent.
    At the output stage the check does not apply (CLEAN): a generated face is compared with
    the input by `LikenessCheck` and with enrolled people by `ProtectedIdentityCheck`.
    """

    name = "real_person"
    categories: tuple[Category, ...] = (Category.REAL_PERSON,)

    def __init__(self, *, analyzer: FaceAnalyzer | None = None) -> None:
        super().__init__(analyzer)

    @classmethod
    def from_policy(cls, policy: Policy, **kwargs: Any) -> RealPersonCheck:
        """The check (it reads no threshold; the detector's own bar applies)."""
        del policy
        return cls(**kwargs)

    def check(self, image: Image.Image, stage: Stage, image_index: int = 0) -> list[Finding]:
        start = time.perf_counter()
        if stage is not Stage.INPUT:
            return [
                self._finding(
                    stage,
                    image_index,
                    start,
                    state=CheckState.CLEAN,
                    reason=(
                        f"not applicable at stage {stage.value}: this check judges input photos; "
                        "generated faces are judged by likeness and protected_identity"
                    ),
                    details={"applies_to": Stage.INPUT.value},
                    ran_models=False,
                )
            ]
        analysis = self.analyzer.analyze(image)
        threshold = self.analyzer.min_confidence
        details: dict[str, Any] = {
            "face_count": analysis.detected,
            "faces": [{"box": list(f.box), "confidence": f.confidence} for f in analysis.faces],
        }
        if not analysis.faces:
            return self._no_face(stage, image_index, start, details, threshold=threshold)
        count = analysis.detected
        return [
            self._finding(
                stage,
                image_index,
                start,
                state=CheckState.FLAGGED,
                score=max(f.confidence for f in analysis.faces),
                threshold=threshold,
                reason=(
                    f"{count} face{'s' if count != 1 else ''} in the input image: it may show "
                    "a real person, whose consent an edit needs"
                ),
                details=details,
            )
        ]


class ProtectedIdentityCheck(_FaceCheck):
    """Flags a face whose descriptor is within `distance` of an enrolled protected identity
    (category protected_identity), at any stage."""

    name = "protected_identity"
    categories: tuple[Category, ...] = (Category.PROTECTED_IDENTITY,)
    _uses = ("detector", "landmarks", "descriptor")

    def __init__(
        self,
        registry: FaceRegistry,
        distance: float = DEFAULT_IDENTITY_MATCH_DISTANCE,
        *,
        analyzer: FaceAnalyzer | None = None,
    ) -> None:
        self.registry = registry
        self.distance = _distance_threshold(distance, "identity_match_distance")
        super().__init__(analyzer)

    @classmethod
    def from_policy(
        cls, policy: Policy, registry: FaceRegistry, **kwargs: Any
    ) -> ProtectedIdentityCheck:
        """The check at the policy's `thresholds.identity_match_distance` (0.6 when unset)."""
        distance = policy.thresholds.get("identity_match_distance", DEFAULT_IDENTITY_MATCH_DISTANCE)
        return cls(registry, distance, **kwargs)

    def check(self, image: Image.Image, stage: Stage, image_index: int = 0) -> list[Finding]:
        start = time.perf_counter()
        # First, so an unreachable registry is an error even for an image without faces.
        snapshot = self.registry.snapshot()
        threshold = 1.0 - self.distance
        model = self.analyzer.descriptor_model
        base: dict[str, Any] = {
            "enrolled_identities": snapshot.identities,
            "max_distance": self.distance,
        }
        if not snapshot.names:
            return [
                self._finding(
                    stage,
                    image_index,
                    start,
                    state=CheckState.CLEAN,
                    reason="no protected identities are enrolled",
                    details=base,
                    ran_models=False,
                )
            ]
        stale = len(snapshot.names) - snapshot.usable(model)
        if stale:
            base["stale_descriptors"] = stale  # enrolled with another model: not compared
        if stale == len(snapshot.names):
            raise CheckError(
                "the enrolled protected identities were made with another face model "
                f"(this one is {model})",
                hint="re-enrol them: genseal faces enroll NAME PHOTO...",
            )
        analysis = self.analyzer.analyze(image, descriptors=True)
        base["face_count"] = analysis.detected
        if not analysis.faces:
            return self._no_face(stage, image_index, start, base, threshold=threshold)
        hits: list[dict[str, Any]] = []
        best = float("inf")
        for index, face in enumerate(analysis.faces):
            assert face.descriptor is not None  # analysed with descriptors
            matches = snapshot.match(face.descriptor, model=model)
            if not matches:
                continue
            best = min(best, matches[0].distance)
            hits += [
                {"face": index, "box": list(face.box), "name": m.name, "distance": m.distance}
                for m in matches
                if m.distance <= self.distance
            ]
        score = max(0.0, 1.0 - best)
        base["best_distance"] = round(best, 4)
        rest = _uncovered(analysis.detected, len(analysis.faces))
        if not hits:
            return [
                self._finding(
                    stage,
                    image_index,
                    start,
                    state=CheckState.CLEAN,
                    score=score,
                    threshold=threshold,
                    reason=(
                        f"no face within {self.distance:g} of the {snapshot.identities} enrolled "
                        f"protected identities (closest {best:.3f}){rest}"
                    ),
                    details=base,
                )
            ]
        hits.sort(key=lambda h: h["distance"])
        top = hits[0]
        base["matches"] = hits
        base["matched"] = sorted({h["name"] for h in hits})
        return [
            self._finding(
                stage,
                image_index,
                start,
                state=CheckState.FLAGGED,
                score=score,
                threshold=threshold,
                reason=(
                    f"face {top['face'] + 1} matches protected identity {top['name']!r} "
                    f"(distance {top['distance']:.3f} <= {self.distance:g})"
                ),
                details=base,
            )
        ]


class LikenessCheck(_FaceCheck):
    """At the output stage, how close the generated faces are to the input image's faces
    (category real_person): flagged when the closest pair is within `distance`, i.e. the output
    still shows the input person. A photorealistic copy reads close; a stylised figurine of
    the same person reads farther."""

    name = "likeness"
    categories: tuple[Category, ...] = (Category.REAL_PERSON,)
    accepts_reference = True
    _uses = ("detector", "landmarks", "descriptor")

    def __init__(
        self, distance: float = DEFAULT_LIKENESS_DISTANCE, *, analyzer: FaceAnalyzer | None = None
    ) -> None:
        self.distance = _distance_threshold(distance, "likeness_distance")
        super().__init__(analyzer)

    @classmethod
    def from_policy(cls, policy: Policy, **kwargs: Any) -> LikenessCheck:
        """The check at the policy's `thresholds.likeness_distance` (0.6 when unset)."""
        return cls(policy.thresholds.get("likeness_distance", DEFAULT_LIKENESS_DISTANCE), **kwargs)

    def check(
        self,
        image: Image.Image,
        stage: Stage,
        image_index: int = 0,
        reference: Image.Image | None = None,
    ) -> list[Finding]:
        start = time.perf_counter()
        threshold = 1.0 - self.distance
        details: dict[str, Any] = {"max_distance": self.distance}

        def clean(reason: str, *, ran: bool = True, score: float | None = None) -> list[Finding]:
            return [
                self._finding(
                    stage,
                    image_index,
                    start,
                    state=CheckState.CLEAN,
                    score=score,
                    threshold=threshold if ran else None,
                    reason=reason,
                    details=details,
                    ran_models=ran,
                )
            ]

        if stage is not Stage.OUTPUT:
            return clean(
                f"not applicable at stage {stage.value}: likeness compares a generated image "
                "with the input image",
                ran=False,
            )
        if reference is None:
            return clean("no input image to compare with", ran=False)
        # Detection first on both: descriptors (the expensive part) only when both have faces.
        output = self.analyzer.analyze(image)
        details["output_faces"] = output.detected
        if not output.faces:
            return self._no_face(
                stage,
                image_index,
                start,
                details,
                threshold=threshold,
                where=" in the output image",
            )
        source = self.analyzer.analyze(reference)
        details["input_faces"] = source.detected
        if not source.faces:
            return self._no_face(
                stage, image_index, start, details, threshold=threshold, where=" in the input image"
            )
        output = self.analyzer.analyze(image, descriptors=True)
        source = self.analyzer.analyze(reference, descriptors=True)
        best, out_i, in_i = min(
            (descriptor_distance(o.descriptor, s.descriptor), i, j)  # type: ignore[arg-type]
            for i, o in enumerate(output.faces)
            for j, s in enumerate(source.faces)
        )
        details.update(
            distance=round(best, 4),
            output_face={"index": out_i, "box": list(output.faces[out_i].box)},
            input_face={"index": in_i, "box": list(source.faces[in_i].box)},
        )
        score = max(0.0, 1.0 - best)
        if best > self.distance:
            return clean(
                f"the closest output and input faces are {best:.3f} apart, farther than "
                f"{self.distance:g}: not the input person's likeness",
                score=score,
            )
        return [
            self._finding(
                stage,
                image_index,
                start,
                state=CheckState.FLAGGED,
                score=score,
                threshold=threshold,
                reason=(
                    f"output face {out_i + 1} looks like input face {in_i + 1} (distance "
                    f"{best:.3f} <= {self.distance:g}): the generated image keeps the input "
                    "person's likeness"
                ),
                details=details,
            )
        ]
