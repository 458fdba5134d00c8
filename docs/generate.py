"""Writes the generated reference pages: ``python docs/generate.py`` (``--check``: exit 1 and
name the stale pages instead of writing them). The CLI reference comes from the typer app (with
typer's own ``utils docs``), the configuration reference from the settings model."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

DOCS = Path(__file__).resolve().parent


def cli_reference() -> str:
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "cli.md"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "typer",
                "api.cli._app",
                "utils",
                "docs",
                "--name",
                "genseal",
                "--title",
                "Command-line reference",
                "--output",
                str(out),
            ],
            check=True,
            capture_output=True,
            cwd=DOCS.parent,
        )
        return out.read_text()


def configuration_reference() -> str:
    from genseal.settings import reference_markdown

    return reference_markdown()


PAGES = {
    "reference/cli.md": cli_reference,
    "reference/configuration.md": configuration_reference,
}


def stale() -> list[str]:
    return [page for page, make in PAGES.items() if (DOCS / page).read_text() != make()]


def main() -> int:
    if "--check" in sys.argv[1:]:
        pages = stale()
        for page in pages:
            print(f"docs/{page} is stale: run `python docs/generate.py`", file=sys.stderr)
        return 1 if pages else 0
    for page, make in PAGES.items():
        (DOCS / page).write_text(make())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
