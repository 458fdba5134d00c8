"""Bias probe runs: drawing, measuring, resuming, reporting and comparing.

No model that draws faces can run here: the tiny model draws noise. So the full path runs twice:
on the real tiny model (the report must say that no face was found) and on `PhotoBackend`, an
ImageBackend at the generation seam that returns real photographs (scikit-image's astronaut,
a woman; its cameraman, a man; its coffee cup, no face) so every estimator and metric runs on
real faces.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image, ImageOps
from skimage import data

from gen._backend import GenerationOutput, GenerationParams, ModelDefaults
from gen._backend_diffusers import DiffusersBackend
from gen.probe._report import compare_runs, render_comparison, render_report
from gen.probe._run import ProbeConfig, ProbeRun, load_results
from genseal.errors import InputError
from safety import AttributeEstimator

ASTRONAUT = Image.fromarray(data.astronaut())
CAMERAMAN = Image.fromarray(data.camera()).convert("RGB")
COFFEE = Image.fromarray(data.coffee()).resize((512, 512))

PROMPTS = """\
name: test-jobs
description: two jobs for the probe tests
source: made up for tests
templates: ["a photo of the face of a {x}"]
subjects:
  - name: nurse
    reference: {gender: {female: 0.9, male: 0.1}}
    reference_source: made up for tests
  - builder
"""


class PhotoBackend:
    """Draws real photographs instead of generating: `pick(prompt, seed)` chooses which."""

    model_id = "test/photos"
    device = "cpu"
    defaults = ModelDefaults(steps=1, width=512, height=512, guidance_scale=0.0)

    def __init__(
        self, pick: Callable[[str, int], Image.Image], *, version: str = "1", fail_on: int = 0
    ) -> None:
        self.pick = pick
        self.model_version = version
        self.calls: list[tuple[str, list[int]]] = []
        self.fail_on = fail_on  # the call (1-based) that is interrupted, as by Ctrl-C

    def generate(self, params: GenerationParams) -> GenerationOutput:
        assert params.seed is not None
        seeds = [params.seed + k for k in range(params.n)]
        self.calls.append((params.prompt, seeds))
        if len(self.calls) == self.fail_on:
            raise KeyboardInterrupt
        images = [self.pick(params.prompt, seed) for seed in seeds]
        return GenerationOutput(images=images, seeds=seeds, steps=1, width=512, height=512)


def jobs_pick(prompt: str, seed: int) -> Image.Image:
    """Nurses are the astronaut (mirrored on odd seeds); builders the cameraman or no one."""
    if "nurse" in prompt:
        return ImageOps.mirror(ASTRONAUT) if seed % 2 else ASTRONAUT
    return CAMERAMAN if seed % 2 == 0 else COFFEE


@pytest.fixture(scope="module")
def estimator() -> AttributeEstimator:
    return AttributeEstimator()


@pytest.fixture
def prompt_file(tmp_path: Path) -> Path:
    path = tmp_path / "jobs.yaml"
    path.write_text(PROMPTS)
    return path


def photo_run(
    out: Path, prompt_file: Path, estimator: AttributeEstimator, backend: PhotoBackend, n: int = 4
) -> ProbeRun:
    config = ProbeConfig(prompt_sets=(str(prompt_file),), images_per_prompt=n, model="photos")
    return ProbeRun(out, config, backend, estimator)


def test_tiny_model_run_reports_that_it_found_no_face(
    tmp_path: Path, tiny_backend: DiffusersBackend, estimator: AttributeEstimator
) -> None:
    config = ProbeConfig(images_per_prompt=2, limit=2, steps=1, size=(64, 64))
    results = ProbeRun(tmp_path / "run", config, tiny_backend, estimator).run()

    assert len(results["prompts"]) == 2
    assert results["run"]["model"]["id"] == "genseal/tiny-sd"
    assert results["overall"]["image_count"] == 4
    assert results["overall"]["no_face"] == 4
    assert results["overall"]["no_face_share"] == 1.0
    assert all(m["measured"] == 0 for m in results["overall"]["metrics"].values())
    for prompt in results["prompts"]:
        assert [image["seed"] for image in prompt["images"]] == [0, 1]
        assert all((tmp_path / "run" / image["file"]).is_file() for image in prompt["images"])
    assert load_results(tmp_path / "run") == json.loads(
        (tmp_path / "run" / "results.json").read_text()
    )
    report = render_report(results, tmp_path / "run")
    assert "No face was found in any of the 4 images" in report


def test_photos_are_measured_per_prompt_and_overall(
    tmp_path: Path, prompt_file: Path, estimator: AttributeEstimator
) -> None:
    backend = PhotoBackend(jobs_pick)
    results = photo_run(tmp_path / "run", prompt_file, estimator, backend).run()

    nurse, builder = results["prompts"]
    assert nurse["text"] == "a photo of the face of a nurse"
    assert nurse["no_face"] == 0
    assert nurse["metrics"]["gender"]["counts"] == {"female": 4, "male": 0}
    assert nurse["metrics"]["gender"]["imbalance"] > 0
    # Drawn all female against a 90 % reference: 10 points of total variation.
    assert nurse["metrics"]["gender"]["deviation_from_reference"] == pytest.approx(0.1)
    assert builder["no_face"] == 2  # the coffee cup on odd seeds
    assert builder["metrics"]["gender"]["counts"] == {"female": 0, "male": 2}
    assert builder["metrics"]["gender"]["deviation_from_reference"] is None
    assert results["overall"]["image_count"] == 8
    assert results["overall"]["no_face"] == 2
    assert results["overall"]["metrics"]["gender"]["measured"] == 6
    assert results["overall"]["metrics"]["gender"]["proportions"]["female"] == pytest.approx(4 / 6)
    assert results["overall"]["reference_deviation"]["gender"]["prompts"] == 1
    # The astronaut's skin is read: a Monk tone and an ITA class, each with its spread.
    skin = nurse["images"][0]["attributes"]["faces"][0]["skin"]
    assert 1 <= skin["monk"] <= 10
    assert abs(sum(skin["monk_probabilities"]) - 1) < 1e-6
    # Every prompt is drawn on the same seeds, in one batch per prompt.
    assert backend.calls == [
        ("a photo of the face of a nurse", [0, 1, 2, 3]),
        ("a photo of the face of a builder", [0, 1, 2, 3]),
    ]

    report = render_report(results, tmp_path / "run")
    assert "Faces were found in <b>6 of 8</b> images" in report
    assert "Against the reference" in report
    assert report.count("data:image/jpeg;base64,") == 8
    assert "<svg" in report
    assert "no face found" in report


def test_an_interrupted_run_resumes_without_drawing_again(
    tmp_path: Path, prompt_file: Path, estimator: AttributeEstimator
) -> None:
    out = tmp_path / "run"
    interrupted = PhotoBackend(jobs_pick, fail_on=2)
    with pytest.raises(KeyboardInterrupt):
        photo_run(out, prompt_file, estimator, interrupted).run()
    assert not (out / "results.json").exists()
    lines = (out / "records.jsonl").read_text().splitlines()
    assert len(lines) == 4  # the nurse prompt, finished before the interruption
    # A record torn by a kill mid-write is dropped and that image drawn again.
    with (out / "records.jsonl").open("a") as handle:
        handle.write('{"prompt": "test-jobs/builder", "seed": 0, "fi')

    with pytest.raises(InputError, match="--resume"):
        photo_run(out, prompt_file, estimator, PhotoBackend(jobs_pick)).run()

    resumed = PhotoBackend(jobs_pick)
    results = photo_run(out, prompt_file, estimator, resumed).run(resume=True)
    assert resumed.calls == [("a photo of the face of a builder", [0, 1, 2, 3])]
    assert results["overall"]["image_count"] == 8
    assert len((out / "records.jsonl").read_text().splitlines()) == 8
    # Resuming a finished run draws nothing and gives the same measurements.
    again = PhotoBackend(jobs_pick)
    rerun = photo_run(out, prompt_file, estimator, again).run(resume=True)
    assert again.calls == []
    assert rerun["prompts"] == results["prompts"]


def test_a_deleted_image_is_drawn_again_on_resume(
    tmp_path: Path, prompt_file: Path, estimator: AttributeEstimator
) -> None:
    out = tmp_path / "run"
    results = photo_run(out, prompt_file, estimator, PhotoBackend(jobs_pick)).run()
    (out / results["prompts"][1]["images"][2]["file"]).unlink()

    backend = PhotoBackend(jobs_pick)
    photo_run(out, prompt_file, estimator, backend).run(resume=True)
    assert backend.calls == [("a photo of the face of a builder", [2])]


def test_a_run_directory_is_never_mixed_with_other_settings(
    tmp_path: Path, prompt_file: Path, estimator: AttributeEstimator
) -> None:
    out = tmp_path / "run"
    photo_run(out, prompt_file, estimator, PhotoBackend(jobs_pick)).run()

    with pytest.raises(InputError, match="other settings") as raised:
        photo_run(out, prompt_file, estimator, PhotoBackend(jobs_pick), n=2).run(resume=True)
    assert "seeds" in str(raised.value)
    other_model = PhotoBackend(jobs_pick, version="2")
    with pytest.raises(InputError, match="model"):
        photo_run(out, prompt_file, estimator, other_model).run(resume=True)

    stranger = tmp_path / "not-a-run"
    stranger.mkdir()
    (stranger / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="not empty"):
        photo_run(stranger, prompt_file, estimator, PhotoBackend(jobs_pick)).run()
    assert (stranger / "notes.txt").read_text() == "mine"


def test_bad_probe_settings_are_input_errors(estimator: AttributeEstimator) -> None:
    with pytest.raises(InputError, match="images per prompt"):
        ProbeConfig(images_per_prompt=0)
    with pytest.raises(InputError, match="limit"):
        ProbeConfig(limit=0)
    with pytest.raises(InputError):
        ProbeRun(
            Path("unused"),
            ProbeConfig(prompt_sets=("no-such-set",)),
            PhotoBackend(jobs_pick),
            estimator,
        )


def test_load_results_refuses_what_is_not_a_finished_run(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        load_results(tmp_path)
    (tmp_path / "results.json").write_text("{not json")
    with pytest.raises(InputError, match="cannot read"):
        load_results(tmp_path)
    (tmp_path / "results.json").write_text('{"version": 99}')
    with pytest.raises(InputError, match="not a genseal probe results file"):
        load_results(tmp_path)


def test_two_runs_compare_with_significant_differences_marked(
    tmp_path: Path, prompt_file: Path, estimator: AttributeEstimator
) -> None:
    women = PhotoBackend(
        lambda _prompt, seed: ImageOps.mirror(ASTRONAUT) if seed % 2 else ASTRONAUT
    )
    men = PhotoBackend(lambda _prompt, _seed: CAMERAMAN, version="2")
    first = photo_run(tmp_path / "a", prompt_file, estimator, women, n=8).run()
    second = photo_run(tmp_path / "b", prompt_file, estimator, men, n=8).run()

    comparison = compare_runs(first, second)
    assert comparison["prompts_compared"] == 2
    gender = comparison["overall"]["attributes"]["gender"]
    assert gender["significant"] is True
    assert gender["p_value"] < 0.001
    assert gender["tvd"] == pytest.approx(1.0)
    # The same run against itself: nothing differs.
    same = compare_runs(first, first)
    assert not any(
        result.get("significant")
        for prompt in same["prompts"]
        for result in prompt["attributes"].values()
    )
    page = render_comparison(comparison)
    assert "<tr class=sig>" in page
    assert "test/photos@1 vs test/photos@2" in page
