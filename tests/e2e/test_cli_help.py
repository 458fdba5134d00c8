"""`--help` of every `genseal` command and group, as a user reads it in an 80-column terminal."""

from __future__ import annotations

import re
from collections.abc import Iterator
from itertools import pairwise
from typing import Any, get_args

import pytest
import typer.main
from typer.testing import CliRunner

from api.cli import app
from gen import PRESETS, ImageFormat

runner = CliRunner()
WIDTH = 80
BOX = "│╭╮╰╯─"


def _commands(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from _commands(sub, (*path, name))


COMMANDS = dict(_commands(typer.main.get_command(app)))


def _help(path: tuple[str, ...]) -> str:
    result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": str(WIDTH)})
    assert result.exit_code == 0, result.output
    return result.stdout


def _shown(text: str) -> str:
    """The help's words in order, without the panels' borders or line breaks."""
    return " ".join("".join(c for c in text if c not in BOX).split())


def _option_help(text: str, option: str) -> str:
    """An option's row in the options panel, its wrapped lines joined up."""
    lines = text.splitlines()
    [start] = [i for i, line in enumerate(lines) if re.match(rf"│ +{option}\b", line)]
    column = lines[start].index(option)
    row = [lines[start]]
    for line in lines[start + 1 :]:
        if not line.startswith("│") or line[column] != " ":
            break
        row.append(line)
    return _shown("\n".join(row))


def _prose(text: str) -> list[str]:
    """The lines above the first panel: usage and the help paragraphs."""
    return text.split("╭")[0].splitlines()


def test_every_command_is_walked() -> None:
    assert ("generate",) in COMMANDS and ("policy", "lint") in COMMANDS
    assert len(COMMANDS) > 40


@pytest.mark.parametrize("path", list(COMMANDS), ids=lambda p: " ".join(p) or "genseal")
def test_help_reads_cleanly(path: tuple[str, ...]) -> None:
    text = _help(path)

    assert "<bool>" not in text, "a flag takes no value: no placeholder after it"
    [usage] = [line for line in text.splitlines() if "Usage:" in line]
    assert "{" not in usage and "}" not in usage, usage

    # Rich wraps greedily: a line followed by one whose first word would have fitted was cut
    # short by a line break in the source, mid-sentence.
    lines = _prose(text)
    for line, following in pairwise(lines):
        if line.strip() and following.strip():
            room = WIDTH - 2 - len(line.strip())
            assert len(following.split()[0]) + 1 > room, f"cut short: {line.strip()!r}"

    # Every word of the help is shown: none taken for rich markup and swallowed.
    command = COMMANDS[path]
    shown = _shown(text)
    for paragraph in (command.help or "").split("\n\n"):
        assert " ".join(paragraph.replace("\\[", "[").split()) in shown


@pytest.mark.parametrize("path", [p for p, c in COMMANDS.items() if getattr(c, "commands", None)])
def test_command_lists_show_each_summary_on_its_own_lines(path: tuple[str, ...]) -> None:
    for name, sub in COMMANDS[path].commands.items():
        summary = sub.short_help or ""
        assert summary and "\n" not in summary, f"{name}: {summary!r}"


@pytest.mark.parametrize(
    ("option", "values"),
    [("--preset", list(PRESETS)), ("--format", list(get_args(ImageFormat)))],
)
def test_options_with_a_fixed_set_of_values_list_them(option: str, values: list[str]) -> None:
    takers = [
        path
        for path, command in COMMANDS.items()
        if any(option in getattr(p, "opts", ()) for p in command.params)
    ]
    assert ("generate",) in takers
    for path in takers:
        assert f"One of: {', '.join(values)}." in _option_help(_help(path), option), path


def test_review_statuses_and_benchmarks_are_listed() -> None:
    status = _option_help(_help(("review", "list")), "--status")
    assert "One of: pending, approved, rejected, all." in status
    assert "One of: seal, checks," in _shown(_help(("bench",)))
