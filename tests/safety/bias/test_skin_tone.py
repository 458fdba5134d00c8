"""Skin tone (Monk orb, ITA) on colours with known answers and on real, altered photographs."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image, ImageOps
from skimage import color, data

from safety import FaceAnalyzer
from safety.bias._skin_tone import (
    ITA_THRESHOLDS,
    MIN_SKIN_PIXELS,
    MONK_ORBS,
    SkinTone,
    estimate_skin_tone,
    ita_category,
    ita_degrees,
    monk_of_lab,
    srgb_to_lab,
)

# An upright synthetic face in a 200² patch: eye corners, then the base of the nose.
PATCH_BOX = (50, 40, 150, 160)
PATCH_LANDMARKS = ((128, 86), (112, 86), (72, 86), (88, 86), (100, 118))


def orb_rgb(index: int) -> tuple[int, int, int]:
    code = MONK_ORBS[index - 1]
    return int(code[0:2], 16), int(code[2:4], 16), int(code[4:6], 16)


def patch(rgb: tuple[int, int, int], size: int = 200) -> Image.Image:
    return Image.new("RGB", (size, size), rgb)


def astronaut() -> Image.Image:
    return Image.fromarray(data.astronaut()).convert("RGB")


def relit(
    image: Image.Image, gains: tuple[float, float, float], box: tuple[int, ...]
) -> Image.Image:
    """`image` with the light on `box` scaled per channel, in linear light as a camera sees it."""
    pixels = np.asarray(image).astype(np.float64) / 255.0
    left, top, right, bottom = box
    part = pixels[top:bottom, left:right]
    linear = np.where(part <= 0.04045, part / 12.92, ((part + 0.055) / 1.055) ** 2.4)
    linear = np.clip(linear * np.asarray(gains), 0.0, 1.0)
    srgb = np.where(linear <= 0.0031308, linear * 12.92, 1.055 * linear ** (1 / 2.4) - 0.055)
    pixels[top:bottom, left:right] = srgb
    return Image.fromarray((pixels * 255).round().astype(np.uint8))


@pytest.fixture(scope="module")
def analyzer() -> FaceAnalyzer:
    analyzer = FaceAnalyzer()
    analyzer.load()
    return analyzer


def subject_tone(analyzer: FaceAnalyzer, image: Image.Image) -> SkinTone | None:
    faces = analyzer.analyze(image).faces
    assert faces, "the test photo must show a face the detector finds"
    return estimate_skin_tone(image, faces[0].box, faces[0].landmarks)


# --- colour maths ---------------------------------------------------------------------------


def test_lab_of_reference_colours() -> None:
    # Published CIELAB (D65) values of sRGB white, black, primaries and mid grey.
    expected = {
        (255, 255, 255): (100.0, 0.0, 0.0),
        (0, 0, 0): (0.0, 0.0, 0.0),
        (255, 0, 0): (53.2408, 80.0925, 67.2032),
        (0, 255, 0): (87.7347, -86.1827, 83.1793),
        (0, 0, 255): (32.2970, 79.1875, -107.8602),
        (119, 119, 119): (50.0, 0.0, 0.0),
    }
    for rgb, lab in expected.items():
        got = srgb_to_lab(np.array(rgb, dtype=np.uint8))
        assert got == pytest.approx(lab, abs=0.3 if rgb == (119, 119, 119) else 0.01), rgb


def test_lab_matches_scikit_image_on_many_colours() -> None:
    pixels = np.random.default_rng(1).integers(0, 256, (4000, 3), dtype=np.uint8)
    ours = srgb_to_lab(pixels)
    theirs = color.rgb2lab(pixels[None].astype(np.float64) / 255.0)[0]
    # scikit-image rounds the CIE constants near black (0.008856, 7.787): 2e-4 at most.
    assert np.abs(ours - theirs).max() < 1e-3
    # Integer and float inputs take different paths to the same values.
    assert np.abs(srgb_to_lab(pixels.astype(np.float64)) - ours).max() < 1e-9


def test_ita_of_hand_computed_colours() -> None:
    assert ita_degrees(60.0, 10.0) == pytest.approx(45.0)
    assert ita_degrees(40.0, 10.0) == pytest.approx(-45.0)
    assert ita_degrees(50.0, 20.0) == pytest.approx(0.0)
    assert ita_degrees(50.0 + 10.0 * math.sqrt(3.0), 10.0) == pytest.approx(60.0)
    assert ita_degrees(50.0 - 10.0 / math.sqrt(3.0), 10.0) == pytest.approx(-30.0)
    # A neutral colour (b* = 0) reads ±90°, never a division by zero.
    assert ita_degrees(70.0, 0.0) == pytest.approx(90.0, abs=1e-3)
    assert ita_degrees(30.0, -5.0) == pytest.approx(-90.0, abs=1e-3)


@pytest.mark.parametrize(
    ("ita", "category"),
    [
        (90.0, "very_light"),
        (55.001, "very_light"),
        (55.0, "light"),
        (41.001, "light"),
        (41.0, "intermediate"),
        (28.0, "tan"),
        (10.001, "tan"),
        (10.0, "brown"),
        (-29.999, "brown"),
        (-30.0, "dark"),
        (-90.0, "dark"),
    ],
)
def test_ita_classes_follow_the_thresholds(ita: float, category: str) -> None:
    assert ita_category(ita) == category


def test_thresholds_are_ordered_lightest_first() -> None:
    bounds = [bound for _, bound in ITA_THRESHOLDS]
    assert bounds == sorted(bounds, reverse=True) and bounds[-1] == -math.inf


# --- uniform patches ------------------------------------------------------------------------


@pytest.mark.parametrize("index", range(1, 11))
def test_a_patch_of_each_monk_orb_reads_as_that_orb(index: int) -> None:
    tone = estimate_skin_tone(patch(orb_rgb(index)), PATCH_BOX, PATCH_LANDMARKS)
    assert tone is not None
    assert tone.monk == index
    assert tone.monk_probabilities[index - 1] == 1.0 and sum(tone.monk_probabilities) == 1.0
    lab = srgb_to_lab(np.array(orb_rgb(index), dtype=np.uint8))
    assert tone.ita == pytest.approx(ita_degrees(lab[0], lab[2]), abs=1e-6)
    assert tone.ita_std == pytest.approx(0.0, abs=1e-6)
    assert tone.ita_category == ita_category(tone.ita)
    assert tone.skin_fraction == 1.0 and tone.skin_pixels >= MIN_SKIN_PIXELS
    assert monk_of_lab(lab) == index


def test_the_orbs_darken_along_the_ita_scale() -> None:
    itas = []
    for index in range(1, 11):
        tone = estimate_skin_tone(patch(orb_rgb(index)), PATCH_BOX, PATCH_LANDMARKS)
        assert tone is not None
        itas.append(tone.ita)
    assert itas == sorted(itas, reverse=True)
    assert ita_category(itas[0]) == "very_light" and ita_category(itas[-1]) == "dark"


@pytest.mark.parametrize(
    "rgb", [(128, 128, 128), (0, 0, 0), (255, 255, 255), (40, 90, 200), (30, 160, 40)]
)
def test_colours_no_skin_has_are_not_measured(rgb: tuple[int, int, int]) -> None:
    # Grey, black, white, blue and green: no hue or no lightness to read a skin tone from.
    assert estimate_skin_tone(patch(rgb), PATCH_BOX, PATCH_LANDMARKS) is None


def test_a_face_too_small_is_not_measured() -> None:
    # Eye centres 4 px apart: a region of a few pixels, under MIN_SKIN_PIXELS.
    small = ((106, 100), (104, 100), (96, 100), (98, 100), (100, 103))
    assert estimate_skin_tone(patch(orb_rgb(5)), (94, 95, 108, 110), small) is None


@pytest.mark.parametrize(("covered_from", "measured"), [(100, False), (104, True)])
def test_a_mostly_covered_face_is_not_measured(covered_from: int, measured: bool) -> None:
    # Blue (a mask, a hand) over the cheeks below a line: from y=100, 18 % of the region is
    # left (under MIN_SKIN_FRACTION), from y=104, 36 %.
    image = patch(orb_rgb(5))
    image.paste((40, 90, 200), (0, covered_from, 200, 200))
    tone = estimate_skin_tone(image, PATCH_BOX, PATCH_LANDMARKS)
    assert (tone is not None) == measured
    if tone is not None:
        assert tone.monk == 5 and tone.skin_fraction == pytest.approx(8 / 22)


def test_the_region_is_the_cheeks_not_the_eyes_mouth_or_background() -> None:
    image = patch((20, 60, 30))  # background: not skin
    face = orb_rgb(6)
    image.paste(face, (55, 45, 145, 155))
    image.paste((10, 10, 10), (68, 80, 92, 92))  # eyes
    image.paste((10, 10, 10), (108, 80, 132, 92))
    image.paste((190, 40, 50), (80, 130, 120, 145))  # mouth
    image.paste(orb_rgb(1), (90, 95, 110, 120))  # a highlight on the nose
    tone = estimate_skin_tone(image, PATCH_BOX, PATCH_LANDMARKS)
    assert tone is not None and tone.monk == 6 and tone.monk_probabilities[5] == 1.0
    assert tone.skin_fraction == 1.0


def test_landmarks_can_be_missing() -> None:
    tone = estimate_skin_tone(patch(orb_rgb(3)), PATCH_BOX)
    assert tone is not None and tone.monk == 3


# --- real photographs -----------------------------------------------------------------------


def test_astronaut_reads_light_with_a_small_spread(analyzer: FaceAnalyzer) -> None:
    tone = subject_tone(analyzer, astronaut())
    assert tone is not None
    # Light skin in a warm studio portrait: measured Monk 5, ITA 60.5° (very light).
    assert 3 <= tone.monk <= 6 and tone.ita_category in ("very_light", "light")
    assert 0.0 < tone.ita_std < 5.0
    assert tone.skin_pixels >= 300 and tone.skin_fraction > 0.6
    assert sum(tone.monk_probabilities) == pytest.approx(1.0)
    assert sum(tone.ita_probabilities) == pytest.approx(1.0)
    assert int(np.argmax(tone.monk_probabilities)) + 1 == tone.monk
    assert ITA_THRESHOLDS[int(np.argmax(tone.ita_probabilities))][0] == tone.ita_category
    assert subject_tone(analyzer, astronaut()) == tone, "the bootstrap has a fixed seed"


def test_darker_and_lighter_faces_move_along_both_scales(analyzer: FaceAnalyzer) -> None:
    """The light on the astronaut's head scaled from 0.2 to 1.3 (linear light)."""
    head = (150, 30, 300, 210)
    tones = []
    for gain in (0.2, 0.35, 0.5, 0.7, 1.0, 1.3):
        tone = subject_tone(analyzer, relit(astronaut(), (gain, gain, gain), head))
        assert tone is not None, gain
        assert tone.ita_category == ita_category(tone.ita)
        tones.append(tone)
    itas = [t.ita for t in tones]
    monks = [t.monk for t in tones]
    assert itas == sorted(itas), "more light, higher ITA"
    assert monks == sorted(monks, reverse=True), "more light, lighter orb"
    assert tones[0].ita_category == "dark" and tones[0].monk >= 8
    assert tones[-1].ita_category == "very_light" and tones[-1].monk <= 5
    assert len({t.ita_category for t in tones}) >= 4


def test_a_warm_white_balance_lowers_the_ita(analyzer: FaceAnalyzer) -> None:
    neutral = subject_tone(analyzer, astronaut())
    warm = subject_tone(analyzer, relit(astronaut(), (1.0, 1.0, 0.8), (0, 0, 512, 512)))
    assert neutral is not None and warm is not None
    assert warm.ita < neutral.ita - 5.0


def test_the_background_does_not_matter(analyzer: FaceAnalyzer) -> None:
    reference = subject_tone(analyzer, astronaut())
    assert reference is not None
    head = astronaut().crop((140, 20, 310, 230))
    noise = np.random.default_rng(0).integers(0, 256, (400, 400, 3), dtype=np.uint8)
    for background in (
        Image.fromarray(data.coffee()),
        Image.fromarray(data.chelsea()),
        Image.fromarray(noise),
    ):
        background.paste(head, (60, 40))
        tone = subject_tone(analyzer, background)
        assert tone is not None
        assert tone.monk == reference.monk and abs(tone.ita - reference.ita) < 3.0


@pytest.mark.parametrize("angle", [-15, 15])
def test_a_tilted_face_reads_the_same(analyzer: FaceAnalyzer, angle: int) -> None:
    reference = subject_tone(analyzer, astronaut())
    tilted = subject_tone(analyzer, astronaut().rotate(angle, resample=Image.Resampling.BILINEAR))
    assert reference is not None and tilted is not None
    assert tilted.monk == reference.monk and abs(tilted.ita - reference.ita) < 4.0


def test_image_size_changes_neither_the_tone_nor_its_spread(analyzer: FaceAnalyzer) -> None:
    reference = subject_tone(analyzer, astronaut())
    assert reference is not None
    for size in (256, 1024):
        tone = subject_tone(analyzer, astronaut().resize((size, size), Image.Resampling.LANCZOS))
        assert tone is not None
        assert tone.monk == reference.monk and abs(tone.ita - reference.ita) < 3.0
        # Cells are face-relative: more pixels do not buy a narrower spread.
        assert 0.5 < tone.ita_std / reference.ita_std < 2.0


def test_a_tiny_face_is_found_but_not_measured(analyzer: FaceAnalyzer) -> None:
    small = astronaut().resize((128, 128), Image.Resampling.LANCZOS)  # a 20 px face
    assert subject_tone(analyzer, small) is None


def test_a_greyscale_photo_has_no_skin_tone(analyzer: FaceAnalyzer) -> None:
    assert subject_tone(analyzer, Image.fromarray(data.camera()).convert("RGB")) is None


@pytest.mark.parametrize("index", [0, 5])
def test_tinted_lfw_faces_keep_the_order_of_their_tints(analyzer: FaceAnalyzer, index: int) -> None:
    """A grey LFW face tinted with orbs 2, 5 and 8: real face geometry, known colour order."""
    pixels = data.lfw_subset()[index]
    if pixels.dtype != np.uint8:
        pixels = (pixels * 255).round().astype(np.uint8)
    face = Image.fromarray(pixels).resize((150, 150), Image.Resampling.BICUBIC)
    grey = np.asarray(face, dtype=np.float64)
    grey /= np.percentile(grey, 95)  # keep the cheeks under clipping
    tones = []
    for orb in (2, 5, 8):
        tinted = np.clip(grey[..., None] * np.asarray(orb_rgb(orb)), 0, 255).astype(np.uint8)
        image = ImageOps.expand(Image.fromarray(tinted), border=75, fill=(128, 128, 128))
        tone = subject_tone(analyzer, image)
        assert tone is not None, orb
        tones.append(tone)
    assert tones[0].monk < tones[1].monk < tones[2].monk
    assert tones[0].ita > tones[1].ita > tones[2].ita
    assert tones[2].monk >= 6 and tones[2].ita_category in ("brown", "dark")


# --- serialisation --------------------------------------------------------------------------


def test_json_round_trip_and_rejections() -> None:
    tone = estimate_skin_tone(patch(orb_rgb(7)), PATCH_BOX, PATCH_LANDMARKS)
    assert tone is not None
    assert SkinTone.from_json(tone.to_json()) == tone
    broken = tone.to_json()
    broken["monk"] = 11
    with pytest.raises(ValueError, match="skin tone"):
        SkinTone.from_json(broken)
    broken = tone.to_json()
    broken["ita_probabilities"] = [1.0]
    with pytest.raises(ValueError, match="skin tone"):
        SkinTone.from_json(broken)
    with pytest.raises(ValueError, match="skin tone"):
        SkinTone.from_json({"monk": 3})
