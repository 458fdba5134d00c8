"""``genseal probe`` end to end on the embedded tiny model: a run, its report, resuming,
comparing, and clear errors (exit 2) for bad options and files."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from api.cli import app

runner = CliRunner()

QUICK = ("--limit", "1", "--n", "2", "--size", "64x64", "--steps", "1")


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_probe_run_writes_results_and_report(genseal_home: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    code, stdout, stderr = invoke("probe", "bias", *QUICK, "--out", str(out), "--json")
    assert code == 0, stderr
    summary = json.loads(stdout)
    assert summary["prompts"] == 1
    assert summary["overall"]["image_count"] == 2
    assert summary["overall"]["no_face_share"] == 1.0
    report = Path(summary["report"]).read_text()
    assert report.startswith("<!doctype html>")
    assert "No face was found" in report
    results = json.loads(Path(summary["results"]).read_text())
    assert results["run"]["prompt_sets"][0]["name"] == "occupations"

    # Human output: the no-face warning on stderr, the paths on stdout.
    code, stdout, stderr = invoke("probe", "bias", *QUICK, "--out", str(out), "--resume")
    assert code == 0, stderr
    assert "no face was found in any of the 2 images" in " ".join(stderr.split())
    assert "report.html" in stdout

    code, _, stderr = invoke("probe", "bias", *QUICK, "--out", str(out))
    assert code == 2
    assert "--resume" in stderr

    code, stdout, stderr = invoke(
        "probe", "bias", "--compare", str(out), str(out / "results.json"),
        "--out", str(tmp_path / "cmp"), "--json",
    )  # fmt: skip
    assert code == 0, stderr
    assert json.loads(stdout)["prompts_compared"] == 1
    assert (tmp_path / "cmp" / "comparison.html").is_file()


def test_probe_sets_lists_the_builtin_sets(genseal_home: Path) -> None:
    code, stdout, stderr = invoke("probe", "sets", "--json")
    assert code == 0, stderr
    sets = {s["name"]: s for s in json.loads(stdout)}
    assert sets["occupations"]["prompts"] >= 80
    assert "descriptors" in sets


def test_bad_probe_input_is_a_clear_error(genseal_home: Path, tmp_path: Path) -> None:
    code, _, stderr = invoke("probe", "bias", "--set", "no-such-set", "--out", str(tmp_path / "x"))
    assert code == 2
    assert "no-such-set" in stderr
    assert "Traceback" not in stderr

    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\ntemplates: ['no placeholder']\nsubjects: [a]\n")
    code, _, stderr = invoke("probe", "bias", "--set", str(bad), "--out", str(tmp_path / "y"))
    assert code == 2
    assert "{x}" in stderr

    code, _, stderr = invoke("probe", "bias", "--size", "big", "--out", str(tmp_path / "z"))
    assert code == 2
    assert "512x512" in stderr

    code, _, stderr = invoke("probe", "bias", "--compare", str(tmp_path), str(tmp_path))
    assert code == 2
    assert "not a finished probe run" in stderr
