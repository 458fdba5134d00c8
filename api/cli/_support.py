"""What every ``genseal`` command shares: consoles, options, settings, error handling."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar, cast, get_args

import structlog
import typer
from pydantic import BaseModel, ValidationError
from rich.console import Console

from api.cli._help import Choices
from genseal.errors import GensealError, InputError
from genseal.settings import LogSettings

if TYPE_CHECKING:
    from gen import ImageFormat

EXIT_OK, EXIT_INTERNAL, EXIT_USAGE, EXIT_BLOCKED, EXIT_HELD = 0, 1, 2, 3, 4
# verify: some file is not trusted (valid, invalid, absent or unreadable). It shares 3 with
# a block because both say the same to a script: do not pass this image on as it is.
EXIT_UNTRUSTED = 3

out = Console()
err = Console(stderr=True)

_Model = TypeVar("_Model", bound=BaseModel)

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


def _presets() -> list[str]:
    from gen import PRESETS

    return list(PRESETS)


def _image_formats() -> tuple[str, ...]:
    from gen import ImageFormat

    return get_args(ImageFormat)


PRESET = Choices("PRESET", _presets)
IMAGE_FORMAT = Choices("FORMAT", _image_formats)


def _settings(**overrides: Any) -> Any:
    from genseal.settings import Settings

    settings = Settings()
    updates = {k: v for k, v in overrides.items() if v is not None}
    return settings.model_copy(update=updates) if updates else settings


def _warn_dev_identity(identity: Any) -> None:
    err.print(
        f"[yellow]warning:[/] created a development signing identity in {identity.location}."
        " Images it seals verify as trusted only where its root is a trust anchor"
        " (`genseal keys root`). Use your organisation's certificate in production."
    )


def _log_dev_identity(identity: Any) -> None:
    """The same notice as a log line, for servers whose stderr carries only JSON logs."""
    structlog.get_logger("genseal").warning(
        "created a development signing identity; images it seals verify as trusted only where"
        " its root is a trust anchor (genseal keys root)",
        keys=str(identity.location),
    )


def _service(*, json_logs: bool = False, **overrides: Any) -> Any:
    from gen import SealedGenerationService, build_parts

    settings = _settings(**overrides)
    notice = _log_dev_identity if json_logs else _warn_dev_identity
    return SealedGenerationService(settings, build_parts(settings, on_identity_created=notice))


def _fail(
    message: str, code: int, *, as_json: bool = False, kind: str = "internal_error"
) -> NoReturn:
    if as_json:
        # A script asked for JSON: the error is JSON too, on stdout where it reads the answer.
        _dump({"error": {"message": message, "code": kind, "exit_code": code}})
    # soft_wrap: a path in the message must stay whole on narrow terminals (and to grep).
    err.print(f"[bold red]error:[/] {message}", soft_wrap=True)
    raise typer.Exit(code)


@contextmanager
def _errors(as_json: bool = False) -> Iterator[None]:
    """Turn genseal's errors into a message and an exit code; never a traceback. With
    ``as_json`` the message is a JSON object on stdout."""
    try:
        yield
    except typer.Exit:
        raise
    except GensealError as exc:
        _fail(str(exc), exc.exit_code, as_json=as_json, kind=exc.code)
    except Exception as exc:
        if _debugging():
            raise
        _fail(
            f"internal error: {type(exc).__name__}: {exc} (set GENSEAL_DEBUG=1 for details)",
            1,
            as_json=as_json,
        )


def _validated(schema: type[_Model], /, **fields: Any) -> _Model:
    """``schema(**fields)`` from command-line values; InputError naming the field and the rule
    it broke (pydantic's own message would read as an internal error)."""
    try:
        return schema(**fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise InputError(f"{where}: {first['msg']}") from exc


def _debugging() -> bool:
    try:
        return LogSettings().debug
    except ValidationError:  # a malformed GENSEAL_DEBUG: the error at hand is reported as is
        return False


def log_level(default: str) -> str:
    """GENSEAL_LOG_LEVEL, or ``default`` when it is unset."""
    try:
        return LogSettings().log_level or default
    except ValidationError as exc:
        _fail(f"GENSEAL_LOG_LEVEL or GENSEAL_DEBUG: {exc.errors()[0]['msg']}", EXIT_USAGE)


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
    from api.cli._render import render_generation

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
    return _validated(ConsentAttestation, subject=subject, reference=reference)


def _size(size: str | None) -> tuple[int, int] | None:
    """`--size WxH` as (width, height); a malformed value is an input error (exit 2)."""
    from gen import parse_size

    if not size:
        return None
    try:
        return parse_size(size)
    except ValueError as exc:
        raise InputError(str(exc)) from exc


def _format(fmt: str | None) -> ImageFormat | None:
    if fmt is None:
        return None
    formats = _image_formats()
    if fmt not in formats:
        listed = f"{', '.join(formats[:-1])} or {formats[-1]}"
        raise InputError(f"--format must be {listed}, not {fmt!r}")
    return cast("ImageFormat", fmt)


def _dump(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


# -- commands -------------------------------------------------------------------------------------
