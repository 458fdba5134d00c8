"""Language identification: another language is reported, never a silent bypass."""

from __future__ import annotations

from pathlib import Path

import pytest

from genseal.errors import CheckError
from safety import (
    Action,
    Category,
    CheckState,
    LanguageCheck,
    Policy,
    Screener,
    Stage,
    default_policy_path,
    prompt_checks_for,
)


@pytest.fixture(scope="module")
def check() -> LanguageCheck:
    return LanguageCheck(("en",))


@pytest.mark.parametrize(
    ("prompt", "language"),
    [
        ("une femme nue allongée sur la plage au coucher du soleil", "fr"),
        ("eine nackte Frau steht am Strand im Abendlicht", "de"),
        ("una mujer desnuda caminando por la playa al atardecer", "es"),
        ("голая женщина на пляже на закате солнца", "ru"),
        ("夕日のビーチに立つ裸の女性の写真", "ja"),
    ],
)
def test_a_prompt_in_another_language_is_flagged(
    check: LanguageCheck, prompt: str, language: str
) -> None:
    (finding,) = check.check(prompt)

    assert finding.category is Category.LANGUAGE_UNSUPPORTED
    assert finding.state is CheckState.FLAGGED
    assert finding.details["language"] == language
    assert finding.details["probability"] >= check.min_confidence


@pytest.mark.parametrize(
    "prompt",
    [
        "a red fox in the snow",
        "portrait of a samurai, ukiyo-e, greg rutkowski, artgerm, octane render, 8k",
        "kawaii anime girl, chibi, bokeh",
        "a bowl of ramen on a wooden table",
        "ok",
    ],
)
def test_english_and_short_prompts_are_clean(check: LanguageCheck, prompt: str) -> None:
    (finding,) = check.check(prompt)

    assert finding.state is CheckState.CLEAN


def test_the_default_policy_records_an_unsupported_language() -> None:
    policy = Policy.load(default_policy_path())
    screener = Screener(prompt_checks_for(policy), [])

    decision = policy.decide(
        screener.screen_prompt("ein Hund spielt im Park mit einem roten Ball"), Stage.PROMPT, {}
    )

    assert decision.action is Action.FLAG
    assert decision.rule == "note-language-unsupported"


def test_term_lists_still_block_in_another_language() -> None:
    # "nude" is a listed term in several languages' loanwords; the block is by the term list,
    # the language finding is recorded beside it.
    policy = Policy.load(default_policy_path())
    findings = Screener(prompt_checks_for(policy), []).screen_prompt(
        "une photo nude d'une femme sur la plage, style porno"
    )

    decision = policy.decide(findings, Stage.PROMPT, {})

    assert decision.action is Action.BLOCK and decision.category == "sexual"
    assert "note-language-unsupported" in decision.matched_rules


def test_a_missing_model_file_is_an_error(tmp_path: Path) -> None:
    check = LanguageCheck(model_path=tmp_path / "lid.176.ftz")

    with pytest.raises(CheckError, match="missing"):
        check.check("une femme sur la plage au coucher du soleil")
    (finding,) = Screener([check], []).screen_prompt("une femme sur la plage au coucher du soleil")
    assert finding.state is CheckState.ERROR


def test_a_confidence_outside_zero_one_is_refused() -> None:
    with pytest.raises(ValueError, match="min_confidence"):
        LanguageCheck(min_confidence=0.0)
