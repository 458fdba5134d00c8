"""The ``genseal`` command.

Exit codes: 0 released (or success), 3 blocked by policy, 4 held for human review (nothing
released yet), 2 usage or input error, 1 internal error (and failed policy tests).
Every command takes ``--json`` for machine-readable output on stdout; messages go to stderr.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, cast

import typer
from rich.console import Console

import genseal
from api._logging import configure_logging
from genseal.errors import GensealError, InputError

if TYPE_CHECKING:
    from gen import ImageFormat

EXIT_OK, EXIT_INTERNAL, EXIT_USAGE, EXIT_BLOCKED, EXIT_HELD = 0, 1, 2, 3, 4

app = typer.Typer(
    name="genseal",
    help=(
        "Moderated, provenance-sealed image generation. Every image is screened, decided on by "
        "policy, invisibly watermarked and signed with a C2PA manifest before it is released."
    ),
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
keys_app = typer.Typer(help="The signing identity that seals images.", no_args_is_help=True)
policy_app = typer.Typer(
    help="Policy rule files: schema, lint, test, explain, replay.", no_args_is_help=True
)
review_app = typer.Typer(
    help="Images held for human review: list, approve, reject.", no_args_is_help=True
)
app.add_typer(keys_app, name="keys")
app.add_typer(policy_app, name="policy")
app.add_typer(review_app, name="review")

out = Console()
err = Console(stderr=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
PolicyOption = Annotated[
    Path | None,
    typer.Option("--policy", help="Policy file (default: policies/default.yaml).", dir_okay=False),
]


TenantOption = Annotated[
    str | None, typer.Option("--tenant", help="Tenant id: its policy overlay applies.")
]
PurposeOption = Annotated[
    str | None, typer.Option("--purpose", help="What the image is for (policy context).")
]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"genseal {genseal.__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """genseal: generate, seal and verify images."""
    # Errors reach the user as one message on stderr; logs only when asked for.
    configure_logging(os.environ.get("GENSEAL_LOG_LEVEL", "critical"))


# -- shared plumbing ------------------------------------------------------------------------------


def _settings(**overrides: Any) -> Any:
    from gen import Settings

    settings = Settings()
    updates = {k: v for k, v in overrides.items() if v is not None}
    return settings.model_copy(update=updates) if updates else settings


def _warn_dev_identity(identity: Any) -> None:
    err.print(
        f"[yellow]warning:[/] created a development signing identity in {identity.home / 'keys'}."
        " Images it seals verify as trusted only where its root is a trust anchor"
        " (`genseal keys root`). Use your organisation's certificate in production."
    )


def _service(**overrides: Any) -> Any:
    from gen import SealedGenerationService

    return SealedGenerationService(_settings(**overrides), on_identity_created=_warn_dev_identity)


def _fail(message: str, code: int) -> NoReturn:
    err.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code)


@contextmanager
def _errors() -> Iterator[None]:
    """Turn genseal's errors into a message and an exit code; never a traceback."""
    try:
        yield
    except typer.Exit:
        raise
    except GensealError as exc:
        _fail(str(exc), exc.exit_code)
    except Exception as exc:
        if os.environ.get("GENSEAL_DEBUG"):
            raise
        _fail(f"internal error: {type(exc).__name__}: {exc} (set GENSEAL_DEBUG=1 for details)", 1)


def _read_file(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise InputError(f"{what} {path} does not exist") from exc
    except IsADirectoryError as exc:
        raise InputError(f"{what} {path} is a directory") from exc
    except OSError as exc:
        raise InputError(f"cannot read {what} {path}: {exc.strerror}") from exc


def _write_images(result: Any, out_dir: Path) -> list[Path]:
    """Write sealed images atomically; a half-written file never appears under its final name."""
    from gen import MIME_TYPES, extension

    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create output directory {out_dir}: {exc.strerror}") from exc
    paths: list[Path] = []
    for image in result.images:
        fmt = next(f for f, mime in MIME_TYPES.items() if mime == image.mime)
        path = out_dir / f"genseal-{image.manifest_id[:8]}-{image.index}{extension(fmt)}"
        partial = path.with_name(path.name + ".partial")
        partial.write_bytes(image.data)
        partial.replace(path)
        paths.append(path)
    return paths


def _emit_result(result: Any, out_dir: Path, as_json: bool) -> None:
    from api._render import render_generation

    paths = _write_images(result, out_dir) if result.released else []
    if as_json:
        payload = result.model_dump(mode="json")
        for image, path in zip(payload["images"], paths, strict=True):
            image["path"] = str(path)
        payload["files"] = [str(p) for p in paths]
        typer.echo(json.dumps(payload, indent=2))
    else:
        render_generation(out, result, paths)
    if result.status == "held":
        raise typer.Exit(EXIT_HELD)
    if not result.released:
        raise typer.Exit(EXIT_BLOCKED)


def _consent(subject: str | None, reference: str | None) -> Any:
    from gen import ConsentAttestation

    if subject is None and reference is None:
        return None
    if not subject or not reference:
        raise InputError(
            "a consent attestation needs both --consent-subject and --consent-reference"
        )
    return ConsentAttestation(subject=subject, reference=reference)


def _format(fmt: str | None) -> ImageFormat | None:
    if fmt is None:
        return None
    if fmt not in ("png", "jpeg", "webp"):
        raise InputError(f"--format must be png, jpeg or webp, not {fmt!r}")
    return cast("ImageFormat", fmt)


def _dump(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


# -- commands -------------------------------------------------------------------------------------


@app.command()
def generate(
    prompt: Annotated[str, typer.Argument(help="What to draw (with --preset: extra details).")],
    image: Annotated[
        Path | None,
        typer.Option("--image", help="Input image: image-to-image (e.g. with --preset figurine)."),
    ] = None,
    model: Annotated[
        str | None, typer.Option(help="tiny (embedded default), a Hugging Face id or a directory.")
    ] = None,
    preset: Annotated[str | None, typer.Option(help="A preset, e.g. figurine.")] = None,
    n: Annotated[int, typer.Option("--n", min=1, max=8, help="Number of images.")] = 1,
    seed: Annotated[int | None, typer.Option(min=0, help="Seed; image k uses seed+k.")] = None,
    steps: Annotated[int | None, typer.Option(min=1, max=150, help="Denoising steps.")] = None,
    size: Annotated[str | None, typer.Option(help="WIDTHxHEIGHT, multiples of 8.")] = None,
    strength: Annotated[
        float | None, typer.Option(min=0.01, max=1.0, help="Image-to-image strength.")
    ] = None,
    negative_prompt: Annotated[str | None, typer.Option(help="What not to draw.")] = None,
    policy: PolicyOption = None,
    tenant: TenantOption = None,
    purpose: PurposeOption = None,
    consent_subject: Annotated[
        str | None,
        typer.Option(help="Consent attestation: who consented (with --consent-reference)."),
    ] = None,
    consent_reference: Annotated[
        str | None, typer.Option(help="Consent attestation: the platform's consent record.")
    ] = None,
    fmt: Annotated[str | None, typer.Option("--format", help="png, jpeg or webp.")] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Directory for sealed images.")] = Path(
        "."
    ),
    as_json: JsonOption = False,
) -> None:
    """Generate images, screen them, and release only sealed ones.

    Exit 0 released, 3 blocked by policy, 4 held for review, 2 bad input, 1 internal error.
    """
    from gen import GenerationRequest, parse_size

    with _errors():
        try:
            parsed_size = parse_size(size) if size else None
        except ValueError as exc:
            raise InputError(str(exc)) from exc
        request = GenerationRequest(
            prompt=prompt,
            negative_prompt=negative_prompt,
            image=_read_file(image, "input image") if image else None,
            image_name=image.name if image else "input image",
            preset=preset,
            model=model,
            n=n,
            seed=seed,
            steps=steps,
            size=parsed_size,
            strength=strength,
            output_format=_format(fmt),
            tenant=tenant,
            purpose=purpose,
            consent=_consent(consent_subject, consent_reference),
        )
        result = _service(policy=policy).generate(request)
        _emit_result(result, out_dir, as_json)


@app.command()
def seal(
    image: Annotated[Path, typer.Argument(help="An image generated elsewhere.")],
    source_model: Annotated[
        str | None, typer.Option(help="The model that generated it, for the manifest.")
    ] = None,
    prompt: Annotated[
        str | None, typer.Option(help="The prompt it was made from (screened).")
    ] = None,
    policy: PolicyOption = None,
    tenant: TenantOption = None,
    purpose: PurposeOption = None,
    fmt: Annotated[
        str | None, typer.Option("--format", help="png, jpeg or webp (default: as the input).")
    ] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Directory for the sealed image.")] = Path(
        "."
    ),
    as_json: JsonOption = False,
) -> None:
    """Screen, decide, watermark and sign an image made by another model."""
    with _errors():
        output_format = _format(fmt)
        data = _read_file(image, "image")
        result = _service(policy=policy).seal(
            data,
            source_model=source_model,
            prompt=prompt,
            output_format=output_format,
            tenant=tenant,
            purpose=purpose,
            image_name=image.name,
        )
        _emit_result(result, out_dir, as_json)


@app.command()
def screen(
    image: Annotated[Path | None, typer.Argument(help="An image to screen.")] = None,
    prompt: Annotated[str | None, typer.Option(help="A prompt to screen.")] = None,
    policy: PolicyOption = None,
    tenant: TenantOption = None,
    purpose: PurposeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Findings and the policy decision, without generating.

    Exit 3 when it would be blocked, 4 when it would be held for review.
    """
    from api._render import render_screen

    with _errors():
        data = _read_file(image, "image") if image else None
        result = _service(policy=policy).screen(
            prompt=prompt, image_bytes=data, tenant=tenant, purpose=purpose
        )
        if as_json:
            _dump(result.model_dump(mode="json"))
        else:
            render_screen(out, result)
        if result.decision.blocked:
            raise typer.Exit(EXIT_BLOCKED)
        if result.decision.held:
            raise typer.Exit(EXIT_HELD)


@app.command()
def verify(
    files: Annotated[list[Path], typer.Argument(help="Images to verify.")],
    trust: Annotated[
        list[Path] | None,
        typer.Option("--trust", help="PEM file of extra trust anchors (repeatable)."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Provenance report per file: C2PA state, watermark and the manifest recovered from the store.

    The local signing root is trusted by default. With several files, --json prints an array in
    the order given.
    """
    from api._render import render_report
    from gen import build_verifier

    with _errors():
        anchors = b"\n".join(_read_file(p, "trust anchor file") for p in trust or [])
        verifier = build_verifier(_settings(), anchors)
        reports = []
        for path in files:
            reports.append(verifier.verify(_read_file(path, "file"), name=str(path)))
        if as_json:
            payload = [r.model_dump(mode="json") for r in reports]
            _dump(payload if len(files) > 1 else payload[0])
        else:
            for report in reports:
                render_report(out, report)


@keys_app.command("init")
def keys_init(
    force: Annotated[bool, typer.Option(help="Replace an existing identity.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Create a development signing identity (root → intermediate → leaf, ES256)."""
    from provenance import init_identity

    with _errors():
        settings = _settings()
        identity = init_identity(settings.home, force=force)
        keys_dir = identity.home / "keys"
        if as_json:
            _dump(
                {
                    "home": str(identity.home),
                    "keys": str(keys_dir),
                    "root": str(keys_dir / "root.pem"),
                }
            )
        else:
            out.print(f"created a development signing identity in {keys_dir}")
            out.print("auditors trust it with: genseal keys root > genseal-root.pem")


@keys_app.command("root")
def keys_root() -> None:
    """Print the root certificate (PEM) auditors add as a trust anchor."""
    from provenance import load_identity

    with _errors():
        identity = load_identity(_settings().home)
        typer.echo(identity.root_cert_pem.decode().strip())


@policy_app.command("schema")
def policy_schema() -> None:
    """Print the JSON Schema of policy files (base and tenant overlay), for editors.

    Save it and point your editor at it, e.g. with a first line in the YAML file:
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
    """Check policy files: YAML, schema (unknown fields and actions), CEL syntax and types,
    rule ids, and rules that can never fire or are shadowed by an earlier rule.

    Prints FILE:LINE:COLUMN: [warning:] message per problem. Exit 2 on errors (or warnings with
    --strict), 0 otherwise.
    """
    from rich.markup import escape

    from safety import lint_policy

    with _errors():
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

    with _errors():
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

    with _errors():
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

    with _errors():
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


@review_app.command("list")
def review_list(
    status: Annotated[str, typer.Option(help="pending, approved, rejected or all.")] = "pending",
    tenant: TenantOption = None,
    as_json: JsonOption = False,
) -> None:
    """The review queue: images a `review` rule held (nothing released until approved)."""
    from gen import ReviewStore

    with _errors():
        if status not in ("pending", "approved", "rejected", "all"):
            raise InputError("--status must be pending, approved, rejected or all")
        store = ReviewStore(_settings().home / "reviews")
        reviews = store.list(
            status=None if status == "all" else status,  # type: ignore[arg-type]
            tenant=tenant,
        )
        if as_json:
            _dump([r.model_dump(mode="json") for r in reviews])
            return
        for r in reviews:
            out.print(
                f"{r.id}  {r.status:8}  {r.created_at:%Y-%m-%d %H:%M}  tenant {r.tenant or '-'}"
                f"  rule {r.decision.rule or '(default)'}  image {r.index}",
                highlight=False,
            )
        out.print(f"{len(reviews)} review(s)")


@review_app.command("decide")
def review_decide(
    review_id: Annotated[str, typer.Argument(help="The review id (from `genseal review list`).")],
    approve: Annotated[
        bool, typer.Option("--approve/--reject", help="Seal and release it, or discard it.")
    ],
    reviewer: Annotated[str | None, typer.Option(help="Who decided (audit log).")] = None,
    note: Annotated[str | None, typer.Option(help="Why (audit log).")] = None,
    out_dir: Annotated[
        Path, typer.Option("--out", help="Where an approved image is written.")
    ] = Path("."),
    as_json: JsonOption = False,
) -> None:
    """Approve (seal, release, write the image) or reject (discard) a held image."""
    with _errors():
        service = _service()
        if approve:
            record, sealed = service.approve_review(review_id, reviewer=reviewer, note=note)
            from gen import GenerationResult

            result = GenerationResult(
                request_id=record.request_id,
                status="released",
                decision=sealed.decision,
                findings=[],
                images=[sealed],
            )
            paths = _write_images(result, out_dir)
            payload = {**record.model_dump(mode="json"), "path": str(paths[0])}
        else:
            record = service.reject_review(review_id, reviewer=reviewer, note=note)
            payload = record.model_dump(mode="json")
        if as_json:
            _dump(payload)
        else:
            out.print(
                f"review {review_id} {record.status}"
                + (f": {payload['path']}" if "path" in payload else ""),
                highlight=False,
            )


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    policy: PolicyOption = None,
) -> None:
    """Run the HTTP API (OpenAI-compatible image endpoints, verify, manifests; docs at /docs)."""
    import uvicorn

    from api.app import create_app

    with _errors():
        configure_logging(os.environ.get("GENSEAL_LOG_LEVEL", "info"), json_logs=True)
        application = create_app(_service(policy=policy))
        uvicorn.run(application, host=host, port=port, log_level="info")


@app.command()
def bench(
    name: Annotated[
        str,
        typer.Argument(help="seal, checks, watermark, verify, generate, robustness or store."),
    ],
    runs: Annotated[int, typer.Option(min=1, help="Measured runs.")] = 20,
    as_json: JsonOption = False,
) -> None:
    """Run a benchmark from bench/ and print median and p90 latency."""
    from bench import BENCHMARKS

    with _errors():
        if name not in BENCHMARKS:
            raise InputError(f"unknown benchmark {name!r}; choose from {', '.join(BENCHMARKS)}")
        result = BENCHMARKS[name](runs)
        if as_json:
            _dump(result)
        else:
            out.print(
                f"{result['name']}: median {result['median_ms']:.1f} ms,"
                f" p90 {result['p90_ms']:.1f} ms over {result['runs']} runs"
            )


def main() -> None:
    """Console-script entry point."""
    app()
