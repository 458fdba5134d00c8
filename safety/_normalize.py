"""Text normalisation for prompt screening: undo the cheap obfuscations people use on filters.

Two halves that work together:

- `normalize_text` rewrites the prompt (Unicode compatibility forms, case, diacritics, invisible
  characters, mixed-script look-alikes, long letter runs), and `matching_forms` adds the forms
  with words spelled out letter by letter ("n.u.d.e", "n u d e") joined;
- `term_regex` turns a list term into a pattern that absorbs what cannot be undone without
  guessing (leetspeak, where "1" may be "i" or "l"; letters repeated any number of times) and
  matches whole words only, so "class" never matches "ass".

`unleet` is the guess `term_regex` avoids, for consumers that need plain words rather than a
pattern (a sentence-embedding model reads "n4k3d" as noise, not as "naked").
"""

from __future__ import annotations

import functools
import re
import unicodedata

__all__ = ["matching_forms", "normalize_text", "term_pattern", "term_regex", "unleet"]

# Cyrillic and Greek letters that render like Latin ones. Only applied inside words that also
# contain ASCII letters: mixing scripts in one word is the obfuscation, a Russian word is not.
_CONFUSABLES = str.maketrans(
    {
        "а": "a",
        "в": "b",
        "е": "e",
        "ё": "e",
        "к": "k",
        "м": "m",
        "н": "h",
        "о": "o",
        "р": "p",
        "с": "c",
        "т": "t",
        "у": "y",
        "х": "x",
        "і": "i",
        "ї": "i",
        "ј": "j",
        "ѕ": "s",
        "ԁ": "d",
        "ɡ": "g",
        "α": "a",
        "β": "b",
        "ε": "e",
        "ι": "i",
        "κ": "k",
        "ν": "v",
        "ο": "o",
        "ρ": "p",
        "τ": "t",
        "υ": "u",
        "χ": "x",
    }
)

# Characters that stand for a letter inside a word. Digits are ambiguous ("1" is "i" or "l"),
# so they become character classes in the term pattern instead of being rewritten in the text.
_LEET: dict[str, str] = {
    "a": "4@",
    "b": "8",
    "e": "3",
    "g": "9",
    "i": "1!",
    "l": "1|",
    "o": "0",
    "s": "5$",
    "t": "7+",
    "z": "2",
}

# A "word character" for matching purposes: letters and digits of any script, and the symbols
# leetspeak uses as letters. Underscores separate words ("nude_photo").
_WORD = r"[^\W_]|[@$]"
_NOT_BEFORE = r"(?<![^\W_])(?<![@$])"
_NOT_AFTER = r"(?![^\W_])(?![@$])"

# Separators people put between the letters of a word: "n.u.d.e", "n u d e", "n-u-d-e". The
# same separator throughout, so "a n.u.d.e" keeps its article apart.
_SEP = r"[\s.\-_*~+/\\·•,:;'\"|]{1,3}"
_SPELLED_OUT = re.compile(
    rf"{_NOT_BEFORE}(?:{_WORD})(?P<sep>{_SEP})(?:{_WORD})(?:(?P=sep)(?:{_WORD})){{1,}}{_NOT_AFTER}"
)
_TOKEN = re.compile(r"\S+")
_LONG_RUN = re.compile(r"(.)\1{2,}")


def _strip_marks(text: str) -> str:
    decomposed = unicodedata.normalize("NFD", text)
    kept = (c for c in decomposed if unicodedata.category(c) != "Mn")
    return unicodedata.normalize("NFC", "".join(kept))


def _unconfuse(token: str) -> str:
    if any("a" <= c <= "z" for c in token) and not token.isascii():
        return token.translate(_CONFUSABLES)
    return token


def _join(match: re.Match[str]) -> str:
    return match.group(0).replace(match.group("sep"), "")


def _join_after_first(match: re.Match[str]) -> str:
    # "a n u d e": the first letter may be a one-letter word ("a", "I") before the spelled one.
    sep = match.group("sep")
    first, _, rest = match.group(0).partition(sep)
    return first + " " + rest.replace(sep, "")


def normalize_text(text: str) -> str:
    """Canonical form of a prompt (or of a list term) for matching.

    NFKC (fullwidth, ligatures, math alphanumerics, circled letters → plain), invisible format
    characters removed (zero-width joiners, soft hyphens), casefold, diacritics stripped,
    mixed-script look-alikes mapped to Latin, and runs of 3+ identical characters shortened to
    2 ("nuuuude" → "nuude"; the term pattern accepts any repetition, and the cap keeps regex
    backtracking bounded).
    """
    text = unicodedata.normalize("NFKC", text)
    text = "".join(c for c in text if unicodedata.category(c) != "Cf")
    text = _strip_marks(text.casefold())
    text = _TOKEN.sub(lambda m: _unconfuse(m.group(0)), text)
    return _LONG_RUN.sub(r"\1\1", text)


def matching_forms(text: str) -> tuple[str, ...]:
    """The forms of a prompt to search terms in: normalised, and with spelled-out words joined.

    "n.u.d.e" and "n u d e" → "nude"; for "a n u d e" also "a nude". Searching every form (and
    taking the union) keeps the joins from hiding a match elsewhere in the prompt.
    """
    base = normalize_text(text)
    if not _SPELLED_OUT.search(base):
        return (base,)
    return (base, _SPELLED_OUT.sub(_join, base), _SPELLED_OUT.sub(_join_after_first, base))


def _char_pattern(char: str, count: int) -> str:
    alternatives = _LEET.get(char, "")
    cls = re.escape(char) if not alternatives else f"[{re.escape(char + alternatives)}]"
    # One quantifier per run ("ss" → s{2,}) rather than "s+s+": same language, no backtracking.
    return f"{cls}+" if count == 1 else f"{cls}{{{count},}}"


def _word_pattern(word: str) -> str:
    parts: list[str] = []
    i = 0
    while i < len(word):
        j = i
        while j < len(word) and word[j] == word[i]:
            j += 1
        parts.append(_char_pattern(word[i], j - i))
        i = j
    return "".join(parts)


@functools.cache
def term_regex(term: str) -> re.Pattern[str]:
    """``term_pattern`` compiled (once per process: the default lists hold hundreds of terms,
    more than ``re``'s own cache keeps)."""
    return re.compile(term_pattern(term))


def term_pattern(term: str) -> str:
    """Whole-word pattern for one list term, to search in `normalize_text` output; ValueError
    for a term that is not words.

    A term is one or more words; words in a phrase may be written apart or together
    ("school girl" matches "schoolgirl"). A trailing "*" makes the last word a prefix
    ("porn*" matches "pornographic"); otherwise a plain plural ("s"/"es") is accepted.
    """
    prefix = term.rstrip().endswith("*")
    words = normalize_text(term.rstrip().rstrip("*")).split()
    if not words or not all(re.fullmatch(r"(?:[^\W_])+", w) for w in words):
        raise ValueError(f"term {term!r} must be words of letters and digits (optionally '*')")
    body = r"[\W_]*".join(_word_pattern(w) for w in words)
    tail = r"(?:[^\W_]|[@$])*" if prefix else rf"(?:[e3]?[s5$])?{_NOT_AFTER}"
    return f"{_NOT_BEFORE}{body}{tail}"


# One reading per leet character (the commonest): for plain-word consumers a best guess beats
# no reading. "2", "6", "8" and "9" stay out: in prompts they are far more often numbers.
_UNLEET = str.maketrans(
    {"4": "a", "@": "a", "3": "e", "1": "i", "0": "o", "5": "s", "$": "s", "7": "t"}
)
_LEET_TOKEN = re.compile(r"(?<![^\W_])[a-z0-9@$]+(?![^\W_])")
# "v2", "ps5", "ak47": a short letter prefix and a number is a model name, not leetspeak.
_MODEL_NAME = re.compile(r"[a-z]{1,2}\d+")


def _unleet_token(match: re.Match[str]) -> str:
    token = match.group(0)
    letters = sum("a" <= c <= "z" for c in token)
    if (
        letters < 2
        or letters == len(token)
        # "8k", "35mm", "1990s", "1girl": a leading digit is a quantity; "@name" is a handle.
        or not ("a" <= token[0] <= "z" or token[0] == "$")
        or any(c in "2689" for c in token)
        or _MODEL_NAME.fullmatch(token)
    ):
        return token
    return token.translate(_UNLEET)


def unleet(text: str) -> str:
    """Leetspeak in `normalize_text` output spelled back as letters: "n4k3d" → "naked",
    "s3x" → "sex", "pr0n" → "pron"; quantities and model names ("8k", "35mm", "ps5") are kept."""
    return _LEET_TOKEN.sub(_unleet_token, text)
