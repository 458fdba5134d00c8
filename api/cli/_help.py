"""How every ``genseal`` command shows its help.

Typer's defaults, fixed here once for every command and group: usage lines name arguments as
click does (``PROMPT``, ``[IMAGE]``, ``FILES...``), a flag shows no value placeholder, help
paragraphs are wrapped to the terminal rather than to the source, and a parameter with a fixed
set of values lists them (:class:`Choices`).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from typing import Any, Self

import typer
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption
from typer.models import CommandFunctionType


class Choices(str):
    """A placeholder (metavar) for a parameter with a fixed set of values, which its help lists.

    The values are read from the code that defines them (the presets registry, the image
    formats type) only when the parameter's own command runs or shows its help: that code lives
    in ``gen``, whose import costs about a second that other commands never need to pay.
    """

    values: Callable[[], Iterable[str]]

    def __new__(cls, name: str, values: Callable[[], Iterable[str]]) -> Self:
        choices = super().__new__(cls, name)
        choices.values = values
        return choices


def _reflow(text: str) -> str:
    """Each paragraph on one line: rich wraps it to the terminal, where source line breaks
    would cut sentences short. A paragraph opening with ``\\b`` keeps its lines (click's
    convention); text after ``\\f`` is not help."""
    shown, cut, hidden = text.partition("\f")
    paragraphs = inspect.cleandoc(shown).split("\n\n")
    flowed = (p if p.startswith("\b") else " ".join(p.split()) for p in paragraphs)
    return "\n\n".join(flowed) + cut + hidden


def _help_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """``help`` reflowed, and its first paragraph as ``short_help``: command lists show that
    paragraph whole (typer's rich list keeps its line breaks; click's would cut it at 45
    characters)."""
    help_text = settings.get("help")
    if help_text:
        settings["help"] = _reflow(help_text)
        if not settings.get("short_help"):
            settings["short_help"] = settings["help"].partition("\f")[0].split("\n\n")[0]
    return settings


def _usage_piece(argument: TyperArgument) -> str:
    name = argument.metavar or (argument.name or "").upper()
    if argument.nargs != 1:
        name += "..."
    return name if argument.required else f"[{name}]"


def _usage_pieces(command: TyperCommand | TyperGroup, ctx: Any) -> list[str]:
    pieces = [command.options_metavar] if command.options_metavar else []
    for param in command.get_params(ctx):
        if isinstance(param, TyperArgument):
            pieces.append(_usage_piece(param))
        else:
            pieces.extend(param.get_usage_pieces(ctx))
    return pieces


def _presented(params: list[Any]) -> list[Any]:
    """`params` as help (rich, or typer's generated docs) should show them. Idempotent: a
    command's parameters are asked for at every parse and every rendering."""
    for param in params:
        if isinstance(param.metavar, Choices):
            # In the help column, not as the placeholder: typer's placeholder column is narrow
            # enough to cut "<figurine|photo|sticker>" mid-word, and an argument's placeholder
            # is its name.
            values = ", ".join(param.metavar.values())
            param.help = f"{param.help or ''} One of: {values}.".strip()
            param.metavar = None
        elif isinstance(param, TyperOption) and param.is_flag and param.metavar is None:
            param.metavar = ""  # a flag takes no value: no <bool> placeholder after it
    return params


class HelpCommand(TyperCommand):
    """A command whose help follows the conventions above."""

    def __init__(self, name: str | None, **settings: Any) -> None:
        super().__init__(name, **_help_settings(settings))

    def get_params(self, ctx: Any) -> list[Any]:
        return _presented(super().get_params(ctx))

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        return _usage_pieces(self, ctx)


class HelpGroup(TyperGroup):
    """A group whose help follows the conventions above."""

    def __init__(self, **settings: Any) -> None:
        super().__init__(**_help_settings(settings))

    def get_params(self, ctx: Any) -> list[Any]:
        return _presented(super().get_params(ctx))

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        return [*_usage_pieces(self, ctx), self.subcommand_metavar]


class GensealTyper(typer.Typer):
    """A typer app whose groups and commands are :class:`HelpGroup` and :class:`HelpCommand`."""

    def __init__(self, **settings: Any) -> None:
        settings.setdefault("cls", HelpGroup)
        super().__init__(**settings)

    def command(
        self, name: str | None = None, **settings: Any
    ) -> Callable[[CommandFunctionType], CommandFunctionType]:
        settings.setdefault("cls", HelpCommand)
        return super().command(name, **settings)
