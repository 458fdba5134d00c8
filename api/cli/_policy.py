"""``genseal policy``: schema, lint, test, explain and replay for policy teams."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from genseal.errors import InputError

if TYPE_CHECKING:
    pass


from api.cli._help import GensealTyper
from api.cli._support import (
    EXIT_INTERNAL,
    EXIT_USAGE,
    JsonOption,
    PolicyOption,
    PurposeOption,
    TenantOption,
    _dump,
    _errors,
    _read_file,
    _service,
    _settings,
    err,
    out,
)

policy_app = GensealTyper(
    help="Policy rule files: schema, lint, test, explain, replay.", no_args_is_help=True
)


@policy_app.command("schema")
def policy_schema() -> None:
    """Print the JSON Schema of policy files (base and tenant overlay), for editors.

    Save it and point your editor at it, e.g. with this first line in the YAML file:

    # yaml-language-server: $schema=./policy.schema.json
    """
    from safety import policy_json_schema

    _dump(policy_json_schema())


@policy_app.command("lint")
def policy_lint(
    files: Annotated[list[Path], typer.Argument(help="Policy files to check.")],
    strict: Annotated[bool, typer.Option(help="Treat warnings as errors.")] = False,
    as_json: JsonOption = False,
) -> None:
    r"""Check policy files: YAML, schema (unknown fields and actions), CEL syntax and types,
    rule ids, and rules that can never fire or are shadowed by an earlier rule.

    Prints FILE:LINE:COLUMN: \[warning:] message per problem. Exit 2 on errors (or warnings
    with --strict), 0 otherwise.
    """
    from rich.markup import escape

    from safety import lint_policy

    with _errors(as_json):
        problems = [p for path in files for p in lint_policy(path)]
        failing = [p for p in problems if p.severity == "error" or strict]
        if as_json:
            _dump(
                {
                    "files": [str(f) for f in files],
                    "problems": [p.model_dump(mode="json") for p in problems],
                }
            )
        else:
            for problem in problems:
                style = "red" if problem.severity == "error" else "yellow"
                err.print(f"[{style}]{escape(str(problem))}[/]", highlight=False, soft_wrap=True)
            errors = sum(p.severity == "error" for p in problems)
            warnings = len(problems) - errors
            status = "[red]failed[/]" if failing else "[green]ok[/]"
            out.print(f"{status} {len(files)} file(s): {errors} error(s), {warnings} warning(s)")
        if failing:
            raise typer.Exit(EXIT_USAGE)


@policy_app.command("test")
def policy_test(
    path: Annotated[
        Path, typer.Argument(help="A *_test.yaml file or a directory (searched recursively).")
    ] = Path("policies"),
    as_json: JsonOption = False,
) -> None:
    """Run the policy test cases beside the rule files; exit 1 when any fails."""
    from rich.markup import escape

    from safety import run_policy_tests

    with _errors(as_json):
        tests = sorted(path.rglob("*_test.yaml")) if path.is_dir() else [path]
        if not tests:
            raise InputError(f"no *_test.yaml files in {path}")
        results = [(test, r) for test in tests for r in run_policy_tests(test)]
        failed = [r for _, r in results if not r.passed]
        if as_json:
            _dump([{"file": str(test), **r.model_dump(mode="json")} for test, r in results])
        else:
            for test, r in results:
                mark = "[green]PASS[/]" if r.passed else "[red]FAIL[/]"
                out.print(
                    f"{mark} {escape(f'{test}::{r.name}')}"
                    + ("" if r.passed else f" — {escape(r.error or '')}"),
                    highlight=False,
                    soft_wrap=True,
                )
            style = "red" if failed else "green"
            out.print(
                f"[{style}]{len(results) - len(failed)} passed, {len(failed)} failed[/]"
                f" in {len(tests)} file(s)"
            )
        if failed:
            raise typer.Exit(EXIT_INTERNAL)


@policy_app.command("explain")
def policy_explain(
    prompt: Annotated[
        str | None, typer.Option(help="Screen this prompt with the real checks.")
    ] = None,
    image: Annotated[
        Path | None, typer.Option("--image", help="Screen this input image with the real checks.")
    ] = None,
    case: Annotated[
        Path | None,
        typer.Option(
            "--case",
            help="YAML/JSON with stage, request and findings (the test-case format) instead.",
        ),
    ] = None,
    policy: PolicyOption = None,
    tenant: TenantOption = None,
    purpose: PurposeOption = None,
    consent: Annotated[
        bool, typer.Option("--consent", help="The request carries a consent attestation.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Which rules matched an input, and why: the decision, then every rule."""
    import yaml
    from rich.markup import escape

    from safety import PolicySet, default_policy_path, explain

    with _errors(as_json):
        settings = _settings(policy=policy)
        policies = PolicySet.load(
            settings.policy or default_policy_path(), settings.policy_tenants_dir
        )
        chosen = policies.for_tenant(tenant)
        request: dict[str, Any] = {"tenant": tenant, "purpose": purpose, "has_consent": consent}
        if case is not None:
            try:
                spec = yaml.safe_load(_read_file(case, "case file"))
            except yaml.YAMLError as exc:
                raise InputError(f"{case}: invalid YAML: {exc}") from exc
            if not isinstance(spec, dict) or "stage" not in spec:
                raise InputError(f"{case}: needs a mapping with `stage` and `findings`")
            request = {**request, **(spec.get("request") or {})}
            stage, findings = spec["stage"], list(spec.get("findings") or [])
        else:
            if prompt is None and image is None:
                raise InputError("give --prompt and/or --image, or --case FILE")
            service = _service(policy=policy)
            screened = service.screen(
                prompt=prompt,
                image_bytes=_read_file(image, "image") if image else None,
                tenant=tenant,
                purpose=purpose,
                has_consent=consent,
            )
            stage, findings = screened.decision.stage, list(screened.findings)
            request["has_input_image"] = image is not None
        try:
            explanation = explain(chosen, stage, findings, request)
        except ValueError as exc:  # pydantic's ValidationError too: a malformed case file
            raise InputError(f"invalid case: {exc}") from exc
        if as_json:
            _dump(explanation.model_dump(mode="json"))
            return
        decision = explanation.decision
        out.print(
            f"[bold]{decision.action.value}[/] at stage {decision.stage.value} by rule"
            f" [bold]{decision.rule or '(default)'}[/] — policy {chosen.id} v{chosen.version}"
            f" ({chosen.sha256[:12]})",
            highlight=False,
        )
        if decision.shadow is not None:
            out.print(
                f"shadow: would be {decision.shadow.action.value} by rule"
                f" {decision.shadow.rule or '(default)'}"
            )
        for index, finding in enumerate(explanation.findings):
            out.print(
                f"  finding #{index}: {finding.check} {finding.category.value}"
                f" {finding.state.value}@{finding.stage.value}"
                + (f" score {finding.score:.3f}" if finding.score is not None else ""),
                highlight=False,
            )
        for rule in explanation.rules:
            if not rule.applies:
                mark = "[dim]skip[/] "
            elif rule.error is not None:
                mark = "[red]ERROR[/]"
            else:
                mark = "[green]match[/]" if rule.matched else "[dim]no[/]   "
            detail = rule.error if rule.error is not None else rule.why
            shadow = " (shadow)" if rule.mode == "shadow" else ""
            out.print(
                f"  {mark} {rule.rule} ({rule.action.value}){shadow}: {escape(detail)}",
                highlight=False,
            )


@policy_app.command("replay")
def policy_replay(
    policy: Annotated[
        Path, typer.Option("--policy", help="The new policy to replay under.", dir_okay=False)
    ],
    since: Annotated[
        str | None, typer.Option(help="Only decisions at or after this date/time (ISO 8601).")
    ] = None,
    tenant: Annotated[str | None, typer.Option(help="Only this tenant's decisions.")] = None,
    limit: Annotated[
        int, typer.Option(min=1, help="Read at most this many audit entries (newest first).")
    ] = 100_000,
    examples: Annotated[int, typer.Option(min=0, help="Changed decisions to show.")] = 5,
    as_json: JsonOption = False,
) -> None:
    """Re-decide past decisions from the audit log under a new policy; print what would change
    (counts per decision and per rule, and examples). Exit 0 (a report, not a verdict)."""
    import datetime as dt

    from provenance import ManifestStore
    from safety import Policy, PolicySet, replay_decisions

    with _errors(as_json):
        start: dt.datetime | None = None
        if since is not None:
            try:
                start = dt.datetime.fromisoformat(since)
            except ValueError as exc:
                raise InputError(f"--since must be an ISO date or date-time: {since!r}") from exc
            if start.tzinfo is None:
                start = start.replace(tzinfo=dt.UTC)
        candidate = Policy.load(policy)
        target: Policy | PolicySet = (
            candidate if candidate.base is not None else PolicySet.load(policy)
        )
        store = ManifestStore(_settings().store_url)
        try:
            entries = _audit_since(store, start, tenant, limit)
        finally:
            store.close()
        report = replay_decisions(reversed(entries), target, since=start, examples=examples)
        if as_json:
            _dump(report.model_dump(mode="json"))
            return
        out.print(
            f"replayed {report.replayed} of {report.entries} decision(s) under"
            f" {report.policy_id} v{report.policy_version} ({report.policy_sha256[:12]}):"
            f" [bold]{report.changed} would change[/]",
            highlight=False,
        )
        for reason, count in report.skipped.items():
            out.print(f"  skipped {count}: {reason}", highlight=False)
        for title, counts in (("by decision", report.by_decision), ("by rule", report.by_rule)):
            if counts:
                out.print(f"{title}:")
                for key, count in counts.items():
                    out.print(f"  {count:6d}  {key}", highlight=False)
        if report.examples:
            out.print("examples:")
            for change in report.examples:
                out.print(
                    f"  #{change.seq} {change.at:%Y-%m-%d %H:%M} request {change.request_id[:12]}"
                    f" {change.stage}: {change.old_action} ({change.old_rule or '(default)'})"
                    f" → {change.new_action} ({change.new_rule or '(default)'})",
                    highlight=False,
                )


def _audit_since(store: Any, since: Any, tenant: str | None, limit: int) -> list[Any]:
    """Audit entries newest first, paging back until `since` or `limit`."""
    entries: list[Any] = []
    before: int | None = None
    while len(entries) < limit:
        page = store.audit_entries(
            limit=min(1000, limit - len(entries)), tenant=tenant, before_seq=before
        )
        if not page:
            break
        for entry in page:
            if since is not None and entry.at < since:
                return entries
            entries.append(entry)
        before = page[-1].seq
    return entries
