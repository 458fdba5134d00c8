"""Screener: runs every check, and turns failures into ERROR and gaps into NOT_CHECKED, never
clean."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from PIL import Image
from skimage import data

from genseal.errors import ConfigError
from safety import (
    Category,
    CheckState,
    Finding,
    ImageCheck,
    OpenNsfwCheck,
    PromptCheck,
    Screener,
    Stage,
    TermListCheck,
)


class ExplodingCheck:
    """A check that cannot run (stands in for a crashed classifier or a lost backend)."""

    name = "exploding"
    version = "0"
    categories: tuple[Category, ...] = (Category.SEXUAL, Category.MINORS)

    def check(self, image: Image.Image, stage: Stage, image_index: int = 0) -> list[Finding]:
        raise RuntimeError("backend went away")


class ExplodingPromptCheck:
    name = "exploding_prompt"
    version = "0"
    categories = (Category.HATE,)

    def check(self, prompt: str) -> list[Finding]:
        raise MemoryError("out of memory")


class ForgetfulCheck:
    """Declares two categories but reports only one."""

    name = "forgetful"
    version = "0"
    categories = (Category.VIOLENCE, Category.SELF_HARM)

    def check(self, image: Image.Image, stage: Stage, image_index: int = 0) -> list[Finding]:
        return [
            Finding(
                check=self.name,
                check_version=self.version,
                category=Category.VIOLENCE,
                stage=stage,
                state=CheckState.CLEAN,
                score=0.0,
                image_index=image_index,
            )
        ]


def test_the_real_checks_satisfy_the_protocols() -> None:
    assert isinstance(OpenNsfwCheck(), ImageCheck)
    assert isinstance(TermListCheck({Category.SEXUAL: ["nude"]}), PromptCheck)
    assert isinstance(ExplodingCheck(), ImageCheck)


def test_screen_images_runs_every_check_on_every_image(nsfw_check: OpenNsfwCheck) -> None:
    screener = Screener([], [nsfw_check])
    images = [Image.fromarray(data.astronaut()), Image.fromarray(data.coffee())]

    findings = screener.screen_images(images, Stage.OUTPUT)

    assert [(f.check, f.image_index, f.state) for f in findings] == [
        ("opennsfw", 0, CheckState.CLEAN),
        ("opennsfw", 1, CheckState.CLEAN),
    ]
    assert screener.screen_images([], Stage.OUTPUT) == []


def test_a_raising_image_check_yields_an_error_per_category(
    nsfw_check: OpenNsfwCheck, caplog: pytest.LogCaptureFixture
) -> None:
    screener = Screener([], [ExplodingCheck(), nsfw_check])
    image = Image.fromarray(data.chelsea())

    with caplog.at_level(logging.WARNING, logger="safety._screener"):
        findings = screener.screen_images([image], Stage.INPUT)

    failed = [f for f in findings if f.check == "exploding"]
    assert [f.category for f in failed] == [Category.SEXUAL, Category.MINORS]
    for finding in failed:
        assert finding.state is CheckState.ERROR
        assert finding.score is None and not finding.as_cel()["checked"]
        assert finding.as_cel()["errored"]
        assert finding.reason and "RuntimeError: backend went away" in finding.reason
        assert finding.stage is Stage.INPUT and finding.image_index == 0
    # The other check still ran.
    assert any(f.check == "opennsfw" and f.state is CheckState.CLEAN for f in findings)
    assert "exploding" in caplog.text and "backend went away" in caplog.text


def test_a_raising_prompt_check_yields_an_error() -> None:
    screener = Screener([TermListCheck({Category.SEXUAL: ["nude"]}), ExplodingPromptCheck()], [])

    findings = screener.screen_prompt("a nude figure")

    assert [(f.check, f.category, f.state) for f in findings] == [
        ("prompt_terms", Category.SEXUAL, CheckState.FLAGGED),
        ("exploding_prompt", Category.HATE, CheckState.ERROR),
    ]
    assert findings[1].stage is Stage.PROMPT and findings[1].image_index is None
    assert findings[1].reason and "MemoryError" in findings[1].reason


def test_a_category_left_out_by_a_check_is_not_checked() -> None:
    findings = Screener([], [ForgetfulCheck()]).screen_images(
        [Image.new("RGB", (8, 8))], Stage.OUTPUT
    )

    assert [(f.category, f.state) for f in findings] == [
        (Category.VIOLENCE, CheckState.CLEAN),
        (Category.SELF_HARM, CheckState.NOT_CHECKED),
    ]


def test_a_broken_model_screens_as_an_error(tmp_path: Path) -> None:
    screener = Screener([], [OpenNsfwCheck(model_path=tmp_path / "missing.onnx")])

    (finding,) = screener.screen_images([Image.fromarray(data.coffee())], Stage.OUTPUT)

    assert finding.state is CheckState.ERROR


def test_a_check_without_categories_is_a_configuration_error() -> None:
    class Nameless(ExplodingCheck):
        categories = ()

    with pytest.raises(ConfigError, match="exploding"):
        Screener([], [Nameless()])
