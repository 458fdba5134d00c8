"""The provenance report for a person at a terminal: one rich panel per file, and a summary
table after many.

The verdict leads (a badge: trusted green; valid yellow, a warning and never a success;
invalid red; absent dim), then the warnings, then what the manifest, the watermark and the
manifest store say. Everything that comes from the file (names, titles, signer names,
explanations) is shown as text, never parsed as markup, and with control characters escaped:
an escape sequence in a signed title must not drive the auditor's terminal.
"""

from __future__ import annotations

import datetime as dt
import os
from collections import Counter
from pathlib import Path
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from provenance import (
    C2paReport,
    Creator,
    IngredientReport,
    ProvenanceReport,
    StatusCode,
    TimeStamp,
)

__all__ = ["render_report", "render_report_summary", "report_panel"]

Row = tuple[str, RenderableType]

_BADGES: dict[str, tuple[str, str, str, str]] = {
    # state: (badge, badge style, panel border, tagline)
    "trusted": ("TRUSTED", "bold white on green", "green", "intact, by a trusted signer"),
    "valid": (
        "WARNING: VALID, NOT TRUSTED",
        "bold black on yellow",
        "yellow",
        "intact, but the signer is not trusted here",
    ),
    "invalid": ("INVALID", "bold white on red", "red", "broken or altered after signing"),
    "absent": ("ABSENT", "bold reverse", "dim", "no Content Credentials"),
}
_STATE_STYLE = {
    "trusted": "bold green",
    "valid": "bold yellow",
    "invalid": "bold red",
    "absent": "dim",
}
_SOURCE_TYPES = {
    "trainedAlgorithmicMedia": "made by a trained model (generative AI)",
    "compositeWithTrainedAlgorithmicMedia": "a composite including generative AI output",
    "algorithmicallyEnhanced": "enhanced by an algorithm",
    "algorithmicMedia": "made by an algorithm, not a trained model",
    "compositeSynthetic": "a composite of synthetic elements",
    "composite": "a composite",
    "digitalCapture": "captured by a camera",
    "computationalCapture": "captured with computational photography",
    "digitalCreation": "made by a person with software",
    "screenCapture": "a screenshot",
    "minorHumanEdits": "captured, with minor human edits",
}
_FINDING_STYLE = {
    "flagged": "bold red",
    "clean": "green",
    "not_checked": "yellow",
    "error": "bold red",
}
_MINING_USE = {"allowed": "allowed", "notAllowed": "not allowed", "constrained": "constrained"}
# A manifest can nest ingredients of ingredients; past this depth the tree stops growing
# (provenance bounds it too: this only keeps a hostile report readable).
_MAX_DEPTH = 16


def render_report(console: Console, report: ProvenanceReport) -> None:
    console.print(report_panel(report))


def report_panel(report: ProvenanceReport) -> Panel:
    state = report.c2pa.state
    label, badge_style, border, tagline = _BADGES[state]
    head: list[RenderableType] = [
        Text.assemble((f" {label} ", badge_style), "  ", (tagline, _STATE_STYLE[state])),
    ]
    prefix = ("do not rely: ", "bold red") if state == "invalid" else ("warning: ", "bold yellow")
    head.extend(Text.assemble(prefix, _clean(w)) for w in _warnings(report))
    head.append(Text(_clean(report.summary)))
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(ratio=1, overflow="fold")
    for key, value in _rows(report):
        grid.add_row(key, value)
    return Panel(
        Group(*head, Text(), grid),
        # The name fits a title; the whole path goes in the first row, where it can wrap.
        title=Text(_clean(Path(report.file).name or report.file) or "(unnamed)", style="bold"),
        title_align="left",
        subtitle=Text(_file_facts(report), style="dim"),
        subtitle_align="right",
        border_style=border,
    )


def render_report_summary(console: Console, reports: list[ProvenanceReport]) -> None:
    """One row per file, then how many files are in each state."""
    base = _common_folder([r.file for r in reports])
    title = f"{len(reports)} files verified" + (f" in {_clean(base)}" if base else "")
    table = Table(title=title, title_justify="left")
    table.add_column("file", overflow="fold")
    table.add_column("state", no_wrap=True)
    table.add_column("signer", overflow="fold")
    table.add_column("recovered manifest", overflow="fold")
    for report in reports:
        recovery = report.recovery
        shown = os.path.relpath(report.file, base) if base else report.file
        recovered = (
            Text.assemble(
                (_clean(recovery.manifest_id or ""), "green"),
                ("\nby " + " + ".join(recovery.evidence), "dim"),
            )
            if recovery.found
            else Text("-", style="dim")
        )
        table.add_row(
            Text(_clean(shown)),
            _state_text(report.c2pa.state),
            Text(_clean(report.c2pa.signer or "-")),
            recovered,
        )
    console.print(table)
    counts: Counter[str] = Counter(r.c2pa.state for r in reports)
    parts: list[Text | str] = []
    for state in _BADGES:
        if parts:
            parts.append(", ")
        parts.append(Text(f"{counts[state]} {state}", style=_STATE_STYLE[state]))
    found = sum(1 for r in reports if r.recovery.found)
    parts.append(f"; {found} recovered from the manifest store")
    console.print(Text.assemble(*parts))


# -- pieces ---------------------------------------------------------------------------------------


def _clean(value: object) -> str:
    text = str(value)
    if text.isprintable():
        return text
    return "".join(
        ch if ch.isprintable() or ch == " " else ch.encode("unicode_escape").decode("ascii")
        for ch in text
    )


def _when(value: dt.datetime) -> str:
    return value.isoformat(timespec="seconds")


def _state_text(state: str) -> Text:
    return Text(state, style=_STATE_STYLE.get(state, ""))


def _common_folder(files: list[str]) -> str | None:
    """The folder every file is in, when there is one worth taking out of each row."""
    try:
        common = os.path.commonpath([os.path.dirname(f) for f in files])
    except ValueError:  # relative and absolute paths mixed
        return None
    return common if common not in ("", ".", os.sep) else None


def _warnings(report: ProvenanceReport) -> list[str]:
    # The report's warnings include the C2PA ones; a report built elsewhere may carry them
    # only on c2pa, so take both, once each.
    return list(dict.fromkeys([*report.warnings, *report.c2pa.warnings]))


def _file_facts(report: ProvenanceReport) -> str:
    facts = [report.format or "unknown format"]
    if report.width is not None and report.height is not None:
        facts.append(f"{report.width}x{report.height}")
    facts.append(f"{report.size_bytes:,} bytes")
    return ", ".join(facts)


def _rows(report: ProvenanceReport) -> list[Row]:
    c2pa = report.c2pa
    rows: list[Row] = [("file", Text(_clean(report.file)))]
    if report.sha256:
        rows.append(("sha256", Text(report.sha256, style="dim")))
    rows.append(("C2PA", _c2pa_state(c2pa)))
    if c2pa.remote_manifest:
        rows.append(("remote manifest", Text(_clean(c2pa.remote_manifest) + " (not fetched)")))
    if c2pa.manifest_label:
        rows.append(("manifest", Text(_clean(c2pa.manifest_label))))
    if c2pa.signer:
        rows.append(("signer", Text(_clean(_named(c2pa.signer, c2pa.signer_organization)))))
    if c2pa.issuer:
        rows.append(("issuer", Text(_clean(c2pa.issuer))))
    certificate = _certificate(c2pa)
    if certificate is not None:
        rows.append(("certificate", certificate))
    if c2pa.manifest_label:
        rows.append(("signed at", _time_stamp(c2pa.signed_at, c2pa.time_stamp)))
    if c2pa.claim_generator:
        rows.append(("claim generator", Text(_clean(c2pa.claim_generator))))
    if c2pa.creator is not None:
        rows.append(("creator", _creator(c2pa.creator)))
    if c2pa.actions:
        rows.append(("actions", Group(*(_action(a) for a in c2pa.actions))))
    if c2pa.digital_source_type:
        rows.append(("source type", _source_type(c2pa.digital_source_type)))
    if c2pa.ingredients:
        rows.append(("ingredients", _ingredient_tree(c2pa.ingredients)))
    moderation = _moderation_row(report)
    if moderation is not None:
        rows.append(moderation)
    if c2pa.training_mining:
        rows.append(("training/mining", _training_mining(c2pa.training_mining)))
    if c2pa.soft_binding:
        rows.append(("soft binding", _soft_binding(c2pa.soft_binding)))
    rows.append(("watermark", _watermark(report)))
    rows.append(("recovery", _recovery(report)))
    if c2pa.status_codes:
        rows.append(("status codes", _status_codes(c2pa.status_codes, "red")))
    if c2pa.informational:
        rows.append(("notes", _status_codes(c2pa.informational, "dim")))
    passed = list(dict.fromkeys([*c2pa.success_codes, *(s.code for s in c2pa.successes)]))
    if passed:
        rows.append(("passed", Text(", ".join(map(_clean, passed)), style="dim")))
    return rows


def _named(name: str, organization: str | None) -> str:
    return f"{name} ({organization})" if organization and organization != name else name


def _c2pa_state(c2pa: C2paReport) -> Text:
    where = {"embedded": "embedded manifest", "sidecar": ".c2pa sidecar"}.get(c2pa.source or "")
    text = Text.assemble(_state_text(c2pa.state), (f" ({where})" if where else "", "dim"))
    if c2pa.reason:
        text.append("\n" + _clean(c2pa.reason), style="dim")
    return text


def _certificate(c2pa: C2paReport) -> Text | None:
    cert = c2pa.signing_certificate
    facts: list[str] = []
    if c2pa.signature_algorithm:
        facts.append(c2pa.signature_algorithm)
    if cert is not None:
        if cert.not_before is not None and cert.not_after is not None:
            facts.append(f"valid {cert.not_before:%Y-%m-%d} to {cert.not_after:%Y-%m-%d}")
        if cert.serial_number:
            facts.append(f"serial {cert.serial_number}")
    if not facts and (cert is None or not cert.subject):
        return None
    text = Text(_clean(", ".join(facts)))
    if cert is not None and cert.subject:
        text.append(("\n" if facts else "") + _clean(cert.subject), style="dim")
    return text


def _time_stamp(signed_at: dt.datetime | None, stamp: TimeStamp) -> Text:
    if not stamp.present:
        # Without one, the time in the claim is only the signer's word, and the signature
        # stops validating when the certificate expires.
        return Text("no time-stamp: nothing proves when it was signed", style="yellow")
    when = stamp.time or signed_at
    text = Text(_when(when) if when is not None else "time not established")
    if stamp.authority:
        text.append(_clean(" by " + _named(stamp.authority, stamp.authority_organization)))
    if stamp.validated and stamp.trusted:
        text.append("  trusted time-stamp", style="green")
    elif stamp.validated:
        text.append("  time-stamp authority not trusted here", style="yellow")
    else:
        text.append("  the time-stamp does not hold", style="red")
    for status in _unique(stamp.status_codes):
        text.append("\n" + _clean(f"{status.code}: {status.meaning}"), style="dim")
    return text


def _creator(creator: Creator) -> Group:
    lines: list[RenderableType] = []
    for identity in creator.identities:
        line = Text(
            _clean(_named(identity.signer or "unknown actor", identity.signer_organization))
        )
        if identity.trusted:
            line.append("  identity trusted", style="green")
        elif identity.well_formed:
            line.append("  identity well formed, not trusted here", style="yellow")
        else:
            line.append("  identity not verified", style="red")
        if identity.sig_type:
            line.append(_clean(f" ({identity.sig_type})"), style="dim")
        for verified in identity.verified_identities:
            provider = verified.get("provider")
            via = provider.get("name") if isinstance(provider, dict) else None
            who = verified.get("name") or verified.get("username") or verified.get("uri")
            if who:
                line.append("\n  " + _clean(f"{who}" + (f" via {via}" if via else "")))
        if identity.referenced_assertions:
            signed = ", ".join(a.rsplit("/", 1)[-1] for a in identity.referenced_assertions)
            line.append("\n  " + _clean(f"signs {signed}"), style="dim")
        lines.append(line)
    for author in creator.authors:
        name = author.get("name") or author.get("@id") or "unnamed author"
        line = Text(_clean(f"author {name}"))
        identifier = author.get("identifier") or author.get("@id")
        if identifier and identifier != name:
            line.append(_clean(f" ({identifier})"), style="dim")
        line.append("  the claim generator's word only", style="dim")
        lines.append(line)
    return Group(*lines) if lines else Group(Text("-", style="dim"))


def _action(action: dict[str, Any]) -> Text:
    text = Text(_clean(action.get("action", "?")), style="bold")
    details: list[str] = []
    agent = action.get("softwareAgent")
    if isinstance(agent, dict):
        agent = agent.get("name")
    if agent:
        details.append(f"by {agent}")
    parameters = action.get("parameters")
    if isinstance(parameters, dict):
        model = parameters.get("org.genseal.model_id")
        if model:
            details.append(f"model {model}")
        ids = parameters.get("ingredientIds")
        if isinstance(ids, list) and ids:
            details.append("ingredient " + ", ".join(map(str, ids)))
    source = action.get("digitalSourceType")
    if isinstance(source, str):
        details.append(source.rsplit("/", 1)[-1])
    if details:
        text.append("  " + _clean(", ".join(details)), style="dim")
    return text


def _source_type(uri: str) -> Text:
    short = uri.rsplit("/", 1)[-1]
    meaning = _SOURCE_TYPES.get(short)
    return Text.assemble(
        _clean(short), (f": {meaning}" if meaning else "", ""), (f"\n{_clean(uri)}", "dim")
    )


def _ingredient_tree(ingredients: list[IngredientReport]) -> Tree:
    tree = Tree(f"{len(ingredients)} ingredient(s)", guide_style="dim")
    _add_ingredients(tree, ingredients, depth=0)
    return tree


def _add_ingredients(node: Tree, ingredients: list[IngredientReport], depth: int) -> None:
    for ingredient in ingredients:
        child = node.add(_ingredient_label(ingredient))
        if ingredient.ingredients and depth < _MAX_DEPTH:
            _add_ingredients(child, ingredient.ingredients, depth + 1)
        elif ingredient.ingredients:
            child.add(Text(f"{len(ingredient.ingredients)} more, not shown", style="dim"))


def _ingredient_label(ingredient: IngredientReport) -> Text:
    label = Text(_clean(ingredient.title or ingredient.label or "(untitled)"), style="bold")
    facts = [f for f in (ingredient.relationship, ingredient.format) if f]
    facts += [t.rsplit(".", 1)[-1] for t in ingredient.data_types]
    if facts:
        label.append(f" ({_clean(', '.join(facts))})", style="dim")
    label.append("  ")
    if ingredient.validation_state == "absent":
        label.append("no Content Credentials of its own", style="dim")
    else:
        label.append_text(_state_text(ingredient.validation_state))
    details: list[str] = []
    if ingredient.signer:
        details.append("signed by " + _named(ingredient.signer, ingredient.signer_organization))
    if ingredient.claim_generator:
        details.append(f"with {ingredient.claim_generator}")
    if ingredient.signed_at is not None:
        details.append(f"at {_when(ingredient.signed_at)}")
    if ingredient.digital_source_type:
        details.append(ingredient.digital_source_type.rsplit("/", 1)[-1])
    if details:
        label.append("\n" + _clean(", ".join(details)), style="dim")
    failures = _unique(ingredient.status_codes)
    for status in failures:
        label.append("\n" + _clean(f"{status.code}: {status.meaning}"), style="red")
    for code in dict.fromkeys(ingredient.failures):
        if all(s.code != code for s in failures):
            label.append("\n" + _clean(code), style="red")
    if ingredient.recorded_failures:
        codes = ", ".join(dict.fromkeys(ingredient.recorded_failures))
        label.append("\n" + _clean(f"failed when taken in: {codes}"), style="yellow")
    if ingredient.unexpanded:
        label.append("\n" + _clean(ingredient.unexpanded), style="dim")
    return label


def _moderation_row(report: ProvenanceReport) -> Row | None:
    c2pa = report.c2pa
    if c2pa.moderation:
        caveat = {
            "valid": "signed by a signer not trusted here",
            "invalid": "from a broken manifest: do not rely on it",
        }.get(c2pa.state)
        return "moderation", _moderation(c2pa.moderation, caveat)
    if report.recovery.found and report.recovery.moderation:
        return "moderation", _moderation(
            report.recovery.moderation, "from the stored manifest this file was traced to"
        )
    return None


def _moderation(attestation: dict[str, Any], caveat: str | None) -> Group:
    decision = str(attestation.get("decision") or "unknown")
    # A blurred, flagged or reviewed release is a release with a caveat, not a clean pass.
    style = {"allow": "bold green", "block": "bold red", "require_consent": "bold red"}.get(
        decision, "bold yellow"
    )
    head = Text(_clean(decision), style=style)
    policy = attestation.get("policy")
    if isinstance(policy, dict) and policy.get("id"):
        version = f" v{policy['version']}" if policy.get("version") else ""
        head.append(_clean(f" under policy {policy['id']}{version}"))
    if attestation.get("rule"):
        head.append(_clean(f", rule {attestation['rule']}"))
    if attestation.get("input_decision"):
        head.append(_clean(f" (input: {attestation['input_decision']})"), style="dim")
    lines: list[RenderableType] = [head]
    if caveat:
        lines.append(Text(caveat, style="yellow"))
    checks = [c for c in attestation.get("checks") or [] if isinstance(c, dict)]
    if checks:
        states = Counter(str(c.get("state")) for c in checks)
        lines.append(
            Text(
                f"{len(checks)} finding(s): "
                + ", ".join(f"{n} {s.replace('_', ' ')}" for s, n in sorted(states.items())),
                style="dim",
            )
        )
        # One check can run at several stages (the input image, then the output).
        by_check: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for check in checks:
            key = (str(check.get("check")), str(check.get("stage") or ""))
            by_check.setdefault(key, []).append(check)
        lines.extend(_check_line(*key, found) for key, found in by_check.items())
    return Group(*lines)


def _check_line(name: str, stage: str, findings: list[dict[str, Any]]) -> Text:
    line = Text(_clean(f"{name} on the {stage}: " if stage else f"{name}: "))
    for i, finding in enumerate(findings):
        if i:
            line.append(", ")
        state = str(finding.get("state"))
        line.append(_clean(finding.get("category") or "?"))
        line.append(" ")
        line.append(_clean(state.replace("_", " ")), style=_FINDING_STYLE.get(state, ""))
        score = finding.get("score")
        if isinstance(score, int | float) and (state == "flagged" or len(findings) == 1):
            line.append(f" {score:.3f}", style="dim")
        reason = finding.get("reason")
        if reason and state != "clean":
            line.append(f" ({_clean(reason)})", style="dim")
    return line


def _training_mining(assertion: dict[str, Any]) -> Text:
    entries = assertion.get("entries")
    if not isinstance(entries, dict) or not entries:
        return Text("present, with no entries", style="dim")
    parts = []
    for use, entry in entries.items():
        value = entry.get("use") if isinstance(entry, dict) else entry
        shown = _MINING_USE.get(str(value), str(value))
        constraint = entry.get("constraint_info") if isinstance(entry, dict) else None
        parts.append(
            f"{str(use).removeprefix('cawg.')}: {shown}"
            + (f" ({constraint})" if constraint else "")
        )
    return Text(_clean(", ".join(parts)))


def _soft_binding(binding: dict[str, Any]) -> Text:
    blocks = binding.get("blocks")
    values = [str(b.get("value")) for b in blocks or [] if isinstance(b, dict) and b.get("value")]
    return Text(_clean(f"{binding.get('alg', '?')}: {', '.join(values) or 'no value'}"))


def _watermark(report: ProvenanceReport) -> Text:
    wm = report.watermark
    if wm.detected:
        return Text.assemble(
            ("detected", "bold green"),
            _clean(f" {wm.algorithm} payload {wm.payload}"),
            (f" (confidence {wm.confidence:.2f})", "dim"),
        )
    return Text.assemble(("not detected", "dim"), (_clean(f" ({wm.algorithm})"), "dim"))


def _recovery(report: ProvenanceReport) -> Text:
    rec = report.recovery
    if not rec.attempted:
        return Text(_clean(f"not attempted: {rec.reason}"), style="dim")
    if not rec.found:
        return Text.assemble(("nothing found", "dim"), _clean(f": {rec.reason}"))
    text = Text.assemble(
        ("found ", "bold green"),
        _clean(rec.manifest_id or ""),
        _clean(f" by {' + '.join(rec.evidence)}"),
    )
    facts: list[str] = []
    if rec.fingerprint_distance is not None:
        facts.append(f"fingerprint distance {rec.fingerprint_distance}/256 bits")
    if rec.crop_match is not None:
        facts.append(f"crop match {rec.crop_match:.2f}")
    facts.append(
        {
            False: "byte for byte the sealed file",
            True: "pixels altered since sealing",
            None: "pixels look unchanged, but the bytes differ from the sealed file",
        }[rec.pixels_altered]
    )
    if rec.sealed_at is not None:
        facts.append(f"sealed {_when(rec.sealed_at)}")
    text.append("\n" + ", ".join(facts))
    if rec.reason:
        text.append("\n" + _clean(rec.reason), style="dim")
    return text


def _unique(codes: list[StatusCode]) -> list[StatusCode]:
    # c2pa repeats a code once per part it checked; once each says it.
    return list({(s.code, s.explanation): s for s in codes}.values())


def _status_codes(codes: list[StatusCode], style: str) -> Text:
    text = Text()
    for i, status in enumerate(_unique(codes)):
        if i:
            text.append("\n")
        text.append(_clean(status.code), style=style)
        if status.meaning:
            text.append(_clean(f": {status.meaning}"), style="" if style == "red" else style)
        if status.explanation and status.explanation != status.meaning:
            text.append("\n  " + _clean(status.explanation), style="dim")
    return text
