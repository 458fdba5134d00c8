"""CEL syntax errors in words.

The CEL parser reports what its grammar expected as token sets ("mismatched input 'and'
expecting {<EOF>, '==', '!=', ...}"). A policy author needs where the condition went wrong,
the text found there, and what to write instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["CelSyntaxError", "describe_syntax_error"]

_ERROR = re.compile(r"<input>:(\d+):(\d+): ([^\n]*)")
_MISMATCHED = re.compile(r"(?:mismatched|extraneous) input '(.*)' expecting (.*)")
_UNRECOGNISED = re.compile(r"token recognition error at: '(.*)'", re.DOTALL)
_MISSING = re.compile(r"missing '(.*)' at '(.*)'")
_NO_VIABLE = re.compile(r"no viable alternative at input '(.*)'", re.DOTALL)
_LAST_TOKEN = re.compile(r"""(\|\||&&|==|!=|<=|>=|[-+*/%<>!?:,.(\[{]|"[^"]*"|'[^']*'|[\w.]+)\s*$""")
_WORDS = {"and": "&&", "or": "||", "not": "!"}
_CLOSERS = {"(": ")", "[": "]", "{": "}"}


@dataclass(frozen=True)
class CelSyntaxError:
    """Where in the condition (1-based line and column) and what went wrong there."""

    line: int | None
    column: int | None
    message: str


def describe_syntax_error(expression: str, error: str) -> CelSyntaxError:
    """The parser's `error` for `expression` as one sentence with a hint."""
    found = _ERROR.findall(error)
    # The first syntax error is the cause; any others follow from it.
    syntax = [f for f in found if f[2].startswith("Syntax error: ")]
    if not found:
        return CelSyntaxError(None, None, error.split("\n", 1)[0])
    line, column, detail = (syntax or found)[0]
    at = _Position(expression, int(line), int(column))
    return CelSyntaxError(at.line, at.column, _sentence(at, detail.removeprefix("Syntax error: ")))


@dataclass(frozen=True)
class _Position:
    expression: str
    line: int
    column: int

    def __str__(self) -> str:
        return _where(self.expression, self.line, self.column)

    @property
    def before(self) -> str:
        """The text of the expression before this position."""
        lines = self.expression.split("\n")
        return "\n".join([*lines[: self.line - 1], lines[self.line - 1][: self.column - 1]])


def _where(expression: str, line: int, column: int) -> str:
    if "\n" in expression.strip():
        return f"at line {line}, column {column}"
    return f"at column {column}"


def _sentence(at: _Position, detail: str) -> str:
    if match := _UNRECOGNISED.fullmatch(detail):
        first = (match[1].strip() or match[1])[:1]
        if first in ("'", '"'):
            return f"the string {at} is not closed (end it with {first})"
        if first == "=":
            return f"unexpected '=' {at} (compare with ==)"
        if first in ("&", "|"):
            return f"unexpected {first!r} {at} (and is &&, or is ||)"
        return f"unexpected character {first!r} {at}"
    if match := _MISSING.fullmatch(detail):
        wanted, where = match[1], match[2]
        if where == "<EOF>":
            return _ends_early(at, wanted)
        return f"{wanted!r} is missing before {where!r} {at}"
    if match := _NO_VIABLE.fullmatch(detail):
        if match[1].endswith("."):
            return f"a field name should follow '.' {at}"
        return f"cannot read {match[1].strip()!r} {at}"
    if match := _MISMATCHED.fullmatch(detail):
        found, expected = match[1], match[2]
        if found == "<EOF>":
            return _ends_early(at, ":" if "':'" in expected else None)
        if found.lower() in _WORDS:
            return f"unexpected {found!r} {at} (CEL writes {found} as {_WORDS[found.lower()]})"
        if "IDENTIFIER" in expected:
            return f"a value is missing{_after(at)} {at}, found {found!r}"
        if _unclosed(at.before) is None:
            if found in _CLOSERS.values():
                return f"unmatched {found!r} {at}"
            return f"unexpected {found!r} {at}, after a complete condition (join with && or ||)"
        if "','" in expected:
            return f"unexpected {found!r} {at} (a missing ',' or operator before it?)"
        return f"unexpected {found!r} {at}"
    return f"{detail} {at}"


def _ends_early(at: _Position, wanted: str | None) -> str:
    unclosed = _unclosed(at.expression)
    if unclosed is not None:
        opener, line, column = unclosed
        where = _where(at.expression, line, column)
        return f"the condition ends {at} before {_CLOSERS[opener]!r} closes the {opener!r} {where}"
    if wanted == ":":
        return f"the condition ends {at}: a ? b needs its ': c'"
    if wanted:
        return f"the condition ends {at}: {wanted!r} is missing"
    return f"the condition ends {at}: a value is missing{_after(at)}"


def _after(at: _Position) -> str:
    """ " after '<the token before the position>'", or ""."""
    match = _LAST_TOKEN.search(at.before)
    return f" after {match[1]!r}" if match else ""


def _unclosed(text: str) -> tuple[str, int, int] | None:
    """The innermost bracket left open outside string literals, and its line and column."""
    stack: list[tuple[str, int, int]] = []
    quote: str | None = None
    escaped = False
    for line, characters in enumerate(text.split("\n"), start=1):
        for column, char in enumerate(characters, start=1):
            if quote is not None:
                if escaped:
                    escaped = False
                elif char == "\\":
                    escaped = True
                elif char == quote:
                    quote = None
            elif char in ("'", '"'):
                quote = char
            elif char in _CLOSERS:
                stack.append((char, line, column))
            elif char in _CLOSERS.values() and stack and _CLOSERS[stack[-1][0]] == char:
                stack.pop()
    return stack[-1] if stack else None
