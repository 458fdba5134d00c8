"""CEL syntax errors in words: where, what was found there, and what to write instead."""

from __future__ import annotations

import cel
import pytest

from safety.policy._cel_syntax import describe_syntax_error


def _described(expression: str) -> tuple[int | None, int | None, str]:
    with pytest.raises(ValueError) as raised:
        cel.compile(expression)
    error = describe_syntax_error(expression, str(raised.value))
    return error.line, error.column, error.message


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("f.flagged and f.x", (1, 11, "unexpected 'and' at column 11 (CEL writes and as &&)")),
        ("f.flagged OR f.x", (1, 11, "unexpected 'OR' at column 11 (CEL writes OR as ||)")),
        ("a &&& b", (1, 5, "unexpected '&' at column 5 (and is &&, or is ||)")),
        ('request.purpose = "x"', (1, 17, "unexpected '=' at column 17 (compare with ==)")),
        ('"unclosed', (1, 1, 'the string at column 1 is not closed (end it with ")')),
        ("@tenant", (1, 1, "unexpected character '@' at column 1")),
        (
            "request.n >= 2 || ",
            (1, 19, "the condition ends at column 19: a value is missing after '||'"),
        ),
        ("f.score > )", (1, 11, "a value is missing after '>' at column 11, found ')'")),
        (
            "has(request.tenant",
            (1, 19, "the condition ends at column 19 before ')' closes the '(' at column 4"),
        ),
        (
            # a bracket inside a string literal is text, not an opening
            "request.tenant in ['a(', 'b'",
            (1, 29, "the condition ends at column 29 before ']' closes the '[' at column 19"),
        ),
        ("findings.size() > 0)", (1, 20, "unmatched ')' at column 20")),
        (
            'request.tenant == "a" request.purpose',
            (
                1,
                23,
                "unexpected 'request' at column 23, after a complete condition"
                " (join with && or ||)",
            ),
        ),
        (
            "findings.exists(f f.flagged)",
            (1, 19, "unexpected 'f' at column 19 (a missing ',' or operator before it?)"),
        ),
        ("request.consent.", (1, 17, "a field name should follow '.' at column 17")),
        ("f.flagged ? 1", (1, 14, "the condition ends at column 14: a ? b needs its ': c'")),
        (
            "findings.exists(f,\n  f.flagged &&\n  )",
            (3, 3, "a value is missing after '&&' at line 3, column 3, found ')'"),
        ),
    ],
)
def test_syntax_errors_read_as_sentences(expression: str, expected: tuple[int, int, str]) -> None:
    assert _described(expression) == expected


def test_an_error_it_does_not_know_is_passed_on_whole() -> None:
    error = describe_syntax_error("x", "something else went wrong\nmore")
    assert (error.line, error.column, error.message) == (None, None, "something else went wrong")
