"""The ``genseal`` command.

Exit codes: 0 released (or success), 3 blocked by policy (verify: some file not trusted), 4
held for human review (nothing released yet), 2 usage or input error, 1 internal error (and
failed policy tests).
Every command takes ``--json`` for machine-readable output on stdout; messages go to stderr.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

import genseal
from api.cli._admin import audit_app, tenants_app
from api.cli._bias_monitor import bias_monitor_app
from api.cli._db import db_app
from api.cli._faces import faces_app
from api.cli._help import Choices, GensealTyper
from api.cli._policy import policy_app
from api.cli._probe import probe_app
from api.cli._review import review_app
from api.cli._support import (
    EXIT_BLOCKED,
    EXIT_HELD,
    IMAGE_FORMAT,
    PRESET,
    JsonOption,
    PolicyOption,
    PurposeOption,
    TenantOption,
    _consent,
    _dump,
    _emit_result,
    _errors,
    _format,
    _read_file,
    _service,
    _settings,
    _size,
    _validated,
    log_level,
    out,
)
from genseal.errors import ConfigError, InputError

if TYPE_CHECKING:
    from gen import SealedGenerationService
from genseal.logs import configure_logging, stdlib_log_config

app = GensealTyper(
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
keys_app = GensealTyper(help="The signing identity that seals images.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
manifests_app = GensealTyper(
    help="Manifests in the manifest store: export them as .c2pa sidecars.", no_args_is_help=True
)
app.add_typer(manifests_app, name="manifests")
app.add_typer(policy_app, name="policy")
app.add_typer(review_app, name="review")
app.add_typer(tenants_app, name="tenants")
app.add_typer(audit_app, name="audit")
app.add_typer(faces_app, name="faces")
app.add_typer(probe_app, name="probe")
app.add_typer(bias_monitor_app, name="bias-monitor")
app.add_typer(db_app, name="db")


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
    configure_logging(log_level("critical"))


# -- shared plumbing ------------------------------------------------------------------------------


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
    preset: Annotated[
        str | None,
        typer.Option(metavar=PRESET, help="A prompt template with the settings that suit it."),
    ] = None,
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
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format", metavar=IMAGE_FORMAT, help="Image format (default: GENSEAL_OUTPUT_FORMAT)."
        ),
    ] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Directory for sealed images.")] = Path(
        "."
    ),
    as_json: JsonOption = False,
) -> None:
    """Generate images, screen them, and release only sealed ones.

    Exit 0 released, 3 blocked by policy, 4 held for review, 2 bad input, 1 internal error.
    """
    from gen import GenerationRequest

    with _errors(as_json):
        parsed_size = _size(size)
        request = _validated(
            GenerationRequest,
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
        str | None,
        typer.Option(
            "--format", metavar=IMAGE_FORMAT, help="Image format (default: as the input)."
        ),
    ] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Directory for the sealed image.")] = Path(
        "."
    ),
    as_json: JsonOption = False,
) -> None:
    """Screen, decide, watermark and sign an image made by another model."""
    with _errors(as_json):
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

    The decision names its rule and the harm it enforces (violence, self_harm, sexual_minors...).

    Every finding names its check and version, the prompt classifier's model included.

    Exit 3 when it would be blocked, 4 when it would be held for review.
    """
    from api.cli._render import render_screen

    with _errors(as_json):
        if image is None:
            # A prompt alone needs only the policy and its prompt checks: no store, signing
            # identity or image model (seconds of start-up for one prompt).
            from gen import screen_prompt

            result = screen_prompt(
                _settings(policy=policy), prompt or "", tenant=tenant, purpose=purpose
            )
        else:
            result = _service(policy=policy).screen(
                prompt=prompt,
                image_bytes=_read_file(image, "image"),
                tenant=tenant,
                purpose=purpose,
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
    files: Annotated[
        list[Path],
        typer.Argument(
            help="Images to verify, or folders: searched recursively for image files "
            "(png, jpg, webp, avif, heic, tif, gif, bmp, or sniffed), hidden ones skipped.",
            metavar="FILE|DIR",
            show_default=False,
        ),
    ],
    trust: Annotated[
        list[Path] | None,
        typer.Option("--trust", help="PEM file of extra trust anchors (repeatable)."),
    ] = None,
    manifest: Annotated[
        Path | None,
        typer.Option(
            "--manifest",
            help="A .c2pa sidecar (genseal manifests export ID) to validate the file against, "
            "instead of any embedded manifest; one file only.",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Provenance report per file: C2PA state, watermark and the manifest recovered from the store.

    The local signing root is trusted by default. With several files or a folder, a summary
    table follows the reports, and --json prints an array in the order given (one object for
    a single file). Unreadable files (empty, garbage, truncated) still get a report.

    A copy whose manifest was stripped (re-saved, re-encoded, resized, cropped, screenshotted)
    is traced back to its sealed manifest by watermark and perceptual fingerprint together:
    every watermark backend is read, crops are re-read at the scales they may have been cut
    to, and a watermark id alone never names a manifest.

    Exit codes: 0 every file is trusted; 3 some file is not (valid but untrusted signer,
    invalid, absent or unreadable); 2 usage error (no such file, bad --trust file, --manifest
    with several files, a folder with no images); 1 internal error.
    """
    from api.cli._verify import run_verify

    run_verify(files, trust or [], manifest, as_json)


@manifests_app.command("export")
def manifests_export(
    manifest_id: Annotated[str, typer.Argument(help="The manifest id (gs_…) of a sealed image.")],
    out_path: Annotated[
        Path | None,
        typer.Option("--out", help="Where to write the .c2pa file (default: ID.c2pa here)."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Write a sealed image's C2PA manifest store as a .c2pa sidecar, for auditors
    (genseal verify IMAGE --manifest ID.c2pa)."""
    from provenance import ManifestStore

    with _errors(as_json):
        record = ManifestStore(_settings().store_url).get(manifest_id)
        if record is None:
            raise InputError(f"no manifest {manifest_id} in the manifest store")
        target = out_path if out_path is not None else Path(f"{manifest_id}.c2pa")
        try:
            target.write_bytes(record.manifest_store)
        except OSError as exc:
            raise InputError(f"cannot write {target}: {exc.strerror or exc}") from exc
        if as_json:
            _dump({"manifest_id": manifest_id, "path": str(target), "bytes": target.stat().st_size})
        else:
            out.print(f"wrote {target} ({target.stat().st_size:,} bytes)")


@keys_app.command("init")
def keys_init(
    force: Annotated[bool, typer.Option(help="Replace an existing identity.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Create a development signing identity (root → intermediate → leaf, ES256) in home/keys."""
    from provenance import init_identity

    with _errors(as_json):
        settings = _settings()
        init_identity(settings.home, force=force)
        keys_dir = settings.home / "keys"
        if as_json:
            _dump(
                {
                    "home": str(settings.home),
                    "keys": str(keys_dir),
                    "root": str(keys_dir / "root.pem"),
                }
            )
        else:
            out.print(f"created a development signing identity in {keys_dir}")
            out.print("auditors trust it with: genseal keys root > genseal-root.pem")


@keys_app.command("renew")
def keys_renew(as_json: JsonOption = False) -> None:
    """Issue a new intermediate and signing certificate under the same development root (key
    rotation): images signed before keep verifying as trusted against that root."""
    from provenance import renew_identity

    with _errors(as_json):
        settings = _settings()
        identity = renew_identity(settings.home)
        leaf = identity.signing_certificate
        if as_json:
            _dump({"keys": identity.location, "not_after": leaf.not_valid_after_utc.isoformat()})
        else:
            out.print(
                f"issued a new signing certificate in {identity.location}, valid until "
                f"{leaf.not_valid_after_utc:%Y-%m-%d}; the root is unchanged"
            )


@keys_app.command("check")
def keys_check(as_json: JsonOption = False) -> None:
    """Validate the configured signing identity (GENSEAL_SIGNING_* or the development one) by
    signing and verifying a test manifest; exit 0 when it is fit to sign, 2 when not."""
    from api.cli._keys import check_identity

    with _errors(as_json):
        check_identity(_settings(), as_json=as_json, console=out)


@keys_app.command("root")
def keys_root() -> None:
    """Print the root certificate (PEM) auditors add as a trust anchor: GENSEAL_SIGNING_ROOT
    when set, else the development root."""
    from gen import signing_root_pem
    from provenance import load_identity

    with _errors():
        settings = _settings()
        pem = signing_root_pem(settings) or load_identity(settings.home).root_cert_pem
        typer.echo(pem.decode().strip())


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    policy: PolicyOption = None,
) -> None:
    """Run the HTTP API: OpenAI-compatible image endpoints, jobs and webhooks, verify, the
    auditor page at /verify, /metrics and /readyz; OpenAPI docs at /docs."""
    import logging.config

    import uvicorn

    from api.http._app import create_app

    with _errors():
        _check_port_free(host, port)  # before minutes of loading, not after
        level = log_level("info")
        configure_logging(level, json_logs=True)
        # uvicorn's and other libraries' logs as the same JSON lines, from start-up on (loading
        # the models and the database logs before uvicorn would configure its loggers).
        log_config = stdlib_log_config(level)
        logging.config.dictConfig(log_config)
        logging.captureWarnings(True)
        service = _service(policy=policy, json_logs=True)
        _refuse_open_access(service, host)
        application = create_app(service)
        proxies = service.settings.trusted_proxies
        try:
            uvicorn.run(
                application,
                host=host,
                port=port,
                log_config=log_config,
                # Forwarded headers only from the configured proxies: from anyone else they
                # would let a client choose the address its rate limit counts against.
                proxy_headers=bool(proxies),
                forwarded_allow_ips=",".join(proxies) if proxies else None,
            )
        except SystemExit as exc:
            # uvicorn exits 3 when it cannot start; genseal's 3 means "blocked by policy".
            if exc.code not in (0, None):
                raise ConfigError(
                    f"the server could not start on {host}:{port} (see the log above)"
                ) from exc
            raise


@app.command()
def worker(
    model: Annotated[
        list[str] | None,
        typer.Option(
            "--model",
            help="A model this worker serves and loads at start (repeat for several; default: "
            "GENSEAL_WORKER_MODELS, else the default model).",
        ),
    ] = None,
    concurrency: Annotated[
        int | None,
        typer.Option(min=1, max=64, help="Worker processes (one job each; one per GPU)."),
    ] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            min=0,
            max=65535,
            help="Serve Prometheus metrics of every worker process on this port (default: "
            "GENSEAL_WORKER_METRICS_PORT; 0: none).",
        ),
    ] = None,
    policy: PolicyOption = None,
) -> None:
    """Run generation jobs from the broker (GENSEAL_JOB_BACKEND=celery).

    A Celery worker whose processes each load the models and a signer once, run one job at a
    time and acknowledge it only after its answer is stored. Stop with SIGTERM: jobs in hand
    finish first. With --metrics-port, the main process serves what every process did at
    /metrics.
    """
    from api.jobs._celery_worker import run_worker
    from gen import resolve_model

    with _errors():
        configure_logging(log_level("info"), json_logs=True)
        settings = _settings(
            policy=policy, worker_concurrency=concurrency, worker_metrics_port=metrics_port
        )
        if settings.job_backend != "celery":
            raise InputError(
                "genseal worker runs jobs from the broker: set GENSEAL_JOB_BACKEND=celery "
                "(and GENSEAL_BROKER_URL) for it and for genseal serve"
            )
        models = list(model or settings.worker_models or [settings.model])
        for spec in models:
            # Here, with the reason, rather than in every worker process as it forks.
            resolve_model(spec, offline=settings.offline)
        run_worker(settings, models)


def _benchmarks() -> list[str]:
    from bench import BENCHMARKS

    return list(BENCHMARKS)


BENCHMARK = Choices("NAME", _benchmarks)


@app.command()
def bench(
    name: Annotated[
        str,
        typer.Argument(
            metavar=BENCHMARK,
            help="The benchmark: bias measures the probe's attribute estimators; for load, "
            "--runs is the duration in seconds; scale runs celery workers 1/2/4 and measures "
            "the queue's overhead, --runs being the jobs per worker count.",
        ),
    ],
    runs: Annotated[int, typer.Option(min=1, help="Measured runs.")] = 20,
    as_json: JsonOption = False,
) -> None:
    """Run a benchmark from bench/ and print median and p90 latency."""
    from bench import BENCHMARKS

    with _errors(as_json):
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


def _check_port_free(host: str, port: int) -> None:
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise InputError(f"--host {host!r} does not resolve") from exc
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind(address)
        except OSError as exc:
            raise InputError(
                f"cannot listen on {host}:{port}: {exc.strerror}",
                hint="another process holds the port; choose another with --port",
            ) from exc


def _refuse_open_access(service: SealedGenerationService, host: str) -> None:
    """ConfigError when the API would answer anyone beyond this machine without a key."""
    import ipaddress
    import socket

    from api.tenants import TenantStore

    settings = service.settings
    if settings.auth == "none" or settings.api_keys:
        return
    if TenantStore(service.parts.database).count() > 0:
        return
    addresses = {
        str(info[4][0]) for info in socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    }
    if all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in addresses):
        return
    raise ConfigError(
        f"no API key or tenant exists, so on {host} the API would serve anyone who reaches it",
        hint="create a tenant (`genseal tenants create NAME`), set GENSEAL_API_KEYS, listen on "
        "127.0.0.1, or set GENSEAL_AUTH=none to serve openly on purpose",
    )
