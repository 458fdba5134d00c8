"""``genseal tenants`` and ``genseal audit``: who may call the API, and what was decided."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from api.cli._help import GensealTyper
from api.cli._support import EXIT_INTERNAL, JsonOption, _dump, _errors, _settings, err, out

tenants_app = GensealTyper(
    help="API tenants: keys (shown once, stored hashed), rate limits, webhook secrets.",
    no_args_is_help=True,
)
audit_app = GensealTyper(
    help="The append-only, hash-chained log of every decision.", no_args_is_help=True
)

RateOption = Annotated[
    str | None,
    typer.Option("--rate-limit", help="Its own rate limit, e.g. 600/minute (default: settings)."),
]


def _tenants() -> Any:
    from api.tenants._store import TenantStore

    return TenantStore(_settings().store_url)


def _print_issued(issued: Any, as_json: bool, verb: str) -> None:
    if as_json:
        _dump(issued.model_dump(mode="json"))
        return
    out.print(f"{verb} tenant [bold]{issued.tenant.name}[/]", highlight=False)
    out.print(f"API key:        {issued.api_key}", highlight=False, soft_wrap=True)
    out.print(f"webhook secret: {issued.webhook_secret}", highlight=False, soft_wrap=True)
    err.print(
        "[yellow]The API key is shown only now; genseal keeps only its hash.[/] "
        f"Policy overlay for this tenant: tenants/{issued.tenant.name}.yaml beside the policy."
    )


@tenants_app.command("create")
def tenants_create(
    name: Annotated[str, typer.Argument(help="Tenant id: lowercase letters, digits, - and _.")],
    rate_limit: RateOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create a tenant and print its API key (once) and webhook secret."""
    with _errors(as_json):
        _print_issued(_tenants().create(name, rate_limit=rate_limit), as_json, "created")


@tenants_app.command("rotate-key")
def tenants_rotate_key(
    name: Annotated[str, typer.Argument(help="The tenant.")],
    as_json: JsonOption = False,
) -> None:
    """Issue a new API key; the old one stops working at once."""
    with _errors(as_json):
        _print_issued(_tenants().rotate_key(name), as_json, "new key for")


@tenants_app.command("update")
def tenants_update(
    name: Annotated[str, typer.Argument(help="The tenant.")],
    rate_limit: RateOption = None,
    disable: Annotated[
        bool | None, typer.Option("--disable/--enable", help="Refuse (or accept) its key.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Change a tenant's rate limit, or disable / enable it."""
    with _errors(as_json):
        tenant = _tenants().update(name, rate_limit=rate_limit, disabled=disable)
        if as_json:
            _dump(tenant.model_dump(mode="json"))
        else:
            state = "disabled" if tenant.disabled else "enabled"
            out.print(f"{tenant.name}: {state}, rate limit {tenant.rate_limit or 'default'}")


@tenants_app.command("list")
def tenants_list(as_json: JsonOption = False) -> None:
    """Every tenant (key hints only, never keys)."""
    from rich.table import Table

    with _errors(as_json):
        tenants = _tenants().all()
        if as_json:
            _dump([t.model_dump(mode="json") for t in tenants])
            return
        table = Table("tenant", "key", "rate limit", "state", "created")
        for t in tenants:
            table.add_row(
                t.name,
                t.key_hint + "…",
                t.rate_limit or "default",
                "disabled" if t.disabled else "enabled",
                f"{t.created_at:%Y-%m-%d %H:%M}",
            )
        out.print(table)


@tenants_app.command("webhook-secret")
def tenants_webhook_secret(
    name: Annotated[
        str | None,
        typer.Argument(help="The tenant; none: the secret used when authentication is off."),
    ] = None,
) -> None:
    """Print the secret that verifies a tenant's webhook signatures."""
    import base64

    from api._files import load_secret

    with _errors():
        if name is None:
            key = load_secret(_settings().home, "webhook.key")
            typer.echo("whsec_" + base64.b64encode(key).decode())
        else:
            typer.echo(_tenants().webhook_secret(name))


@audit_app.command("verify")
def audit_verify(as_json: JsonOption = False) -> None:
    """Check the hash chain: exit 0 when intact, 1 when any entry was edited, removed or
    reordered (and say where)."""
    from provenance import ManifestStore

    with _errors(as_json):
        store = ManifestStore(_settings().store_url)
        problem = store.audit_chain_break()
        entries = store.audit_entries(limit=1)
        head = entries[0].seq if entries else 0
        if as_json:
            _dump({"intact": problem is None, "problem": problem, "entries": head})
        elif problem is None:
            out.print(f"[green]audit log intact[/]: {head} entries, every link holds")
        else:
            err.print(f"[bold red]audit log broken:[/] {problem}")
        if problem is not None:
            raise typer.Exit(EXIT_INTERNAL)


@audit_app.command("list")
def audit_list(
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="How many entries.")] = 20,
    tenant: Annotated[str | None, typer.Option(help="Only this tenant's entries.")] = None,
    before: Annotated[int | None, typer.Option(min=1, help="Entries older than this seq.")] = None,
    as_json: JsonOption = False,
) -> None:
    """The newest audit entries: event, decision, rule, tenant, manifest."""
    from provenance import ManifestStore

    with _errors(as_json):
        store = ManifestStore(_settings().store_url)
        entries = store.audit_entries(limit=limit, tenant=tenant, before_seq=before)
        if as_json:
            _dump([e.model_dump(mode="json") for e in entries])
            return
        for e in entries:
            decision = e.decision
            out.print(
                f"{e.seq:>6}  {e.at:%Y-%m-%d %H:%M:%S}  {e.event:8}  "
                f"{decision.get('action', '-'):8} rule {decision.get('rule') or '(default)'}"
                f"  tenant {e.tenant or '-'}  manifest {e.manifest_id or '-'}",
                highlight=False,
            )
