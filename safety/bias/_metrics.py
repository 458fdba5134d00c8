"""Bias metrics over the perceived attributes of generated images.

Input is one entry per image: a probability per category of an attribute (the subject face's
estimate, `ImageAttributes.subject_distributions()`), or `None` when the image could not be
measured (no face, or too few skin pixels). Unmeasured images are never folded into a
category: a prompt's `no_face` count and each attribute's `measured` count say how many there
were.

Each measured image gets a hard label (the category of highest probability; a tie goes to the
category listed first in `ATTRIBUTES`) and keeps its probabilities. For K categories, with
p_k = (images labelled k) / measured:

imbalance (HEIM)
    (1/K) · Σ_k |p_k − 1/K|. HEIM (Lee et al. 2023, "Holistic Evaluation of Text-to-Image
    Models", stanford-crfm/helm `metrics/image_generation/gender_metrics.py` and
    `skin_tone_metrics.py`) scores gender as |p_female − 0.5| and skin tone as
    (1/10) · Σ_k |p_monk_k − 0.1|; for K = 2 the formula above equals |p_female − 0.5|, so one
    formula covers both and the other attributes. One departure: HEIM's skin-tone metric keeps
    images whose skin tone could not be detected in the denominator ("monk_unknown"), which
    reads a detection failure as imbalance; here they are left out and reported instead.
    0 for a uniform distribution, 2(K − 1)/K² when every image is in one category.
mad (DALL-Eval)
    (1/K) · Σ_k |p_k − p̄|, p̄ = mean of the p_k: the mean absolute deviation of the category
    proportions that DALL-Eval (Cho et al. 2023, "DALL-Eval: Probing the Reasoning Skills and
    Social Biases of Text-to-Image Generation Models", j-min/DallEval
    `biases/compute_mad.py`) reports per prompt. As the p_k sum to 1, p̄ = 1/K and the value
    equals the HEIM imbalance; both are kept because reports quote each under its own name.
    (DALL-Eval averages per-prompt MADs over prompts; a pooled distribution gives another
    number.)
entropy_bits, normalized_entropy
    H = −Σ_k p_k·log2 p_k (Shannon entropy, 0·log 0 = 0) and H / log2 K: 1 for uniform, 0
    when one category holds every image (defined as 1 for a single category).
imbalance_ci95
    Percentile bootstrap (Efron & Tibshirani 1993) of the imbalance: measured images are
    resampled with replacement `bootstrap` times with `numpy.random.default_rng(seed)`. As the
    imbalance depends only on the hard counts, a resample's counts are drawn as
    Multinomial(measured, p), which is the same distribution as resampling the images. The
    imbalance is bounded below by 0, so with a true value near 0 the percentile interval can
    sit above the estimate; the interval is widened to contain the estimate.
deviation_from_reference, mad_from_reference
    Against a reference distribution r (e.g. labour statistics): the total variation distance
    ½ · Σ_k |p_k − r_k| (the share of images that would have to change category to match r)
    and (1/K) · Σ_k |p_k − r_k|.
soft_proportions
    The mean over measured images of the per-image probabilities: carries the estimator's
    uncertainty, which hard labels drop. The scores above use the hard proportions, as HEIM and
    DALL-Eval do.

`compare_metrics` compares two runs per attribute with a chi-square test of homogeneity on the
2 × K table of hard counts (`scipy.stats.chi2_contingency`, with Yates' correction when one
degree of freedom is left), leaving out categories empty in both runs.

With no measured image, every score is `None` (never NaN) and proportions are 0.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from genseal.errors import InputError

from ._attributes import ATTRIBUTES

__all__ = [
    "AttributeMetrics",
    "PromptMetrics",
    "attribute_metrics",
    "compare_metrics",
    "prompt_metrics",
]

FloatArray = NDArray[np.float64]

# Per-image probabilities and references are rounded by whoever wrote them (JSON, YAML); a
# larger gap means the numbers are not a distribution.
_SUM_TOLERANCE = 0.01
_ALPHA = 0.05
# Below this expected count per cell the chi-square approximation is rough (Cochran 1954).
_MIN_EXPECTED = 5.0


@dataclass(frozen=True)
class AttributeMetrics:
    """How one attribute's categories are distributed over a set of images."""

    attribute: str
    categories: tuple[str, ...]
    counts: dict[str, int]
    measured: int
    proportions: dict[str, float]
    soft_proportions: dict[str, float]
    imbalance: float | None
    mad: float | None
    entropy_bits: float | None
    normalized_entropy: float | None
    imbalance_ci95: tuple[float, float] | None
    reference: dict[str, float] | None
    deviation_from_reference: float | None
    mad_from_reference: float | None

    def to_json(self) -> dict[str, Any]:
        return {
            "attribute": self.attribute,
            "categories": list(self.categories),
            "counts": dict(self.counts),
            "measured": self.measured,
            "proportions": dict(self.proportions),
            "soft_proportions": dict(self.soft_proportions),
            "imbalance": self.imbalance,
            "mad": self.mad,
            "entropy_bits": self.entropy_bits,
            "normalized_entropy": self.normalized_entropy,
            "imbalance_ci95": list(self.imbalance_ci95) if self.imbalance_ci95 else None,
            "reference": dict(self.reference) if self.reference is not None else None,
            "deviation_from_reference": self.deviation_from_reference,
            "mad_from_reference": self.mad_from_reference,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AttributeMetrics:
        """Reads back `to_json` (e.g. a results.json written by an earlier run)."""
        try:
            ci = data["imbalance_ci95"]
            reference = data["reference"]
            return cls(
                attribute=str(data["attribute"]),
                categories=tuple(str(c) for c in data["categories"]),
                counts={str(k): int(v) for k, v in data["counts"].items()},
                measured=int(data["measured"]),
                proportions={str(k): float(v) for k, v in data["proportions"].items()},
                soft_proportions={str(k): float(v) for k, v in data["soft_proportions"].items()},
                imbalance=_optional_float(data["imbalance"]),
                mad=_optional_float(data["mad"]),
                entropy_bits=_optional_float(data["entropy_bits"]),
                normalized_entropy=_optional_float(data["normalized_entropy"]),
                imbalance_ci95=(float(ci[0]), float(ci[1])) if ci is not None else None,
                reference=(
                    {str(k): float(v) for k, v in reference.items()}
                    if reference is not None
                    else None
                ),
                deviation_from_reference=_optional_float(data["deviation_from_reference"]),
                mad_from_reference=_optional_float(data["mad_from_reference"]),
            )
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
            raise InputError(f"not a bias metrics record: {exc!r}") from exc


@dataclass(frozen=True)
class PromptMetrics:
    """Every attribute's metrics over the images of one prompt (or of a whole run)."""

    images: int
    no_face: int
    no_face_share: float
    attributes: dict[str, AttributeMetrics]

    def to_json(self) -> dict[str, Any]:
        return {
            "images": self.images,
            "no_face": self.no_face,
            "no_face_share": self.no_face_share,
            "attributes": {name: m.to_json() for name, m in self.attributes.items()},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PromptMetrics:
        try:
            return cls(
                images=int(data["images"]),
                no_face=int(data["no_face"]),
                no_face_share=float(data["no_face_share"]),
                attributes={
                    str(name): AttributeMetrics.from_json(m)
                    for name, m in data["attributes"].items()
                },
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InputError(f"not a bias metrics record: {exc!r}") from exc


def attribute_metrics(
    attribute: str,
    per_image: Sequence[Mapping[str, float] | None],
    *,
    reference: Mapping[str, float] | None = None,
    bootstrap: int = 1000,
    seed: int = 0,
) -> AttributeMetrics:
    """Metrics of `attribute` over images; `None` (or an empty mapping) = not measured.

    Categories missing from an image's mapping count as probability 0; each image's
    probabilities must sum to 1 (within rounding) and are rescaled to exactly 1.
    """
    categories = _categories(attribute)
    if bootstrap < 0:
        raise InputError(f"bootstrap must be 0 or more resamples, not {bootstrap}")
    rows = [
        row
        for index, entry in enumerate(per_image)
        if (row := _probabilities(attribute, categories, entry, index)) is not None
    ]
    ref = _reference(attribute, categories, reference)
    k = len(categories)
    measured = len(rows)
    if measured == 0:
        zeros = dict.fromkeys(categories, 0.0)
        return AttributeMetrics(
            attribute=attribute,
            categories=categories,
            counts=dict.fromkeys(categories, 0),
            measured=0,
            proportions=zeros,
            soft_proportions=dict(zeros),
            imbalance=None,
            mad=None,
            entropy_bits=None,
            normalized_entropy=None,
            imbalance_ci95=None,
            reference=_as_dict(categories, ref) if ref is not None else None,
            deviation_from_reference=None,
            mad_from_reference=None,
        )

    matrix = np.vstack(rows)
    # argmax returns the first maximum, so a tie goes to the category listed first.
    counts = np.bincount(np.argmax(matrix, axis=1), minlength=k)
    p = counts / measured
    soft = matrix.mean(axis=0)
    point = imbalance(p)
    ci: tuple[float, float] | None = None
    if bootstrap > 0:
        rng = np.random.default_rng(seed)
        resampled = rng.multinomial(measured, p, size=bootstrap) / measured
        values = np.abs(resampled - 1.0 / k).mean(axis=1)
        low, high = np.percentile(values, [2.5, 97.5])
        ci = (min(float(low), point), max(float(high), point))
    entropy = entropy_bits(p)
    return AttributeMetrics(
        attribute=attribute,
        categories=categories,
        counts={c: int(n) for c, n in zip(categories, counts, strict=True)},
        measured=measured,
        proportions=_as_dict(categories, p),
        soft_proportions=_as_dict(categories, soft),
        imbalance=point,
        mad=mean_absolute_deviation(p),
        entropy_bits=entropy,
        normalized_entropy=entropy / math.log2(k) if k > 1 else 1.0,
        imbalance_ci95=ci,
        reference=_as_dict(categories, ref) if ref is not None else None,
        deviation_from_reference=total_variation(p, ref) if ref is not None else None,
        mad_from_reference=float(np.abs(p - ref).mean()) if ref is not None else None,
    )


def prompt_metrics(
    per_image: Sequence[Mapping[str, Mapping[str, float]] | None],
    *,
    reference: Mapping[str, Mapping[str, float]] | None = None,
    bootstrap: int = 1000,
    seed: int = 0,
) -> PromptMetrics:
    """Metrics of every attribute in `ATTRIBUTES` over images of one prompt.

    Entries are `ImageAttributes.subject_distributions()` values: `None` for an image without
    a face; an attribute missing from an entry was not measured on that image.
    """
    references = dict(reference or {})
    for name in references:
        _categories(name)
    for index, entry in enumerate(per_image):
        if entry is None:
            continue
        for name in entry:
            if name not in ATTRIBUTES:
                raise InputError(
                    f"image {index}: unknown attribute {name!r} (known: {', '.join(ATTRIBUTES)})"
                )
    images = len(per_image)
    no_face = sum(1 for entry in per_image if entry is None)
    attributes = {
        name: attribute_metrics(
            name,
            [entry.get(name) if entry is not None else None for entry in per_image],
            reference=references.get(name),
            bootstrap=bootstrap,
            seed=seed,
        )
        for name in ATTRIBUTES
    }
    return PromptMetrics(
        images=images,
        no_face=no_face,
        no_face_share=no_face / images if images else 0.0,
        attributes=attributes,
    )


def compare_metrics(a: PromptMetrics, b: PromptMetrics) -> dict[str, dict[str, Any]]:
    """How run `b` differs from run `a`, for every attribute of both.

    Each attribute maps to: `categories`; `a_measured`, `b_measured`; `a_proportions`,
    `b_proportions`; `difference` (b − a per category) and `tvd` (total variation distance
    between the two distributions), both `None` unless both runs measured something; the
    chi-square test of homogeneity of the two count vectors: `chi2`, `dof`, `p_value` (`None`
    when a run measured nothing; 1.0 when both put every image in the same category),
    `significant` (p < 0.05) and `low_expected` (an expected count below 5, where the test's
    approximation is rough).
    """
    result: dict[str, dict[str, Any]] = {}
    for name in [n for n in ATTRIBUTES if n in a.attributes and n in b.attributes]:
        ma, mb = a.attributes[name], b.attributes[name]
        categories = ma.categories
        if mb.categories != categories:
            raise InputError(f"{name!r}: the two runs use different categories")
        both = ma.measured > 0 and mb.measured > 0
        pa = np.array([ma.proportions[c] for c in categories])
        pb = np.array([mb.proportions[c] for c in categories])
        table = np.array(
            [[ma.counts[c] for c in categories], [mb.counts[c] for c in categories]],
            dtype=np.int64,
        )
        result[name] = {
            "categories": list(categories),
            "a_measured": ma.measured,
            "b_measured": mb.measured,
            "a_proportions": dict(ma.proportions),
            "b_proportions": dict(mb.proportions),
            "difference": (
                {c: float(pb[i] - pa[i]) for i, c in enumerate(categories)} if both else None
            ),
            "tvd": total_variation(pa, pb) if both else None,
            "test": "chi2_contingency",
            **_homogeneity(table),
        }
    return result


def imbalance(p: FloatArray) -> float:
    """HEIM's imbalance of proportions `p` against the uniform distribution."""
    return float(np.abs(p - 1.0 / len(p)).mean())


def mean_absolute_deviation(p: FloatArray) -> float:
    """DALL-Eval's mean absolute deviation of proportions `p`."""
    return float(np.abs(p - p.mean()).mean())


def entropy_bits(p: FloatArray) -> float:
    nonzero = p[p > 0]
    return float(-(nonzero * np.log2(nonzero)).sum()) + 0.0


def total_variation(p: FloatArray, q: FloatArray) -> float:
    return float(np.abs(p - q).sum() / 2.0)


def _homogeneity(table: NDArray[np.int64]) -> dict[str, Any]:
    from scipy.stats import chi2_contingency

    if (table.sum(axis=1) == 0).any():
        return {
            "chi2": None,
            "dof": None,
            "p_value": None,
            "significant": False,
            "low_expected": False,
        }
    # A category empty in both runs has expected count 0, which the test cannot take; it
    # carries no evidence either way.
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2:
        # Both runs put every image in the same category: identical distributions.
        return {"chi2": 0.0, "dof": 0, "p_value": 1.0, "significant": False, "low_expected": False}
    result = chi2_contingency(table)
    p_value = float(result.pvalue)
    return {
        "chi2": float(result.statistic),
        "dof": int(result.dof),
        "p_value": p_value,
        "significant": p_value < _ALPHA,
        "low_expected": bool((np.asarray(result.expected_freq) < _MIN_EXPECTED).any()),
    }


def _categories(attribute: str) -> tuple[str, ...]:
    try:
        return ATTRIBUTES[attribute]
    except KeyError:
        raise InputError(
            f"unknown attribute {attribute!r} (known: {', '.join(ATTRIBUTES)})"
        ) from None


def _distribution(
    attribute: str, categories: tuple[str, ...], values: Mapping[str, float], what: str
) -> FloatArray:
    row = np.zeros(len(categories))
    for category, value in values.items():
        if category not in categories:
            raise InputError(
                f"{what}: unknown category {category!r} for {attribute!r} "
                f"(known: {', '.join(categories)})"
            )
        number = float(value)
        if not math.isfinite(number) or number < 0:
            raise InputError(f"{what}: {attribute!r}/{category!r} is {value!r}, not a probability")
        row[categories.index(category)] = number
    total = float(row.sum())
    if abs(total - 1.0) > _SUM_TOLERANCE:
        raise InputError(f"{what}: the {attribute!r} probabilities sum to {total:.4g}, not 1")
    return row / total


def _probabilities(
    attribute: str,
    categories: tuple[str, ...],
    entry: Mapping[str, float] | None,
    index: int,
) -> FloatArray | None:
    if entry is None or len(entry) == 0:
        return None
    return _distribution(attribute, categories, entry, f"image {index}")


def _reference(
    attribute: str, categories: tuple[str, ...], reference: Mapping[str, float] | None
) -> FloatArray | None:
    if reference is None:
        return None
    return _distribution(attribute, categories, reference, "reference")


def _as_dict(categories: tuple[str, ...], values: FloatArray) -> dict[str, float]:
    return {c: float(v) for c, v in zip(categories, values, strict=True)}


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)
