"""Perceived attributes per image (gender, age band, skin tone) on real photographs."""

from __future__ import annotations

import io
import itertools
import json
import sys

import numpy as np
import pytest
from PIL import Image
from skimage import data

from genseal.errors import CheckError, ImageInputError, InputError
from safety import (
    ATTRIBUTES,
    ITA_THRESHOLDS,
    AttributeEstimator,
    FaceAnalyzer,
    FaceAttributes,
    ImageAttributes,
    SkinTone,
)
from safety.bias import MONK_ORBS
from safety.bias._attributes import AGE_BANDS
from safety.faces import _age_gender, _analysis


def photo(name: str) -> Image.Image:
    return Image.fromarray(getattr(data, name)()).convert("RGB")


@pytest.fixture(scope="module")
def analyzer() -> FaceAnalyzer:
    analyzer = FaceAnalyzer()
    analyzer.load()
    return analyzer


@pytest.fixture(scope="module")
def estimator(analyzer: FaceAnalyzer) -> AttributeEstimator:
    return AttributeEstimator(analyzer)


@pytest.fixture(scope="module")
def astronaut(estimator: AttributeEstimator) -> ImageAttributes:
    return estimator.estimate(photo("astronaut"))


def test_the_vocabulary_is_the_shared_one() -> None:
    assert ATTRIBUTES == {
        "gender": ("female", "male"),
        "age": ("0-12", "13-19", "20-39", "40-59", "60+"),
        "monk": ("1", "2", "3", "4", "5", "6", "7", "8", "9", "10"),
        "ita": ("very_light", "light", "intermediate", "tan", "brown", "dark"),
    }
    assert ATTRIBUTES["ita"] == tuple(name for name, _ in ITA_THRESHOLDS)
    assert len(ATTRIBUTES["monk"]) == len(MONK_ORBS)
    assert len(AGE_BANDS) == len(ATTRIBUTES["age"])
    # The bands tile the ages without gaps.
    assert AGE_BANDS[0][0] == 0 and all(a[1] == b[0] for a, b in itertools.pairwise(AGE_BANDS))


def test_astronaut_subject(astronaut: ImageAttributes) -> None:
    assert (astronaut.width, astronaut.height, astronaut.detected) == (512, 512, 1)
    subject = astronaut.subject
    assert subject is not None and subject is astronaut.faces[0]
    left, top, right, bottom = subject.box
    assert 150 < left < 200 and 250 < right < 290 and 40 < top < 90 and 150 < bottom < 200
    assert subject.gender == "female" and subject.gender_probability is not None
    assert 0.5 <= subject.gender_probability <= 1.0
    assert subject.age_years is not None and subject.age_low is not None
    assert subject.age_high is not None
    assert subject.age_low <= subject.age_years <= subject.age_high
    assert subject.age_band == "20-39"  # measured 33 years
    assert subject.skin is not None and subject.skin.ita_category in ("very_light", "light")


def test_age_band_probabilities_come_from_the_age_distribution(
    analyzer: FaceAnalyzer, astronaut: ImageAttributes
) -> None:
    [face] = analyzer.analyze(photo("astronaut"), attributes=True).faces
    age = face.age
    assert age is not None
    assert len(age.distribution) == len(age.class_ages) == 81
    assert sum(age.distribution) == pytest.approx(1.0)
    # The kept distribution is the one the summary was computed from.
    assert np.dot(age.distribution, age.class_ages) == pytest.approx(age.years)
    p = np.asarray(age.distribution)
    ages = np.asarray(age.class_ages)
    expected = [p[(ages >= low) & (ages < high)].sum() for low, high in AGE_BANDS]
    subject = astronaut.subject
    assert subject is not None and subject.age_band_probabilities is not None
    assert subject.age_band_probabilities == pytest.approx(expected)
    assert sum(subject.age_band_probabilities) == pytest.approx(1.0)
    assert age.probability_between(0, 18) == pytest.approx(age.p_under_18)
    best = int(np.argmax(subject.age_band_probabilities))
    assert subject.age_band == ATTRIBUTES["age"][best]


def test_age_distribution_does_not_change_face_equality(analyzer: FaceAnalyzer) -> None:
    [face] = analyzer.analyze(photo("astronaut"), attributes=True).faces
    assert face.age is not None
    bare = _age_gender.AgeEstimate(
        face.age.years, face.age.low, face.age.high, face.age.std, face.age.p_under_18
    )
    assert bare == face.age and bare.probability_between(0, 18) is None
    assert "distribution" not in repr(face.age)


def test_subject_distributions_cover_every_attribute(astronaut: ImageAttributes) -> None:
    distributions = astronaut.subject_distributions()
    assert distributions is not None and set(distributions) == set(ATTRIBUTES)
    for attribute, probabilities in distributions.items():
        assert tuple(probabilities) == ATTRIBUTES[attribute]
        assert sum(probabilities.values()) == pytest.approx(1.0)
        assert all(0.0 <= p <= 1.0 for p in probabilities.values())
    subject = astronaut.subject
    assert subject is not None and subject.skin is not None
    assert distributions["gender"]["female"] == subject.gender_probability
    assert distributions["gender"]["male"] == pytest.approx(1 - subject.gender_probability)
    assert max(distributions["monk"], key=distributions["monk"].__getitem__) == str(
        subject.skin.monk
    )
    assert max(distributions["ita"], key=distributions["ita"].__getitem__) == (
        subject.skin.ita_category
    )


@pytest.mark.parametrize("name", ["coffee", "chelsea", "noise"])
def test_no_face_means_no_subject(estimator: AttributeEstimator, name: str) -> None:
    if name == "noise":
        pixels = np.random.default_rng(0).integers(0, 256, (256, 256, 3), dtype=np.uint8)
        image = Image.fromarray(pixels)
    else:
        image = photo(name)
    attributes = estimator.estimate(image)
    assert attributes.faces == () and attributes.detected == 0
    assert attributes.subject is None and attributes.subject_distributions() is None
    assert ImageAttributes.from_json(json.loads(json.dumps(attributes.to_json()))) == attributes


def test_greyscale_face_has_age_and_gender_but_no_skin_tone(estimator: AttributeEstimator) -> None:
    attributes = estimator.estimate(photo("camera"))
    subject = attributes.subject
    assert subject is not None and subject.skin is None
    assert subject.gender == "male" and subject.age_band is not None
    distributions = attributes.subject_distributions()
    assert distributions is not None and set(distributions) == {"gender", "age"}


def test_the_subject_is_the_largest_face(estimator: AttributeEstimator) -> None:
    astronaut = photo("astronaut")
    canvas = Image.new("RGB", (768, 512), (128, 128, 128))
    canvas.paste(astronaut.resize((256, 256), Image.Resampling.LANCZOS), (0, 128))
    canvas.paste(astronaut, (256, 0))
    attributes = estimator.estimate(canvas)
    assert attributes.detected == 2 and len(attributes.faces) == 2
    areas = [(f.box[2] - f.box[0]) * (f.box[3] - f.box[1]) for f in attributes.faces]
    assert areas == sorted(areas, reverse=True)
    subject = attributes.subject
    assert subject is not None and subject.box[0] > 256  # the full-size copy on the right
    small = attributes.faces[1]
    assert small.skin is not None and subject.skin is not None
    assert small.skin.monk == subject.skin.monk


def test_json_round_trip(astronaut: ImageAttributes) -> None:
    text = json.dumps(astronaut.to_json())
    again = ImageAttributes.from_json(json.loads(text))
    assert again == astronaut
    assert again.subject_distributions() == astronaut.subject_distributions()
    subject = astronaut.subject
    assert subject is not None and FaceAttributes.from_json(subject.to_json()) == subject
    assert subject.skin is not None and SkinTone.from_json(subject.skin.to_json()) == subject.skin


def test_a_face_without_estimates_round_trips_and_reports_nothing() -> None:
    face = FaceAttributes(
        box=(1, 2, 3, 4),
        confidence=0.9,
        gender=None,
        gender_probability=None,
        age_years=None,
        age_low=None,
        age_high=None,
        age_band=None,
        age_band_probabilities=None,
        skin=None,
    )
    assert FaceAttributes.from_json(json.loads(json.dumps(face.to_json()))) == face
    image = ImageAttributes(10, 10, (face,), detected=1)
    assert image.subject_distributions() == {}


@pytest.mark.parametrize(
    "change",
    [
        {"faces": "nope"},
        {"width": None},
        {"faces": [{"box": [1, 2, 3]}]},
        {"faces": [{"box": [1, 2, 3, 4], "confidence": 0.9, "gender": "other"}]},
        {"faces": [{"box": [1, 2, 3, 4], "confidence": 0.9, "age_band_probabilities": [1.0]}]},
        {"faces": [{"box": [1, 2, 3, 4], "confidence": 0.9, "skin": {"monk": 0}}]},
    ],
)
def test_malformed_json_is_an_input_error(
    astronaut: ImageAttributes, change: dict[str, object]
) -> None:
    with pytest.raises(InputError):
        ImageAttributes.from_json({**astronaut.to_json(), **change})


def test_version_and_models_name_every_estimator(estimator: AttributeEstimator) -> None:
    assert set(estimator.models) == {"detector", "landmarks", "age_gender", "skin_tone"}
    assert all(orb in estimator.models["skin_tone"] for orb in MONK_ORBS)
    assert estimator.version.startswith("attributes.")
    assert "skin." in estimator.version and "age-gender." in estimator.version


def test_bad_images_are_input_errors(estimator: AttributeEstimator) -> None:
    with pytest.raises(ImageInputError):
        estimator.estimate(b"not an image")  # type: ignore[arg-type]
    with pytest.raises(ImageInputError):
        estimator.estimate(Image.new("RGB", (0, 0)))
    buffer = io.BytesIO()
    photo("astronaut").save(buffer, format="PNG")
    truncated = Image.open(io.BytesIO(buffer.getvalue()[:5000]))
    with pytest.raises(ImageInputError):
        estimator.estimate(truncated)


def test_other_image_modes_are_estimated(estimator: AttributeEstimator) -> None:
    rgba = photo("astronaut").convert("RGBA")
    subject = estimator.estimate(rgba).subject
    assert subject is not None and subject.skin is not None


def test_missing_models_are_a_check_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_analysis, "_shared_models", None)
    monkeypatch.setitem(sys.modules, "yuface", None)  # as if it were not installed
    with pytest.raises(CheckError, match="yuface"):
        AttributeEstimator(FaceAnalyzer()).estimate(photo("astronaut"))
