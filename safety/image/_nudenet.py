"""Sexual-content image check by body-part detection: NudeNet's YOLOv8n 320 detector.

An optional extra (`pip install 'genseal[nudenet]'`): NudeNet is AGPL-3.0 (its wheel's
metadata says MIT; the licence file it ships is the AGPL), so it is never a default dependency
and is imported only when the check runs. Not installed, the check reports NOT_CHECKED naming
the install command; installed but failing, ERROR.

Where open_nsfw gives one score for the whole image, NudeNet says *where*: up to 18 classes of
exposed and covered body parts with boxes. The check flags the sexual category when an exposed
class in `exposed_classes` is detected at `threshold` or above, and records every detection.
The detector itself drops boxes scoring below 0.2, so lower thresholds act as 0.2.

We hand the detector an RGB array. Its reader treats an array as RGB(A) but a path or encoded
bytes as OpenCV's BGR and then applies the same channel swap to both, so only arrays reach the
network in the RGB order it was trained on (the face on skimage's astronaut scores 0.81 from
the array, 0.72 from its PNG bytes).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from genseal.errors import CheckError

from .._findings import Category, CheckState, Finding, Stage
from .._lazy import Lazy

if TYPE_CHECKING:
    from ..policy import Policy

__all__ = ["NudeNetCheck"]

_CODE_VERSION = "1"
_INSTALL = "pip install 'genseal[nudenet]'"
_MODEL_FILE = "320n.onnx"

# The detector's label set (nudenet 3.4), in its output order.
CLASSES: tuple[str, ...] = (
    "FEMALE_GENITALIA_COVERED",
    "FACE_FEMALE",
    "BUTTOCKS_EXPOSED",
    "FEMALE_BREAST_EXPOSED",
    "FEMALE_GENITALIA_EXPOSED",
    "MALE_BREAST_EXPOSED",
    "ANUS_EXPOSED",
    "FEET_EXPOSED",
    "BELLY_COVERED",
    "FEET_COVERED",
    "ARMPITS_COVERED",
    "ARMPITS_EXPOSED",
    "FACE_MALE",
    "BELLY_EXPOSED",
    "MALE_GENITALIA_EXPOSED",
    "ANUS_COVERED",
    "FEMALE_BREAST_COVERED",
    "BUTTOCKS_COVERED",
)

# Exposed parts that make an image sexual content; exposed feet, bellies, armpits and male
# chests are everyday (beach, sport) and stay in the details without flagging.
SEXUAL_EXPOSED: frozenset[str] = frozenset(
    {
        "FEMALE_GENITALIA_EXPOSED",
        "MALE_GENITALIA_EXPOSED",
        "FEMALE_BREAST_EXPOSED",
        "BUTTOCKS_EXPOSED",
        "ANUS_EXPOSED",
    }
)


class NudeNetCheck:
    """Flags sexual content when an exposed body part is detected at `threshold` or above.

    The detector (an onnxruntime session inside NudeNet) is created on first use (or by
    `load()`), once, under a lock, and shared by all threads. A failed load is retried on the
    next call, never remembered as clean.
    """

    name = "nudenet"
    categories: tuple[Category, ...] = (Category.SEXUAL,)
    CLASSES = CLASSES
    SEXUAL_EXPOSED = SEXUAL_EXPOSED

    def __init__(
        self,
        threshold: float = 0.5,
        *,
        exposed_classes: Iterable[str] | None = None,
        model_path: str | Path | None = None,
    ) -> None:
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must be within [0, 1], got {threshold}")
        chosen = frozenset(SEXUAL_EXPOSED if exposed_classes is None else exposed_classes)
        unknown = sorted(chosen - set(CLASSES))
        if unknown or not chosen:
            raise ValueError(
                f"exposed_classes must be non-empty NudeNet classes; unknown {unknown}"
            )
        self.threshold = threshold
        self.exposed_classes = chosen
        self._model_path = None if model_path is None else Path(model_path)
        self._detector: Lazy[Any] = Lazy(self._build)
        self.model_sha256 = "unknown"
        self._package_version = _package_version()

    @classmethod
    def from_policy(cls, policy: Policy, **kwargs: Any) -> NudeNetCheck:
        """The check at the policy's `thresholds.nudenet` (0.5 when the policy sets none)."""
        return cls(threshold=policy.thresholds.get("nudenet", 0.5), **kwargs)

    @staticmethod
    def available() -> bool:
        """Whether the `nudenet` package can be imported here (without importing it)."""
        from importlib.util import find_spec

        return find_spec("nudenet") is not None

    @property
    def version(self) -> str:
        return (
            f"{_CODE_VERSION}+nudenet.{self._package_version}+sha256.{self.model_sha256[:12]}"
            f"+exposed.{_digest(sorted(self.exposed_classes))}"
        )

    def load(self) -> None:
        """Load the detector now; `CheckError` (saying what to install) if it cannot."""
        self._detector.get()

    def _build(self) -> Any:
        try:
            import nudenet
        except ImportError as exc:
            raise _NotInstalled(
                f"NudeNet is not installed ({exc}); it is an optional extra (AGPL-3.0)",
                hint=_INSTALL,
            ) from exc
        path = self._model_path or Path(nudenet.__file__).with_name(_MODEL_FILE)
        try:
            detector = nudenet.NudeDetector(model_path=str(path))
            sha = _sha256(path)
        except Exception as exc:
            raise CheckError(f"NudeNet model could not be loaded from {path}: {exc}") from exc
        self.model_sha256 = sha
        return detector

    def detect(self, image: Image.Image) -> list[dict[str, Any]]:
        """Every detection: {"class", "score", "box": [x, y, w, h]} in image pixels."""
        detector = self._detector.get()
        rgb = np.ascontiguousarray(np.asarray(image.convert("RGB"), dtype=np.uint8))
        detections = detector.detect(rgb)
        result = []
        for d in detections:
            score = float(d["score"])
            if not 0.0 <= score <= 1.0:  # NaN fails both comparisons too
                raise CheckError(f"NudeNet returned an invalid score: {score!r}")
            box = [int(v) for v in d["box"]]
            result.append({"class": str(d["class"]), "score": score, "box": box})
        return sorted(result, key=lambda d: -d["score"])

    def check(self, image: Image.Image, stage: Stage, image_index: int = 0) -> list[Finding]:
        start = time.perf_counter()
        try:
            detections = self.detect(image)
        except _NotInstalled as exc:
            return [
                self._finding(stage, image_index, start, CheckState.NOT_CHECKED, reason=str(exc))
            ]
        except Exception as exc:
            reason = f"NudeNet could not run: {type(exc).__name__}: {exc}"
            return [self._finding(stage, image_index, start, CheckState.ERROR, reason=reason)]
        exposed = [d for d in detections if d["class"] in self.exposed_classes]
        score = max((d["score"] for d in exposed), default=0.0)
        hits = [d for d in exposed if d["score"] >= self.threshold]
        flagged = bool(hits)
        return [
            self._finding(
                stage,
                image_index,
                start,
                CheckState.FLAGGED if flagged else CheckState.CLEAN,
                score=score,
                reason=(
                    "exposed "
                    + ", ".join(sorted({d["class"] for d in hits}))
                    + f" detected at or above {self.threshold}"
                    if flagged
                    else None
                ),
                details={
                    "exposed": sorted({d["class"] for d in hits}),
                    "detections": detections,
                },
            )
        ]

    def _finding(
        self,
        stage: Stage,
        image_index: int,
        start: float,
        state: CheckState,
        *,
        score: float | None = None,
        reason: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> Finding:
        return Finding(
            check=self.name,
            check_version=self.version,
            category=Category.SEXUAL,
            stage=stage,
            state=state,
            score=score,
            threshold=self.threshold,
            reason=reason,
            image_index=image_index,
            latency_ms=(time.perf_counter() - start) * 1000.0,
            details={"model_sha256": self.model_sha256, **(details or {})},
        )


class _NotInstalled(CheckError):
    """The extra is missing: nothing here could check, which is NOT_CHECKED, not ERROR."""


def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("nudenet")
    except PackageNotFoundError:
        return "missing"


def _digest(values: list[str]) -> str:
    return hashlib.sha256("\n".join(values).encode()).hexdigest()[:8]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
