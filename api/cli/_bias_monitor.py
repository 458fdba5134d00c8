"""``genseal bias-monitor``: opt tenants in to bias monitoring, and read what it counted.

Tenant ``-`` stands for requests made without a tenant (authentication off).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from api.cli._help import GensealTyper
from api.cli._support import JsonOption, _dump, _errors, _settings, err, out

bias_monitor_app = GensealTyper(
    help="Bias monitoring of released images, per tenant that opted in: perceived gender, age "
    "and skin tone counts (never faces), and drift from a probe baseline.",
    no_args_is_help=True,
)

NO_TENANT = "-"

TenantArgument = Annotated[
    str, typer.Argument(help="Tenant id; '-' for requests made without a tenant.")
]


def _monitor(database: Any = None) -> Any:
    """The bias monitor, on ``database`` (a ``genseal.db.Database``) or one of its own."""
    from safety import BiasMonitor

    settings = _settings()
    return BiasMonitor(
        database if database is not None else settings.store_url,
        drift_tvd=settings.bias_drift_tvd,
        min_images=settings.bias_min_images,
    )


def _tenant(name: str | None) -> str | None:
    return None if name in (None, NO_TENANT) else name


def _shown(tenant: str | None) -> str:
    return tenant or NO_TENANT


def _warn_unknown(database: Any, tenant: str) -> None:
    from api.tenants import TenantStore
    from genseal.errors import NotFoundError

    if tenant.startswith("key-"):
        return  # a GENSEAL_API_KEYS key's tenant: not in the tenant table
    try:
        TenantStore(database).get(tenant)
    except NotFoundError:
        err.print(
            f"[yellow]warning:[/] no tenant {tenant!r} in the tenant table yet "
            "(`genseal tenants create`); its releases are counted once it exists.",
            soft_wrap=True,
        )


@bias_monitor_app.command("enable")
def enable(tenant: TenantArgument, as_json: JsonOption = False) -> None:
    """Count this tenant's released images from now on."""
    from genseal.db import Database

    with _errors(as_json):
        name = _tenant(tenant)
        database = Database(_settings().store_url)  # both stores on one engine
        try:
            state = _monitor(database).enable(name)
            if name is not None:
                _warn_unknown(database, name)
        finally:
            database.close()
        if as_json:
            _dump(state.model_dump(mode="json"))
        else:
            out.print(
                f"bias monitoring on for {_shown(state.tenant)} since "
                f"{state.enabled_at:%Y-%m-%d %H:%M} UTC",
                highlight=False,
            )


@bias_monitor_app.command("disable")
def disable(
    tenant: TenantArgument,
    purge: Annotated[
        bool, typer.Option("--purge", help="Also delete the counts recorded so far.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Stop counting this tenant's releases (the counts so far stay, unless --purge)."""
    with _errors(as_json):
        monitor = _monitor()
        name = _tenant(tenant)
        was_on = monitor.enabled(name)
        state = monitor.disable(name, purge=purge)
        if as_json:
            _dump({**state.model_dump(mode="json"), "was_enabled": was_on, "purged": purge})
            return
        verb = "off" if was_on else "was not on"
        kept = "counts deleted" if purge else "counts kept"
        out.print(f"bias monitoring {verb} for {_shown(state.tenant)}; {kept}", highlight=False)


@bias_monitor_app.command("status")
def status(as_json: JsonOption = False) -> None:
    """The tenants being monitored, with their images of the last 30 days."""
    from rich.table import Table

    with _errors(as_json):
        monitor = _monitor()
        rows = [(t, monitor.summary(t.tenant, 30)) for t in monitor.tenants()]
        if as_json:
            _dump(
                [
                    {
                        "tenant": t.tenant,
                        "enabled_at": t.enabled_at,
                        "images_30d": s.images,
                        "no_face_30d": s.no_face,
                    }
                    for t, s in rows
                ]
            )
            return
        if not rows:
            out.print("no tenant is monitored (`genseal bias-monitor enable TENANT`)")
            return
        table = Table("tenant", "since (UTC)", "images (30 d)", "no face")
        for t, s in rows:
            table.add_row(
                _shown(t.tenant), f"{t.enabled_at:%Y-%m-%d %H:%M}", str(s.images), str(s.no_face)
            )
        out.print(table)


@bias_monitor_app.command("summary")
def summary(
    tenant: Annotated[
        str | None,
        typer.Argument(help="Tenant id; omitted or '-': requests made without a tenant."),
    ] = None,
    days: Annotated[
        int, typer.Option("--days", min=1, max=366, help="The last N UTC days, today included.")
    ] = 30,
    baseline: Annotated[
        Path | None,
        typer.Option(
            "--baseline",
            help="results.json of `genseal probe bias` to compare with "
            "(default: GENSEAL_BIAS_BASELINE).",
            dir_okay=False,
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Counts and proportions per perceived attribute, and drift from the baseline."""
    from safety import load_baseline

    with _errors(as_json):
        settings = _settings()
        if baseline is not None:
            reference = load_baseline(baseline)
        elif settings.bias_baseline is not None:
            reference = load_baseline(settings.bias_baseline, setting="GENSEAL_BIAS_BASELINE")
        else:
            reference = None
        result = _monitor().summary(_tenant(tenant), days, reference)
        if as_json:
            _dump(result.model_dump(mode="json"))
        else:
            _render_summary(result)


def _render_summary(result: Any) -> None:
    from rich.table import Table

    window = result.window
    if not result.enabled:
        err.print(
            f"[yellow]note:[/] bias monitoring is off for {_shown(result.tenant)}: these are "
            "the counts recorded while it was on",
            soft_wrap=True,
        )
    share = f"{result.no_face_share:.0%}" if result.no_face_share is not None else "-"
    out.print(
        f"[bold]{_shown(result.tenant)}[/]: {result.images} images from {window.start} to "
        f"{window.end} (UTC), {result.no_face} without a face ({share})",
        highlight=False,
    )
    table = Table("attribute", "category", "images", "share", "soft share", "baseline")
    for attribute, found in result.attributes.items():
        if found.measured == 0:
            table.add_row(attribute, "(not measured)", "0", "-", "-", "-", end_section=True)
            continue
        reference = found.drift.baseline if found.drift is not None else {}
        for i, (category, count) in enumerate(found.counts.items()):
            table.add_row(
                attribute if i == 0 else "",
                category,
                str(count),
                _percent(found.proportions.get(category)),
                _percent(found.soft_proportions.get(category)),
                _percent(reference.get(category)),
                end_section=i == len(found.counts) - 1,
            )
    out.print(table)
    if result.baseline is None:
        out.print("no baseline: set GENSEAL_BIAS_BASELINE or give --baseline to measure drift")
        return
    drift = Table(
        "attribute", "measured", "TVD", "p-value", "drift", title="against " + result.baseline
    )
    for attribute, found in result.attributes.items():
        if found.drift is None:
            drift.add_row(attribute, str(found.measured), "-", "-", "no baseline")
            continue
        d = found.drift
        flag = "[bold red]DRIFT[/]" if d.flagged else "no"
        if not d.flagged and found.measured < result.min_images:
            flag = f"no (under {result.min_images} images)"
        drift.add_row(
            attribute,
            str(found.measured),
            "-" if d.tvd is None else f"{d.tvd:.3f}",
            "-" if d.p_value is None else f"{d.p_value:.2g}",
            flag,
        )
    out.print(drift)


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"
