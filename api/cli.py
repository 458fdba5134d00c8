"""The ``genseal`` command.

Exit codes: 0 released (or success), 3 blocked by policy, 2 usage or input error, 1 internal error.
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

EXIT_OK, EXIT_INTERNAL, EXIT_USAGE, EXIT_BLOCKED = 0, 1, 2, 3

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
policy_app = typer.Typer(help="Check and test policy rule files.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(policy_app, name="policy")

out = Console()
err = Console(stderr=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
PolicyOption = Annotated[
    Path | None,
    typer.Option("--policy", help="Policy file (default: policies/default.yaml).", dir_okay=False),
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
    if not result.released:
        raise typer.Exit(EXIT_BLOCKED)


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
    fmt: Annotated[str | None, typer.Option("--format", help="png, jpeg or webp.")] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Directory for sealed images.")] = Path(
        "."
    ),
    as_json: JsonOption = False,
) -> None:
    """Generate images, screen them, and release only sealed ones.

    Exit 0 released, 3 blocked by policy, 2 bad input, 1 internal error.
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
            image_name=image.name,
        )
        _emit_result(result, out_dir, as_json)


@app.command()
def screen(
    image: Annotated[Path | None, typer.Argument(help="An image to screen.")] = None,
    prompt: Annotated[str | None, typer.Option(help="A prompt to screen.")] = None,
    policy: PolicyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Findings and the policy decision, without generating. Exit 3 when it would be blocked."""
    from api._render import render_screen

    with _errors():
        data = _read_file(image, "image") if image else None
        result = _service(policy=policy).screen(prompt=prompt, image_bytes=data)
        if as_json:
            _dump(result.model_dump(mode="json"))
        else:
            render_screen(out, result)
        if result.decision.action.value == "block":
            raise typer.Exit(EXIT_BLOCKED)


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


@policy_app.command("lint")
def policy_lint(
    files: Annotated[list[Path], typer.Argument(help="Policy files to check.")],
    as_json: JsonOption = False,
) -> None:
    """Load and validate policy files: schema, CEL compilation, duplicate rules."""
    from safety import Policy

    problems: list[dict[str, str]] = []
    for path in files:
        try:
            Policy.load(path)
        except GensealError as exc:
            problems.append({"file": str(path), "error": str(exc)})
    if as_json:
        _dump({"files": [str(f) for f in files], "problems": problems})
    else:
        for problem in problems:
            err.print(f"[red]{problem['file']}[/]: {problem['error']}")
        if not problems:
            out.print(f"[green]ok[/] {len(files)} file(s)")
    if problems:
        raise typer.Exit(EXIT_USAGE)


@policy_app.command("test")
def policy_test(
    path: Annotated[Path, typer.Argument(help="A *_test.yaml file or a directory of them.")] = Path(
        "policies"
    ),
    as_json: JsonOption = False,
) -> None:
    """Run the policy test cases beside the rule files; exit 1 when any fails."""
    from safety import run_policy_tests

    with _errors():
        tests = sorted(path.glob("*_test.yaml")) if path.is_dir() else [path]
        if not tests:
            raise InputError(f"no *_test.yaml files in {path}")
        results = [(test, r) for test in tests for r in run_policy_tests(test)]
        failed = [r for _, r in results if not r.passed]
        if as_json:
            _dump([{"file": str(test), **r.model_dump(mode="json")} for test, r in results])
        else:
            for test, r in results:
                mark = "[green]PASS[/]" if r.passed else "[red]FAIL[/]"
                out.print(f"{mark} {test}::{r.name}" + ("" if r.passed else f" — {r.error}"))
            out.print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
        if failed:
            raise typer.Exit(EXIT_INTERNAL)


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
    name: Annotated[str, typer.Argument(help="seal, checks, watermark, verify or generate.")],
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
