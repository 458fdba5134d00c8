"""ClipConceptCheck mechanics on a real open_clip model with random weights.

No pretrained CLIP weights can be had offline, so these tests build a tiny open_clip
architecture (a `local-dir:` config), initialise it with a fixed seed and save it as the local
checkpoint the check loads, exactly as it would load real weights. They assert the mechanics —
embedding shapes, one finding per category, thresholds applied, the checkpoint really loaded
(strictly), not_checked without weights, error on a bad checkpoint — and nothing about
accuracy: random weights score noise.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data

from genseal.errors import CheckError, ConfigError
from safety import Category, CheckState, ClipConceptCheck, Policy, Screener, Stage
from safety.image._clip_concepts import DEFAULT_CONCEPTS

EMBED_DIM = 32


def _tiny_clip(directory: Path, *, seed: int, embed_dim: int = EMBED_DIM) -> tuple[str, Path]:
    """A two-layer ViT/text CLIP: (open_clip model name, checkpoint path)."""
    import open_clip
    import torch

    directory.mkdir(parents=True, exist_ok=True)
    config = {
        "model_cfg": {
            "embed_dim": embed_dim,
            "vision_cfg": {
                "image_size": 64,
                "layers": 2,
                "width": 64,
                "head_width": 32,
                "patch_size": 16,
            },
            "text_cfg": {
                "context_length": 77,
                "vocab_size": 49408,
                "width": 64,
                "heads": 2,
                "layers": 2,
            },
        },
        "preprocess_cfg": {},
    }
    (directory / "open_clip_config.json").write_text(json.dumps(config))
    model_name = f"local-dir:{directory}"
    torch.manual_seed(seed)
    model = open_clip.create_model(model_name, pretrained=None, load_weights=False)
    weights = directory / "weights.pt"
    torch.save(model.state_dict(), weights)
    return model_name, weights


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    return _tiny_clip(tmp_path_factory.mktemp("clip") / "tiny", seed=0)


@pytest.fixture(scope="module")
def clip_check(tiny: tuple[str, Path]) -> ClipConceptCheck:
    check = ClipConceptCheck(*tiny)
    check.load()
    return check


@pytest.fixture(scope="module")
def astronaut() -> Image.Image:
    return Image.fromarray(data.astronaut())


# --- without weights: not checked, never clean --------------------------------------------


def test_without_weights_every_category_is_not_checked(astronaut: Image.Image) -> None:
    check = ClipConceptCheck()

    findings = check.check(astronaut, Stage.OUTPUT, image_index=3)

    assert not check.configured
    assert [f.category for f in findings] == list(DEFAULT_CONCEPTS)
    for finding in findings:
        assert finding.state is CheckState.NOT_CHECKED
        assert finding.score is None
        assert finding.image_index == 3
        assert finding.reason == (
            "no CLIP weights configured: set GENSEAL_CLIP_WEIGHTS to a local open_clip checkpoint"
        )
    assert "weights.none" in findings[0].check_version


def test_an_architecture_alone_is_still_not_checked(astronaut: Image.Image) -> None:
    findings = ClipConceptCheck("ViT-B-32").check(astronaut, Stage.INPUT)
    assert {f.state for f in findings} == {CheckState.NOT_CHECKED}


def test_load_without_weights_says_what_to_configure() -> None:
    with pytest.raises(ConfigError, match="GENSEAL_CLIP_WEIGHTS"):
        ClipConceptCheck().load()


def test_the_screener_keeps_not_checked(astronaut: Image.Image) -> None:
    findings = Screener([], [ClipConceptCheck()]).screen_images([astronaut], Stage.OUTPUT)
    assert len(findings) == len(DEFAULT_CONCEPTS)
    assert all(f.state is CheckState.NOT_CHECKED for f in findings)


# --- mechanics with (random) weights ------------------------------------------------------


def test_one_finding_per_category_with_the_closest_concept(
    clip_check: ClipConceptCheck, astronaut: Image.Image, tiny: tuple[str, Path]
) -> None:
    findings = clip_check.check(astronaut, Stage.OUTPUT, image_index=1)
    similarities = clip_check.similarities(astronaut)
    sha = hashlib.sha256(tiny[1].read_bytes()).hexdigest()

    assert [f.category for f in findings] == list(DEFAULT_CONCEPTS)
    for finding in findings:
        values = similarities[finding.category]
        assert set(values) == set(DEFAULT_CONCEPTS[finding.category])
        best = max(values, key=values.__getitem__)
        assert finding.state in (CheckState.CLEAN, CheckState.FLAGGED)
        assert finding.details["concept"] == best
        assert finding.details["similarity"] == pytest.approx(values[best], abs=1e-5)
        assert finding.score == pytest.approx(min(1.0, max(0.0, values[best])), abs=1e-5)
        assert finding.threshold == 0.25
        assert finding.details["model"] == tiny[0]
        assert finding.details["weights"] == "weights.pt"
        assert finding.details["weights_sha256"] == sha
        assert finding.check == "clip_concepts"
        assert finding.check_version == clip_check.version
        assert f"weights.sha256.{sha[:12]}" in finding.check_version
        assert finding.image_index == 1 and finding.latency_ms > 0
        assert all(-1.0 - 1e-5 <= v <= 1.0 + 1e-5 for v in values.values())


def test_embedding_shapes_and_norms(clip_check: ClipConceptCheck, astronaut: Image.Image) -> None:
    image_embedding = clip_check.embed(astronaut)
    text_embeddings = clip_check._ensure_loaded().text_embeddings
    n_concepts = sum(len(t) for t in DEFAULT_CONCEPTS.values())

    assert tuple(image_embedding.shape) == (1, EMBED_DIM)
    assert tuple(text_embeddings.shape) == (n_concepts, EMBED_DIM)
    np.testing.assert_allclose(image_embedding.norm(dim=-1).numpy(), 1.0, atol=1e-5)
    np.testing.assert_allclose(text_embeddings.norm(dim=-1).numpy(), 1.0, atol=1e-5)


def test_thresholds_are_applied_per_category(
    tiny: tuple[str, Path], clip_check: ClipConceptCheck, astronaut: Image.Image
) -> None:
    similarities = clip_check.similarities(astronaut)
    best = {c: max(v.values()) for c, v in similarities.items()}
    category = max(best, key=best.__getitem__)
    top = best[category]
    assert top > 0  # a fixed seed: some concept of 24 sits on the image's side

    at_score = ClipConceptCheck(*tiny, thresholds={category: top})
    above = ClipConceptCheck(*tiny, thresholds={category: min(1.0, top + 1e-3)})
    by_category_at = {f.category: f for f in at_score.check(astronaut, Stage.OUTPUT)}
    by_category_above = {f.category: f for f in above.check(astronaut, Stage.OUTPUT)}

    flagged = by_category_at[category]
    assert flagged.state is CheckState.FLAGGED and flagged.threshold == top
    assert flagged.reason and repr(flagged.details["concept"]) in flagged.reason
    assert by_category_above[category].state is CheckState.CLEAN
    # The other categories keep the default threshold, unaffected.
    for other in set(best) - {category}:
        assert by_category_at[other].threshold == 0.25


def test_the_checkpoint_is_really_loaded(
    tmp_path: Path, tiny: tuple[str, Path], clip_check: ClipConceptCheck, astronaut: Image.Image
) -> None:
    # Same file → same scores; other weights of the same architecture → other scores.
    again = ClipConceptCheck(*tiny).similarities(astronaut)
    other = ClipConceptCheck(*_tiny_clip(tmp_path / "other", seed=1)).similarities(astronaut)
    ours = clip_check.similarities(astronaut)

    sexual = DEFAULT_CONCEPTS[Category.SEXUAL][0]
    assert again[Category.SEXUAL][sexual] == pytest.approx(ours[Category.SEXUAL][sexual], abs=1e-6)
    assert abs(other[Category.SEXUAL][sexual] - ours[Category.SEXUAL][sexual]) > 1e-4


def test_custom_concepts_choose_the_categories(
    tiny: tuple[str, Path], astronaut: Image.Image
) -> None:
    concepts = {Category.VIOLENCE: ["a knife fight", "a knife fight", " "], Category.HATE: ["x"]}
    check = ClipConceptCheck(*tiny, concepts=concepts)

    findings = check.check(astronaut, Stage.INPUT)

    assert check.categories == (Category.VIOLENCE, Category.HATE)
    assert check.concepts[Category.VIOLENCE] == ("a knife fight",)  # deduplicated, blank dropped
    assert [f.category for f in findings] == [Category.VIOLENCE, Category.HATE]
    assert findings[0].details["concept"] == "a knife fight"
    assert check.version.split("+concepts.")[1] != ClipConceptCheck().version.split("+concepts.")[1]


def test_the_image_is_never_altered(clip_check: ClipConceptCheck, astronaut: Image.Image) -> None:
    before = astronaut.tobytes()
    strict = ClipConceptCheck(clip_check.model, clip_check.weights, default_threshold=1e-9)
    findings = strict.check(astronaut, Stage.OUTPUT)
    assert any(f.flagged for f in findings)  # flagged, and still the same pixels
    assert astronaut.tobytes() == before


def test_any_pil_mode(clip_check: ClipConceptCheck) -> None:
    grey = Image.fromarray(data.camera())
    for image in (grey, grey.convert("RGBA"), grey.convert("P")):
        findings = clip_check.check(image, Stage.INPUT)
        assert {f.state for f in findings} <= {CheckState.CLEAN, CheckState.FLAGGED}


def test_thresholds_come_from_the_policy(tmp_path: Path) -> None:
    path = tmp_path / "clip.yaml"
    path.write_text('id: clip\nversion: "1"\nthresholds: {clip: 0.3, clip_sexual: 0.2}\n')
    check = ClipConceptCheck.from_policy(Policy.load(path))

    assert check.thresholds[Category.SEXUAL] == 0.2
    assert check.thresholds[Category.VIOLENCE] == 0.3


# --- failures: error, never clean ---------------------------------------------------------


def test_corrupt_checkpoint_is_an_error_for_every_category(
    tmp_path: Path, tiny: tuple[str, Path], astronaut: Image.Image
) -> None:
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(tiny[1].read_bytes()[:4096])
    check = ClipConceptCheck(tiny[0], corrupt)

    findings = check.check(astronaut, Stage.OUTPUT)

    assert [f.category for f in findings] == list(DEFAULT_CONCEPTS)
    assert {f.state for f in findings} == {CheckState.ERROR}
    assert all(f.score is None and f.reason and "corrupt.pt" in f.reason for f in findings)
    with pytest.raises(CheckError, match=r"corrupt\.pt"):
        check.load()


def test_checkpoint_of_another_architecture_is_an_error(
    tmp_path: Path, tiny: tuple[str, Path], astronaut: Image.Image
) -> None:
    _, wider = _tiny_clip(tmp_path / "wider", seed=0, embed_dim=EMBED_DIM * 2)
    findings = ClipConceptCheck(tiny[0], wider).check(astronaut, Stage.OUTPUT)
    assert {f.state for f in findings} == {CheckState.ERROR}
    assert findings[0].reason and "size mismatch" in findings[0].reason


def test_missing_checkpoint_is_an_error(tmp_path: Path, astronaut: Image.Image) -> None:
    findings = ClipConceptCheck("ViT-B-32", tmp_path / "absent.pt").check(astronaut, Stage.INPUT)
    assert {f.state for f in findings} == {CheckState.ERROR}
    assert findings[0].reason and "absent.pt" in findings[0].reason


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"weights": "w.pt"}, ConfigError),
        ({"model": "hf-hub:laion/CLIP-ViT-B-32", "weights": "w.pt"}, ConfigError),
        ({"concepts": {}}, ConfigError),
        ({"concepts": {Category.HATE: [" "]}}, ConfigError),
        ({"default_threshold": 0.0}, ValueError),
        ({"thresholds": {Category.SEXUAL: 1.5}}, ValueError),
    ],
)
def test_bad_configuration_is_refused(kwargs: dict[str, object], error: type[Exception]) -> None:
    with pytest.raises(error):
        ClipConceptCheck(**kwargs)  # type: ignore[arg-type]
