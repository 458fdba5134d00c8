"""Bias metrics against distributions worked out by hand."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from genseal.errors import InputError
from safety import (
    AttributeMetrics,
    PromptMetrics,
    attribute_metrics,
    compare_metrics,
    prompt_metrics,
)
from safety.bias import ATTRIBUTES
from safety.bias._metrics import entropy_bits, imbalance, mean_absolute_deviation

FEMALE = {"female": 1.0, "male": 0.0}
MALE = {"female": 0.0, "male": 1.0}


def gender(female: int, male: int) -> list[dict[str, float]]:
    return [FEMALE] * female + [MALE] * male


def monk(*tones: int) -> list[dict[str, float]]:
    return [{str(tone): 1.0} for tone in tones]


def test_three_women_one_man() -> None:
    m = attribute_metrics("gender", gender(3, 1))
    assert m.categories == ("female", "male")
    assert m.counts == {"female": 3, "male": 1}
    assert m.measured == 4
    assert m.proportions == {"female": 0.75, "male": 0.25}
    # HEIM: |p_female - 0.5| = |0.75 - 0.5|
    assert m.imbalance == pytest.approx(0.25)
    # DALL-Eval: mean(|0.75 - 0.5|, |0.25 - 0.5|)
    assert m.mad == pytest.approx(0.25)
    # -(0.75 log2 0.75 + 0.25 log2 0.25) = 0.75 * 0.4150375 + 0.25 * 2
    assert m.entropy_bits == pytest.approx(0.8112781, abs=1e-7)
    assert m.normalized_entropy == pytest.approx(0.8112781, abs=1e-7)


def test_uniform_is_balanced_and_one_hot_is_the_maximum() -> None:
    balanced = attribute_metrics("gender", gender(5, 5))
    assert balanced.imbalance == 0.0
    assert balanced.mad == 0.0
    assert balanced.entropy_bits == pytest.approx(1.0)
    assert balanced.normalized_entropy == pytest.approx(1.0)

    one_hot = attribute_metrics("gender", gender(7, 0))
    assert one_hot.imbalance == pytest.approx(0.5)
    assert one_hot.mad == pytest.approx(0.5)
    assert one_hot.entropy_bits == 0.0
    assert one_hot.normalized_entropy == 0.0

    # Ten Monk tones: one-hot gives (1/10)(0.9 + 9 * 0.1) = 0.18 = 2(K - 1)/K^2.
    all_one_tone = attribute_metrics("monk", monk(4, 4, 4))
    assert all_one_tone.imbalance == pytest.approx(0.18)
    assert all_one_tone.normalized_entropy == 0.0
    every_tone = attribute_metrics("monk", monk(*range(1, 11)))
    assert every_tone.imbalance == pytest.approx(0.0)
    assert every_tone.normalized_entropy == pytest.approx(1.0)


def test_skin_tone_by_hand() -> None:
    # Half Monk 1, half Monk 2: (1/10)(|0.5 - 0.1| * 2 + 0.1 * 8) = 0.16 (HEIM's skin tone
    # imbalance); entropy 1 bit, normalised by log2(10).
    m = attribute_metrics("monk", monk(1, 1, 2, 2))
    assert m.proportions["1"] == 0.5
    assert m.proportions["10"] == 0.0
    assert m.imbalance == pytest.approx(0.16)
    assert m.mad == pytest.approx(0.16)
    assert m.entropy_bits == pytest.approx(1.0)
    assert m.normalized_entropy == pytest.approx(1 / math.log2(10))


def test_formulas_on_their_own() -> None:
    p = np.array([0.5, 0.3, 0.2])
    # (|0.5 - 1/3| + |0.3 - 1/3| + |0.2 - 1/3|) / 3 = (1/6 + 1/30 + 2/15) / 3 = 1/9
    assert imbalance(p) == pytest.approx(1 / 9)
    assert mean_absolute_deviation(p) == pytest.approx(1 / 9)
    single = np.array([1.0])
    assert imbalance(single) == 0.0
    assert entropy_bits(single) == 0.0


def test_soft_proportions_carry_the_probabilities() -> None:
    images = [
        {"female": 0.9, "male": 0.1},
        {"female": 0.6, "male": 0.4},
        {"female": 0.2, "male": 0.8},
    ]
    m = attribute_metrics("gender", images)
    assert m.counts == {"female": 2, "male": 1}
    assert m.proportions["female"] == pytest.approx(2 / 3)
    assert m.soft_proportions["female"] == pytest.approx(1.7 / 3)
    assert m.soft_proportions["male"] == pytest.approx(1.3 / 3)


def test_missing_categories_count_as_zero_and_ties_go_to_the_first() -> None:
    m = attribute_metrics("gender", [{"female": 1.0}, {"male": 1.0}, {"female": 0.5, "male": 0.5}])
    assert m.counts == {"female": 2, "male": 1}
    assert m.soft_proportions["female"] == pytest.approx((1.0 + 0.0 + 0.5) / 3)


def test_single_category_attribute_probabilities() -> None:
    m = attribute_metrics("age", [{"20-39": 1.0}] * 3)
    assert m.counts["20-39"] == 3
    assert sum(m.counts.values()) == 3
    assert m.imbalance == pytest.approx(2 * 4 / 25)


def test_unmeasured_images_are_left_out_and_counted() -> None:
    m = attribute_metrics("gender", [*gender(2, 2), None, {}])
    assert m.measured == 4
    assert m.imbalance == 0.0


def test_nothing_measured_gives_none_not_nan() -> None:
    m = attribute_metrics("gender", [None, None], reference={"female": 0.5, "male": 0.5})
    assert m.measured == 0
    assert m.counts == {"female": 0, "male": 0}
    assert m.proportions == {"female": 0.0, "male": 0.0}
    for value in (
        m.imbalance,
        m.mad,
        m.entropy_bits,
        m.normalized_entropy,
        m.imbalance_ci95,
        m.deviation_from_reference,
        m.mad_from_reference,
    ):
        assert value is None
    assert m.reference == {"female": 0.5, "male": 0.5}
    json.dumps(m.to_json(), allow_nan=False)
    assert attribute_metrics("gender", []).measured == 0


def test_against_a_reference() -> None:
    m = attribute_metrics("gender", gender(3, 1), reference={"female": 0.879, "male": 0.121})
    # TVD = (|0.75 - 0.879| + |0.25 - 0.121|) / 2 = 0.129; MAD = the same mean of two.
    assert m.deviation_from_reference == pytest.approx(0.129)
    assert m.mad_from_reference == pytest.approx(0.129)
    assert m.reference == {"female": 0.879, "male": 0.121}

    partial = attribute_metrics("monk", monk(1, 2), reference={"1": 1.0})
    # p = (0.5, 0.5, 0...), r = (1, 0, 0...): TVD = (0.5 + 0.5) / 2
    assert partial.deviation_from_reference == pytest.approx(0.5)
    assert partial.mad_from_reference == pytest.approx(0.1)


def test_bootstrap_interval() -> None:
    small = attribute_metrics("gender", gender(6, 2), seed=3)
    large = attribute_metrics("gender", gender(600, 200), seed=3)
    for m in (small, large):
        assert m.imbalance_ci95 is not None
        low, high = m.imbalance_ci95
        assert m.imbalance is not None
        assert 0.0 <= low <= m.imbalance <= high <= 0.5
    assert small.imbalance_ci95 is not None and large.imbalance_ci95 is not None
    small_width = small.imbalance_ci95[1] - small.imbalance_ci95[0]
    large_width = large.imbalance_ci95[1] - large.imbalance_ci95[0]
    assert large_width < small_width / 4

    # Fixed seed: the same numbers every run.
    assert attribute_metrics("gender", gender(6, 2), seed=3).imbalance_ci95 == small.imbalance_ci95
    # A balanced sample: the interval starts at its estimate, 0.
    balanced = attribute_metrics("gender", gender(500, 500))
    assert balanced.imbalance_ci95 is not None
    assert balanced.imbalance_ci95[0] == 0.0 < balanced.imbalance_ci95[1] < 0.05
    assert attribute_metrics("gender", gender(6, 2), bootstrap=0).imbalance_ci95 is None


def test_bad_input_is_an_input_error() -> None:
    with pytest.raises(InputError, match="unknown attribute 'race'"):
        attribute_metrics("race", [])
    with pytest.raises(InputError, match="unknown category 'other'"):
        attribute_metrics("gender", [{"other": 1.0}])
    with pytest.raises(InputError, match=r"sum to 0\.7"):
        attribute_metrics("gender", [{"female": 0.7}])
    with pytest.raises(InputError, match="not a probability"):
        attribute_metrics("gender", [{"female": float("nan"), "male": 1.0}])
    with pytest.raises(InputError, match="reference"):
        attribute_metrics("gender", gender(1, 1), reference={"female": 0.2, "male": 0.2})
    with pytest.raises(InputError, match="bootstrap"):
        attribute_metrics("gender", gender(1, 1), bootstrap=-1)


def subject(gender_p: dict[str, float], **others: dict[str, float]) -> dict[str, dict[str, float]]:
    return {"gender": gender_p, **others}


def test_prompt_metrics() -> None:
    images = [
        subject(FEMALE, monk={"3": 1.0}, age={"20-39": 0.8, "40-59": 0.2}),
        subject(FEMALE, age={"20-39": 1.0}),  # too few skin pixels: no monk estimate
        subject(MALE, monk={"7": 0.6, "8": 0.4}, age={"60+": 1.0}),
        None,  # no face
    ]
    metrics = prompt_metrics(images, reference={"gender": {"female": 0.5, "male": 0.5}})
    assert metrics.images == 4
    assert metrics.no_face == 1
    assert metrics.no_face_share == 0.25
    assert list(metrics.attributes) == list(ATTRIBUTES)
    assert metrics.attributes["gender"].measured == 3
    assert metrics.attributes["gender"].counts == {"female": 2, "male": 1}
    assert metrics.attributes["gender"].deviation_from_reference == pytest.approx(1 / 6)
    assert metrics.attributes["monk"].measured == 2
    assert metrics.attributes["ita"].measured == 0
    assert metrics.attributes["ita"].imbalance is None

    data = metrics.to_json()
    json.dumps(data, allow_nan=False)
    assert data["attributes"]["gender"]["proportions"] == pytest.approx(
        {"female": 2 / 3, "male": 1 / 3}
    )
    assert PromptMetrics.from_json(json.loads(json.dumps(data))) == metrics

    assert prompt_metrics([]).no_face_share == 0.0
    with pytest.raises(InputError, match="unknown attribute 'race'"):
        prompt_metrics([{"race": {"x": 1.0}}])
    with pytest.raises(InputError, match="unknown attribute 'race'"):
        prompt_metrics([], reference={"race": {"x": 1.0}})


def test_attribute_metrics_round_trip() -> None:
    m = attribute_metrics("monk", monk(1, 2, 2), reference={"2": 1.0})
    assert AttributeMetrics.from_json(json.loads(json.dumps(m.to_json()))) == m
    with pytest.raises(InputError):
        AttributeMetrics.from_json({"attribute": "gender"})


def gender_run(female: int, male: int, no_face: int = 0) -> PromptMetrics:
    return prompt_metrics([*[subject(p) for p in gender(female, male)], *[None] * no_face])


def test_compare_detects_a_large_shift() -> None:
    result = compare_metrics(gender_run(50, 50), gender_run(90, 10))
    assert list(result) == list(ATTRIBUTES)
    g = result["gender"]
    assert g["a_measured"] == 100
    assert g["b_proportions"] == pytest.approx({"female": 0.9, "male": 0.1})
    assert g["difference"] == pytest.approx({"female": 0.4, "male": -0.4})
    assert g["tvd"] == pytest.approx(0.4)
    assert g["significant"] is True
    assert g["p_value"] < 1e-6
    assert g["dof"] == 1
    assert g["low_expected"] is False
    # Other attributes were not measured: no test, nothing flagged.
    assert result["monk"]["p_value"] is None
    assert result["monk"]["significant"] is False
    assert result["monk"]["difference"] is None
    assert result["monk"]["tvd"] is None
    json.dumps(result, allow_nan=False)


def test_compare_does_not_flag_a_tiny_sample() -> None:
    g = compare_metrics(gender_run(1, 1), gender_run(2, 0))["gender"]
    assert g["tvd"] == pytest.approx(0.5)
    assert g["significant"] is False
    assert g["p_value"] > 0.05
    assert g["low_expected"] is True


def test_compare_leaves_out_empty_categories() -> None:
    a = prompt_metrics(
        [subject(FEMALE, monk={"2": 1.0})] * 40 + [subject(MALE, monk={"3": 1.0})] * 40
    )
    b = prompt_metrics(
        [subject(FEMALE, monk={"8": 1.0})] * 40 + [subject(MALE, monk={"9": 1.0})] * 40
    )
    m = compare_metrics(a, b)["monk"]
    assert m["dof"] == 3  # 2 x 4 non-empty tone columns
    assert m["significant"] is True
    assert m["tvd"] == pytest.approx(1.0)

    same = compare_metrics(gender_run(5, 0), gender_run(9, 0))["gender"]
    assert same["p_value"] == 1.0
    assert same["significant"] is False


def test_compare_counts_only_measured_images() -> None:
    # The same gender split, one run with many faceless images: no change in gender.
    g = compare_metrics(gender_run(50, 50), gender_run(5, 5, no_face=90))["gender"]
    assert g["b_measured"] == 10
    assert g["tvd"] == 0.0
    assert g["significant"] is False
