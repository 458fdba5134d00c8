"""``genseal verify``: gather the files (folders recursively), verify each, show the reports,
and exit by the weakest verdict.

Every file given gets a report, unreadable ones included (empty, garbage, truncated): an
auditor sweeping a folder needs to see which files could not be checked, not a stack trace
or a run that stops at the first bad file. What is wrong with the command itself (a path
that does not exist, a bad trust file, a folder with no images) is a usage error instead.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from api.cli._support import EXIT_UNTRUSTED, _dump, _errors, _read_file, _settings
from genseal.errors import ImageInputError, InputError, PayloadTooLargeError

if TYPE_CHECKING:
    from provenance import ProvenanceReport, Verifier

__all__ = ["IMAGE_SUFFIXES", "collect_images", "run_verify"]

IMAGE_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".webp", ".avif", ".heic", ".heif", ".tif", ".tiff", ".gif", ".bmp"}
)
# Enough for every signature sniff_mime knows (ISO BMFF brands sit at bytes 8-12).
_SNIFF_BYTES = 32


def run_verify(files: list[Path], trust: list[Path], manifest: Path | None, as_json: bool) -> None:
    """The whole command; raises typer.Exit with the exit code."""
    from gen import build_verifier

    with _errors(as_json):
        # A folder can hold one image or many: its output is an array either way, so a
        # script reading it need not count the files first.
        several = len(files) > 1 or any(path.is_dir() for path in files)
        if manifest is not None and several:
            raise InputError("--manifest goes with exactly one file: the one it was made for")
        paths = collect_images(files)
        sidecar = _read_file(manifest, "sidecar manifest") if manifest is not None else None
        anchors = b"\n".join(_read_file(p, "trust anchor file") for p in trust)
        settings = _settings()
        verifier = build_verifier(settings, anchors)
        reports = _verify_all(verifier, paths, sidecar, str(settings.watermark))
        if as_json:
            payload = [r.model_dump(mode="json") for r in reports]
            _dump(payload if several else payload[0])
        else:
            _render(reports, several)
        if any(r.c2pa.state != "trusted" for r in reports):
            raise typer.Exit(EXIT_UNTRUSTED)


def collect_images(arguments: list[Path]) -> list[Path]:
    """The files to verify, in the order given; a folder contributes its images, recursively,
    sorted by path. InputError for a path that does not exist or a folder with no image."""
    found: list[Path] = []
    for argument in arguments:
        if argument.is_dir():
            images = _images_under(argument)
            if not images:
                raise InputError(
                    f"no images in {argument}",
                    hint="looked for " + ", ".join(sorted(s[1:] for s in IMAGE_SUFFIXES)),
                )
            found.extend(images)
        elif argument.exists():
            # Named explicitly, a file is verified whatever it is called or holds.
            found.append(argument)
        else:
            raise InputError(f"file {argument} does not exist")
    return found


def _images_under(root: Path) -> list[Path]:
    images: list[Path] = []
    # followlinks=False: a symlink back up the tree must not make the walk endless.
    for directory, subdirs, names in os.walk(root):
        subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
        for name in sorted(names):
            path = Path(directory, name)
            if not name.startswith(".") and path.is_file() and _looks_like_image(path):
                images.append(path)
    return images


def _looks_like_image(path: Path) -> bool:
    from provenance import sniff_mime

    if path.suffix.lower() in IMAGE_SUFFIXES:
        return True
    try:
        with path.open("rb") as handle:
            head = handle.read(_SNIFF_BYTES)
    except OSError:
        return False
    return sniff_mime(head) is not None


def _verify_all(
    verifier: Verifier, paths: list[Path], sidecar: bytes | None, algorithm: str
) -> list[ProvenanceReport]:
    reports: list[ProvenanceReport] = []
    with _progress(len(paths)) as show:
        for done, path in enumerate(paths):
            show(done, path)
            reports.append(_verify_one(verifier, path, sidecar, algorithm))
    return reports


def _verify_one(
    verifier: Verifier, path: Path, sidecar: bytes | None, algorithm: str
) -> ProvenanceReport:
    name = str(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        return _unreadable_report(
            name, None, f"cannot read the file: {exc.strerror or exc}", algorithm
        )
    try:
        return verifier.verify(data, name, sidecar)
    except (ImageInputError, PayloadTooLargeError) as exc:
        return _unreadable_report(name, data, str(exc), algorithm)


def _unreadable_report(
    name: str, data: bytes | None, problem: str, algorithm: str
) -> ProvenanceReport:
    """The report of a file nothing could be checked in (empty, not an image, not readable):
    no credentials, watermark or fingerprint were read, so it is ``absent`` and not trusted."""
    from provenance import C2paReport, ProvenanceReport, Recovery, WatermarkReading, sniff_mime

    body = data or b""
    warning = f"nothing in the file could be checked: {problem}"
    return ProvenanceReport(
        file=name,
        format=sniff_mime(body) if body else None,
        size_bytes=len(body),
        # Of the bytes read: none when the file could not be opened at all.
        sha256=hashlib.sha256(body).hexdigest() if data is not None else "",
        c2pa=C2paReport(state="absent", reason=f"no manifest could be looked for: {problem}"),
        watermark=WatermarkReading(algorithm=algorithm, detected=False, confidence=0.0),
        recovery=Recovery(attempted=False, reason=f"nothing could be read: {problem}"),
        summary=f"The file could not be checked: {problem}.",
        warnings=[warning],
    )


@contextmanager
def _progress(total: int) -> Iterator[Callable[[int, Path], None]]:
    """A progress bar on stderr, only for a person watching several files go by; the caller
    says how many are done and which file is next."""
    console = _console(stderr=True)
    if total < 2 or not console.is_terminal:
        yield lambda _done, _path: None
        return
    columns = (
        TextColumn("verifying"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.description}", style="dim"),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("", total=total)

        def show(done: int, path: Path) -> None:
            progress.update(task, completed=done, description=_clean_name(path.name))

        yield show
        progress.update(task, completed=total)


def _clean_name(name: str) -> str:
    # A file name is not markup, and its control characters must not reach the terminal.
    return escape("".join(ch if ch.isprintable() else "?" for ch in name))


def _console(*, stderr: bool) -> Console:
    # rich turns colours off under NO_COLOR but keeps bold and reverse video; NO_COLOR users
    # (and anything parsing the text) want no escape sequences at all.
    plain = bool(os.environ.get("NO_COLOR"))
    return Console(stderr=stderr, color_system=None) if plain else Console(stderr=stderr)


def _render(reports: list[ProvenanceReport], several: bool) -> None:
    from api.cli._render_report import render_report, render_report_summary

    console = _console(stderr=False)
    for report in reports:
        render_report(console, report)
    if several:
        render_report_summary(console, reports)
