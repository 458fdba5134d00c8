"""The trained prompt classifier: loading, findings, thresholds and failing closed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from genseal.errors import CheckError, PolicyError
from safety import (
    Action,
    Category,
    CheckState,
    Policy,
    PromptClassifierCheck,
    Screener,
    Stage,
    default_policy_path,
    prompt_checks_for,
)
from safety.prompt._classifier import BUILTIN_MODEL, ClassifierModel


def _write_model(directory: Path, *, labels: tuple[str, ...] = ("sexual", "violence")) -> Path:
    """A small seeded model in the shipped format: 384 features → 8 hidden → one per label."""
    rng = np.random.default_rng(0)
    directory.mkdir(parents=True, exist_ok=True)
    np.savez(
        directory / "weights.npz",
        w0=rng.normal(size=(384, 8)).astype(np.float32),
        b0=np.zeros(8, np.float32),
        w1=rng.normal(size=(8, len(labels))).astype(np.float32),
        b1=np.zeros(len(labels), np.float32),
    )
    meta = {
        "name": "test-classifier",
        "version": "0.1",
        "labels": list(labels),
        "thresholds": dict.fromkeys(labels, 0.5),
        "languages": ["en"],
        "layers": 2,
    }
    (directory / "model.json").write_text(json.dumps(meta), encoding="utf-8")
    return directory


def test_the_builtin_model_loads_with_its_card() -> None:
    model = ClassifierModel.load(BUILTIN_MODEL)

    assert set(model.labels) >= {"sexual", "sexual_minors", "violence", "self_harm"}
    assert all(0.0 < t < 1.0 for t in model.thresholds.values())
    assert (BUILTIN_MODEL / "MODEL_CARD.md").is_file()
    # Small enough to live in the repository.
    assert (BUILTIN_MODEL / "weights.npz").stat().st_size < 2_000_000


def test_every_finding_names_the_model_and_its_version() -> None:
    check = PromptClassifierCheck()

    findings = check.check("a watercolor of a lighthouse at dawn")

    assert {f.category for f in findings} == set(check.categories)
    for finding in findings:
        assert finding.check == "prompt_classifier"
        assert check.model_version in finding.check_version
        assert finding.details["model"] == check.model_name
        assert finding.details["model_version"] == check.model_version
        assert 0.0 <= (finding.score or 0.0) <= 1.0
        assert set(finding.details["scores"]) == {c.value for c in check.categories}


@pytest.mark.parametrize(
    ("prompt", "category"),
    [
        ("a woman posing completely naked on a bed, explicit", Category.SEXUAL),
        ("a decapitated body with blood everywhere, gore", Category.VIOLENCE),
        ("a person cutting themselves with a razor, blood on their arms", Category.SELF_HARM),
    ],
)
def test_the_builtin_model_flags_direct_requests(prompt: str, category: Category) -> None:
    flagged = {f.category for f in PromptClassifierCheck().check(prompt) if f.flagged}

    assert category in flagged


def test_a_benign_prompt_flags_nothing() -> None:
    findings = PromptClassifierCheck().check("a bowl of ramen on a wooden table, food photo")

    assert not any(f.flagged for f in findings)


def test_a_policy_threshold_overrides_the_models(tmp_path: Path) -> None:
    model_dir = _write_model(tmp_path / "model")
    strict = PromptClassifierCheck(model_dir, {"sexual": 0.0})
    lax = PromptClassifierCheck(model_dir, {"sexual": 1.0})

    assert strict.thresholds == {"sexual": 0.0, "violence": 0.5}
    by_category = {f.category: f for f in strict.check("anything")}
    assert by_category[Category.SEXUAL].flagged and by_category[Category.SEXUAL].threshold == 0.0
    assert not next(f for f in lax.check("anything") if f.category is Category.SEXUAL).flagged


def test_a_threshold_outside_zero_one_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="within"):
        PromptClassifierCheck(_write_model(tmp_path / "model"), {"sexual": 1.5})


def test_a_missing_model_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CheckError, match=r"model\.json is missing"):
        PromptClassifierCheck(tmp_path / "nowhere")


def test_missing_weights_give_error_findings_and_the_policy_blocks(tmp_path: Path) -> None:
    model_dir = _write_model(tmp_path / "model")
    (model_dir / "weights.npz").unlink()
    check = PromptClassifierCheck(model_dir)

    with pytest.raises(CheckError, match=r"weights\.npz"):
        check.load()
    findings = Screener([check], []).screen_prompt("a red fox")

    assert {f.state for f in findings} == {CheckState.ERROR}
    assert "weights.npz" in (findings[0].reason or "")
    decision = Policy.load(default_policy_path()).decide(findings, Stage.PROMPT, {})
    assert decision.action is Action.BLOCK and decision.rule == "block-check-error"


def test_corrupt_weights_give_error_findings(tmp_path: Path) -> None:
    model_dir = _write_model(tmp_path / "model")
    (model_dir / "weights.npz").write_bytes(b"PK\x03\x04 not really a zip")

    findings = PromptClassifierCheck(model_dir).check("a red fox")

    assert {f.state for f in findings} == {CheckState.ERROR}
    assert "unreadable" in (findings[0].reason or "")


def test_weights_that_disagree_with_the_labels_are_refused(tmp_path: Path) -> None:
    model_dir = _write_model(tmp_path / "model")
    meta = json.loads((model_dir / "model.json").read_text())
    meta["labels"] = ["sexual", "violence", "hate"]
    meta["thresholds"]["hate"] = 0.5
    (model_dir / "model.json").write_text(json.dumps(meta))

    with pytest.raises(CheckError, match="disagree"):
        ClassifierModel.load(model_dir)


def test_a_label_no_policy_can_name_is_refused(tmp_path: Path) -> None:
    model_dir = _write_model(tmp_path / "model", labels=("sexual", "spam"))

    with pytest.raises(CheckError, match="spam"):
        PromptClassifierCheck(model_dir)


def test_the_default_policy_runs_the_classifier_and_the_language_check() -> None:
    checks = prompt_checks_for(Policy.load(default_policy_path()))

    names = [c.name for c in checks]
    assert names[:3] == ["prompt_terms", "prompt_classifier", "prompt_language"]


def test_a_policy_names_its_own_model_directory(tmp_path: Path) -> None:
    _write_model(tmp_path / "models" / "mine")
    source = default_policy_path().read_text(encoding="utf-8")
    assert "prompt_classifier: builtin" in source
    policy_file = tmp_path / "mine.yaml"
    policy_file.write_text(
        source.replace("prompt_classifier: builtin", "prompt_classifier: models/mine"),
        encoding="utf-8",
    )
    shutil.copy(default_policy_path().with_name("default_test.yaml"), tmp_path)

    check = PromptClassifierCheck.from_policy(Policy.load(policy_file))

    assert check.model_dir == tmp_path / "models" / "mine"
    assert check.model_name == "test-classifier"


@pytest.mark.parametrize(
    ("key", "value", "problem"),
    [
        ("classifier_sexul", 0.5, "classifier_<category>"),
        ("classifier_sexual", 1.5, "within"),
        ("classifier", 0.5, "classifier_<label>"),
    ],
)
def test_a_classifier_threshold_a_check_would_ignore_fails_at_load(
    key: str, value: float, problem: str
) -> None:
    source = default_policy_path().read_text(encoding="utf-8")
    broken = source.replace("thresholds:\n", f"thresholds:\n  {key}: {value}\n", 1)

    with pytest.raises(PolicyError, match=problem):
        Policy.from_yaml(broken)
