"""Human-readable rendering of results and reports for the terminal (rich); the provenance
report has its own module, ``_render_report``."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

from gen import GenerationResult, ScreenResult
from safety import Finding

__all__ = [
    "findings_table",
    "render_generation",
    "render_screen",
]

_STATE_STYLE = {
    "flagged": "bold red",
    "clean": "green",
    "not_checked": "yellow",
    "error": "bold red",
}


def findings_table(findings: list[Finding], title: str = "Findings") -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("stage", "image", "check", "category", "state", "score", "reason"):
        table.add_column(column)
    for f in findings:
        table.add_row(
            f.stage.value,
            "" if f.image_index is None else str(f.image_index),
            f"{f.check} {f.check_version}",
            f.category.value,
            f"[{_STATE_STYLE[f.state.value]}]{f.state.value}[/]",
            "" if f.score is None else f"{f.score:.3f}",
            f.reason or "",
        )
    return table


def render_generation(console: Console, result: GenerationResult, paths: list[Path]) -> None:
    decision = result.decision
    if result.released:
        console.print(
            f"[bold green]released[/] {len(result.images)} image(s)"
            + (f", withheld {len(result.withheld)}" if result.withheld else "")
            + (f", held for review {len(result.held)}" if result.held else "")
            + f" — policy {decision.policy_id} v{decision.policy_version}"
        )
    elif result.status == "held":
        console.print(
            f"[bold yellow]held for review[/] {len(result.held)} image(s) by rule"
            f" [bold]{decision.rule or 'default'}[/]: nothing released until a reviewer approves"
        )
    else:
        console.print(
            "[bold red]blocked[/]"
            + (f" ({decision.category.value})" if decision.category else "")
            + f" by rule [bold]{decision.rule or 'default'}[/]"
            f" ({decision.stage.value}): {decision.message or 'blocked by policy'}"
        )
    findings = list(result.findings)
    for image in result.images:
        findings += [f for f in image.findings if f.stage.value == "output"]
    for withheld in result.withheld:
        findings += withheld.findings
    if findings:
        console.print(findings_table(findings))
    for image, path in zip(result.images, paths, strict=True):
        console.print(
            f"  [bold]{path}[/]  manifest {image.manifest_id}  watermark {image.watermark}"
            + (f"  seed {image.seed}" if image.seed is not None else "")
        )
    for withheld in result.withheld:
        console.print(
            f"  [red]withheld image {withheld.index}[/]: rule {withheld.decision.rule}"
            f" — {withheld.decision.message}"
        )
    for held in result.held:
        console.print(
            f"  [yellow]held image {held.index}[/]: review {held.review_id}"
            f" (rule {held.decision.rule})"
        )
    if decision.shadow is not None:
        console.print(
            f"  [dim]shadow: would have been {decision.shadow.action.value}"
            f" by rule {decision.shadow.rule or 'default'} ({decision.shadow.policy_id})[/]"
        )


def render_screen(console: Console, result: ScreenResult) -> None:
    style = "bold red" if result.decision.blocked else "bold green"
    console.print(
        f"[{style}]{result.decision.action.value}[/]"
        + (f" ({result.decision.category.value})" if result.decision.category else "")
        + (f" by rule {result.decision.rule}" if result.decision.rule else "")
        + (f": {result.decision.message}" if result.decision.message else "")
    )
    console.print(findings_table(result.findings))
