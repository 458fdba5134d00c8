"""``genseal keys check``: what an operator reads before putting an identity into service."""

from __future__ import annotations

import json

import typer
from rich.console import Console
from rich.table import Table

from api.cli._support import EXIT_USAGE
from gen import build_signer, configured_identity
from genseal.errors import GensealError, SigningError
from genseal.settings import Settings
from provenance import identity_problems


def check_identity(settings: Settings, *, as_json: bool, console: Console) -> None:
    """Load the configured identity, list its certificates and problems, then sign and verify a
    test manifest with it (through the remote signer too, when one is configured)."""
    try:
        identity, remote = configured_identity(settings)
    except SigningError as exc:
        # The identity did not even load: that is the answer this command exists to give.
        if as_json:
            typer.echo(json.dumps({"ok": False, "problems": [exc.message]}, indent=2))
        else:
            console.print(f"[bold red]problem:[/] {exc.message}")
        raise typer.Exit(EXIT_USAGE) from exc
    problems = identity_problems(identity)
    if not problems:
        try:
            build_signer(settings, identity, remote)
        except GensealError as exc:
            problems.append(exc.message)
    leaf = identity.signing_certificate
    summary = {
        "location": identity.location,
        "algorithm": identity.alg,
        "key": "remote signer " + str(settings.signer_plugin) if remote is not None else "local",
        "subject": leaf.subject.rfc4514_string(),
        "issuer": leaf.issuer.rfc4514_string(),
        "not_before": leaf.not_valid_before_utc.isoformat(),
        "not_after": leaf.not_valid_after_utc.isoformat(),
        "tsa_url": settings.tsa_url,
        "problems": problems,
        "ok": not problems,
    }
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
    else:
        table = Table(show_header=False, title="signing identity", title_justify="left")
        for name in (
            "location",
            "algorithm",
            "key",
            "subject",
            "issuer",
            "not_before",
            "not_after",
        ):
            table.add_row(name, str(summary[name]))
        table.add_row(
            "time-stamps", settings.tsa_url or "none (signatures expire with the certificate)"
        )
        console.print(table)
        for problem in problems:
            console.print(f"[bold red]problem:[/] {problem}")
        if not problems:
            console.print("[bold green]fit to sign[/]: a test manifest verified as trusted")
    if problems:
        raise typer.Exit(EXIT_USAGE)
