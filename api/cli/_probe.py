"""``genseal probe``: bias probes, and the prompt sets they draw.

``genseal probe bias`` draws every prompt of the chosen sets with the same seeds through a
model, measures the perceived gender, age and skin tone of each image's largest face and writes
results.json and a self-contained report.html. ``--resume`` finishes an interrupted run;
``--compare RUN_A RUN_B`` sets two finished runs side by side.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from api.cli._help import GensealTyper
from api.cli._support import JsonOption, _dump, _errors, _settings, _size, err, out
from genseal.errors import InputError

probe_app = GensealTyper(
    help="Bias probes: measure whom a model draws (perceived gender, age, skin tone).",
    no_args_is_help=True,
)

_DEFAULT_OUT = Path("bias-probe")


@probe_app.command("bias")
def probe_bias(
    prompt_sets: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="A built-in prompt set (see `genseal probe sets`) or a YAML file of your own; "
            "repeat for several. Default: occupations.",
        ),
    ] = None,
    n: Annotated[int, typer.Option("--n", help="Images per prompt (seeds SEED, SEED+1, ...).")] = 4,
    seed: Annotated[
        int, typer.Option("--seed", help="First seed; every prompt uses the same.")
    ] = 0,
    model: Annotated[
        str | None, typer.Option("--model", help="tiny, a HF id or a directory (default: config).")
    ] = None,
    steps: Annotated[int | None, typer.Option("--steps", help="Denoising steps.")] = None,
    size: Annotated[str | None, typer.Option("--size", help="WxH, e.g. 512x512.")] = None,
    limit: Annotated[
        int | None, typer.Option("--limit", help="Only the first N prompts of each set.")
    ] = None,
    out_dir: Annotated[
        Path | None,
        typer.Option("--out", help="Run directory (default ./bias-probe, or the compare output)."),
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Finish the run already in --out.")
    ] = False,
    compare: Annotated[
        tuple[Path, Path] | None,
        typer.Option(
            "--compare",
            help="Compare two finished runs (directories or results.json files) instead of "
            "drawing: writes comparison.json and comparison.html to --out.",
            metavar="RUN_A RUN_B",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Draw prompt sets with fixed seeds and measure whom the model draws.

    Per image: faces found, perceived gender, perceived age band,
    skin tone (Monk scale and ITA), each with its uncertainty.

    Per prompt and overall: the distribution, its imbalance (HEIM),
    entropy, deviation from the set's reference where it gives one,
    and the share of images with no detectable face.

    Writes results.json and a self-contained report.html into --out.
    """
    with _errors(as_json):
        if compare is not None:
            _compare(compare, out_dir or Path("bias-comparison"), as_json)
            return
        _probe(
            prompt_sets=tuple(prompt_sets or ("occupations",)),
            n=n,
            seed=seed,
            model=model,
            steps=steps,
            size=size,
            limit=limit,
            out_dir=out_dir or _DEFAULT_OUT,
            resume=resume,
            as_json=as_json,
        )


@probe_app.command("sets")
def probe_sets(as_json: JsonOption = False) -> None:
    """List the built-in prompt sets."""
    from safety import builtin_prompt_sets, load_prompt_set

    with _errors(as_json):
        sets = [load_prompt_set(name) for name in builtin_prompt_sets()]
        if as_json:
            _dump(
                [
                    {
                        "name": s.name,
                        "description": s.description,
                        "source": s.source,
                        "prompts": len(s.prompts),
                        "with_reference": sum(1 for p in s.prompts if p.reference),
                    }
                    for s in sets
                ]
            )
            return
        table = Table("Set", "Prompts", "With reference", "Description")
        for s in sets:
            with_reference = sum(1 for p in s.prompts if p.reference)
            table.add_row(s.name, str(len(s.prompts)), str(with_reference), s.description)
        out.print(table)


def _probe(
    *,
    prompt_sets: tuple[str, ...],
    n: int,
    seed: int,
    model: str | None,
    steps: int | None,
    size: str | None,
    limit: int | None,
    out_dir: Path,
    resume: bool,
    as_json: bool,
) -> None:
    from gen import DiffusersBackend
    from gen.probe import REPORT_FILE, ProbeConfig, ProbeRun, render_report
    from safety import AttributeEstimator

    settings = _settings()
    parsed_size = _size(size)
    config = ProbeConfig(
        prompt_sets=prompt_sets,
        images_per_prompt=n,
        seed=seed,
        model=model or settings.model,
        steps=steps,
        size=parsed_size,
        limit=limit,
    )
    backend = DiffusersBackend.load(config.model, device=settings.device, offline=settings.offline)
    probe = ProbeRun(out_dir, config, backend, AttributeEstimator())
    with _progress(enabled=not as_json and sys.stderr.isatty()) as on_progress:
        results = probe.run(resume=resume, on_progress=on_progress)
    report = out_dir / REPORT_FILE
    report.write_text(render_report(results, out_dir), encoding="utf-8")
    overall = results["overall"]
    if as_json:
        _dump(
            {
                "results": str(out_dir / "results.json"),
                "report": str(report),
                "prompts": len(results["prompts"]),
                "overall": overall,
            }
        )
        return
    _print_overall(overall)
    # soft_wrap: paths stay whole on narrow terminals (and to grep).
    out.print(f"results: {out_dir / 'results.json'}\nreport:  {report}", soft_wrap=True)


def _print_overall(overall: dict[str, Any]) -> None:
    images, no_face = overall["image_count"], overall["no_face"]
    if images and no_face == images:
        err.print(
            f"[yellow]warning:[/] no face was found in any of the {images} images; "
            "the run measures nothing about whom the model draws"
        )
    elif no_face:
        err.print(f"[yellow]note:[/] no face was found in {no_face} of {images} images")
    per_prompt = overall.get("mean_prompt_imbalance") or {}
    table = Table("Attribute", "Measured", "Shares", "Imbalance", "Per prompt", "Entropy/max")
    for attribute, m in overall["metrics"].items():
        if not m.get("measured"):
            table.add_row(attribute, "0", "—", "—", "—", "—")
            continue
        shares = ", ".join(f"{c} {p:.0%}" for c, p in m["proportions"].items() if p > 0)
        table.add_row(
            attribute,
            str(m["measured"]),
            shares,
            f"{m['imbalance']:.3f}",
            "—" if per_prompt.get(attribute) is None else f"{per_prompt[attribute]:.3f}",
            f"{m['normalized_entropy']:.2f}",
        )
    out.print(table)


def _compare(runs: tuple[Path, Path], out_dir: Path, as_json: bool) -> None:
    from gen.probe import COMPARISON_FILE, compare_runs, load_results, render_comparison

    first, second = (load_results(path) for path in runs)
    comparison = compare_runs(first, second)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "comparison.json").write_text(json.dumps(comparison, indent=2) + "\n")
        (out_dir / COMPARISON_FILE).write_text(render_comparison(comparison), encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot write the comparison into {out_dir}: {exc.strerror}") from exc
    if as_json:
        _dump(comparison)
        return
    significant = [
        (p["text"], attribute)
        for p in [{"text": "overall", "attributes": comparison["overall"]["attributes"]}]
        + comparison["prompts"]
        for attribute, result in p["attributes"].items()
        if result.get("significant")
    ]
    out.print(
        f"{comparison['prompts_compared']} prompts compared; "
        f"{len(significant)} significant differences (p < 0.05)"
    )
    for text, attribute in significant[:20]:
        out.print(f"  [red]{attribute}[/]: {text}")
    out.print(f"comparison: {out_dir / COMPARISON_FILE}", soft_wrap=True)


@contextmanager
def _progress(*, enabled: bool) -> Iterator[Any]:
    if not enabled:
        yield None
        return
    columns = (
        TextColumn("[bold]probe"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.description}", style="dim"),
    )
    with Progress(*columns, console=err, transient=True) as bar:
        task = bar.add_task("", total=None)

        def update(done: int, total: int, label: str) -> None:
            bar.update(task, completed=done, total=total, description=label[:60])

        yield update
