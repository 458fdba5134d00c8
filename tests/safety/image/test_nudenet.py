"""NudeNetCheck: the optional extra's absence always; its real detector when it is installed.

NudeNet is AGPL-3.0 and not a default dependency, so the detector tests skip unless `nudenet`
imports. Without explicit test images, flagging is exercised through the class mapping: a
face detected on a photo stands in for an exposed class (`exposed_classes`).
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import pytest
from PIL import Image
from skimage import data

from genseal.errors import CheckError
from safety import Category, CheckState, NudeNetCheck, Policy, Screener, Stage


@pytest.fixture(scope="module")
def astronaut() -> Image.Image:
    return Image.fromarray(data.astronaut())


@pytest.fixture
def without_nudenet(monkeypatch: pytest.MonkeyPatch) -> None:
    # A None entry makes `import nudenet` raise ImportError, installed or not.
    monkeypatch.setitem(sys.modules, "nudenet", None)


# --- not installed: not checked, naming the install -------------------------------------


@pytest.mark.usefixtures("without_nudenet")
def test_not_installed_is_not_checked_with_the_install_command(astronaut: Image.Image) -> None:
    (finding,) = NudeNetCheck().check(astronaut, Stage.OUTPUT, image_index=2)

    assert finding.state is CheckState.NOT_CHECKED
    assert finding.category is Category.SEXUAL
    assert finding.score is None
    assert finding.image_index == 2
    assert finding.reason and "pip install 'genseal[nudenet]'" in finding.reason
    assert "AGPL-3.0" in finding.reason


@pytest.mark.usefixtures("without_nudenet")
def test_load_raises_a_check_error_naming_the_extra() -> None:
    with pytest.raises(CheckError, match=r"genseal\[nudenet\]"):
        NudeNetCheck().load()


@pytest.mark.usefixtures("without_nudenet")
def test_the_screener_keeps_not_checked(astronaut: Image.Image) -> None:
    (finding,) = Screener([], [NudeNetCheck()]).screen_images([astronaut], Stage.INPUT)
    assert finding.state is CheckState.NOT_CHECKED


def test_threshold_comes_from_the_policy(tmp_path: Path) -> None:
    path = tmp_path / "nudenet.yaml"
    path.write_text('id: nn\nversion: "1"\nthresholds: {nudenet: 0.35}\n')
    assert NudeNetCheck.from_policy(Policy.load(path)).threshold == 0.35


def test_default_exposed_classes_are_the_sexual_ones() -> None:
    check = NudeNetCheck()
    assert len(NudeNetCheck.CLASSES) == 18
    assert check.exposed_classes == NudeNetCheck.SEXUAL_EXPOSED
    assert "FEET_EXPOSED" not in check.exposed_classes
    assert all(c.endswith("_EXPOSED") for c in check.exposed_classes)


@pytest.mark.parametrize(
    "kwargs",
    [{"threshold": 1.5}, {"exposed_classes": ["NOT_A_CLASS"]}, {"exposed_classes": []}],
)
def test_bad_configuration_is_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        NudeNetCheck(**kwargs)  # type: ignore[arg-type]


# --- the real detector (only when the extra is installed) --------------------------------


@pytest.fixture(scope="module")
def nudenet_check() -> NudeNetCheck:
    pytest.importorskip("nudenet")
    check = NudeNetCheck()
    check.load()
    return check


def test_everyday_photo_is_clean_with_its_detections(
    nudenet_check: NudeNetCheck, astronaut: Image.Image
) -> None:
    (finding,) = nudenet_check.check(astronaut, Stage.OUTPUT, image_index=1)

    assert finding.state is CheckState.CLEAN
    assert finding.score == 0.0 and finding.threshold == 0.5
    assert finding.details["exposed"] == []
    classes = [d["class"] for d in finding.details["detections"]]
    assert "FACE_FEMALE" in classes
    for detection in finding.details["detections"]:
        x, y, w, h = detection["box"]
        assert 0 <= x <= x + w <= 512 and 0 <= y <= y + h <= 512
        assert 0.0 <= detection["score"] <= 1.0
    assert finding.image_index == 1 and finding.latency_ms > 0


def test_version_pins_package_and_model_checksum(nudenet_check: NudeNetCheck) -> None:
    import nudenet

    model = Path(nudenet.__file__).with_name("320n.onnx")
    sha = hashlib.sha256(model.read_bytes()).hexdigest()
    assert nudenet_check.model_sha256 == sha
    assert f"sha256.{sha[:12]}" in nudenet_check.version
    assert "+nudenet.3." in nudenet_check.version


def test_a_class_counts_at_or_above_the_threshold(
    nudenet_check: NudeNetCheck, astronaut: Image.Image
) -> None:
    # The face stands in for an exposed class: the mapping and threshold are what is tested.
    face = next(d for d in nudenet_check.detect(astronaut) if d["class"] == "FACE_FEMALE")
    at_score = NudeNetCheck(face["score"], exposed_classes={"FACE_FEMALE"})
    above = NudeNetCheck(min(1.0, face["score"] + 0.01), exposed_classes={"FACE_FEMALE"})

    (flagged,) = at_score.check(astronaut, Stage.OUTPUT)
    (clean,) = above.check(astronaut, Stage.OUTPUT)

    assert flagged.state is CheckState.FLAGGED
    assert flagged.details["exposed"] == ["FACE_FEMALE"]
    assert flagged.reason and "FACE_FEMALE" in flagged.reason
    assert flagged.score == pytest.approx(face["score"])
    assert clean.state is CheckState.CLEAN and clean.score == pytest.approx(face["score"])


def test_any_pil_mode(nudenet_check: NudeNetCheck, astronaut: Image.Image) -> None:
    for image in (astronaut.convert("RGBA"), astronaut.convert("L"), astronaut.convert("P")):
        (finding,) = nudenet_check.check(image, Stage.INPUT)
        assert finding.state is CheckState.CLEAN


def test_missing_model_file_is_an_error(tmp_path: Path, astronaut: Image.Image) -> None:
    pytest.importorskip("nudenet")
    (finding,) = NudeNetCheck(model_path=tmp_path / "absent.onnx").check(astronaut, Stage.INPUT)
    assert finding.state is CheckState.ERROR
    assert finding.reason and "absent.onnx" in finding.reason
