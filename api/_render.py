"""Human-readable rendering of results and reports for the terminal (rich)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from gen import GenerationResult, ScreenResult
from provenance import ProvenanceReport
from safety import Finding

_STATE_STYLE = {"flagged": "bold red", "clean": "green", "not_checked": "yellow"}
_C2PA_STYLE = {"trusted": "bold green", "valid": "yellow", "invalid": "bold red", "absent": "dim"}


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
            f"[bold red]blocked[/] by rule [bold]{decision.rule or 'default'}[/]"
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
        + (f" by rule {result.decision.rule}" if result.decision.rule else "")
        + (f": {result.decision.message}" if result.decision.message else "")
    )
    console.print(findings_table(result.findings))


def render_report(console: Console, report: ProvenanceReport) -> None:
    c2pa = report.c2pa
    console.rule(f"[bold]{report.file}[/] ({report.format or 'unknown format'})")
    console.print(f"{report.summary}")
    console.print(f"C2PA: [{_C2PA_STYLE[c2pa.state]}]{c2pa.state}[/]")
    if c2pa.state == "valid":
        console.print(
            "  [yellow]warning:[/] the signature is intact but the signer is not among your trust"
            " anchors (add its root with --trust)"
        )
    details: list[tuple[str, Any]] = [
        ("signer", c2pa.signer),
        ("issuer", c2pa.issuer),
        ("signed at", c2pa.signed_at),
        ("claim generator", c2pa.claim_generator),
        ("digital source type", c2pa.digital_source_type),
        ("manifest", c2pa.manifest_label),
    ]
    for label, value in details:
        if value:
            console.print(f"  {label}: {value}")
    for action in c2pa.actions:
        console.print(f"  action: {action.get('action')}")
    for ingredient in c2pa.ingredients:
        console.print(f"  ingredient: {ingredient.get('title')} ({ingredient.get('relationship')})")
    if c2pa.moderation:
        mod = c2pa.moderation
        policy = mod.get("policy", {})
        console.print(
            f"  moderation: {mod.get('decision')} under policy {policy.get('id')}"
            f" v{policy.get('version')}, {len(mod.get('checks', []))} check(s)"
        )
    for status in c2pa.status_codes:
        console.print(f"  [red]{status.code}[/]: {status.explanation}")
    wm = report.watermark
    if wm.detected:
        console.print(
            f"Watermark: [green]detected[/] {wm.algorithm}:{wm.payload}"
            f" (confidence {wm.confidence:.2f})"
        )
    else:
        console.print(f"Watermark: [dim]not detected[/] ({wm.algorithm})")
    rec = report.recovery
    if rec.attempted:
        if rec.found:
            console.print(
                f"Recovered: [green]{rec.manifest_id}[/] by {' + '.join(rec.evidence)}"
                + (
                    f", fingerprint distance {rec.fingerprint_distance}"
                    if rec.fingerprint_distance is not None
                    else ""
                )
                + (", pixels altered since signing" if rec.pixels_altered else "")
            )
        else:
            console.print(f"Recovered: [dim]nothing[/] ({rec.reason})")
