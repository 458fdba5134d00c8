"""Runs the configured checks and guarantees every declared category gets a finding."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import TypeGuard

from PIL import Image

from genseal.errors import ConfigError

from ._checks import ImageCheck, PromptCheck, ReferenceImageCheck
from ._findings import Category, CheckState, Finding, Stage

__all__ = ["Screener"]

logger = logging.getLogger(__name__)


class Screener:
    """Screens a prompt or a batch of images with every check, failing closed.

    A check that raises yields an ERROR finding per declared category (reason: the error), and a
    declared category the check silently left out a NOT_CHECKED one: a gap is never clean.
    Checks run in order, one after another; the ML checks parallelise internally.
    """

    def __init__(
        self, prompt_checks: Sequence[PromptCheck], image_checks: Sequence[ImageCheck]
    ) -> None:
        self.prompt_checks = tuple(prompt_checks)
        self.image_checks = tuple(image_checks)
        # Checked up front: a check whose categories are unknown could fail without a trace.
        for check in (*self.prompt_checks, *self.image_checks):
            if not _categories(check):
                raise ConfigError(
                    f"safety check {_attr(check, 'name')} declares no categories",
                    hint="set `categories` to a non-empty tuple of Category",
                )

    def screen_prompt(self, prompt: str) -> list[Finding]:
        findings: list[Finding] = []
        for check in self.prompt_checks:
            findings += _run(check, Stage.PROMPT, None, partial(check.check, prompt))
        return findings

    def screen_images(
        self,
        images: Sequence[Image.Image],
        stage: Stage,
        reference: Image.Image | None = None,
    ) -> list[Finding]:
        """Findings for every image; `reference` (the input image, when screening outputs)
        goes only to checks that declare `accepts_reference`."""
        findings: list[Finding] = []
        for index, image in enumerate(images):
            for check in self.image_checks:
                if _accepts_reference(check):
                    call = partial(
                        check.check, image, stage, image_index=index, reference=reference
                    )
                else:
                    call = partial(check.check, image, stage, image_index=index)
                findings += _run(check, stage, index, call)
        return findings


def _run(
    check: PromptCheck | ImageCheck,
    stage: Stage,
    image_index: int | None,
    call: Callable[[], list[Finding]],
) -> list[Finding]:
    start = time.perf_counter()
    try:
        findings = list(call())
    except Exception as exc:
        logger.warning(
            "safety check %s failed at stage %s (image %s); reporting an error",
            _attr(check, "name"),
            stage.value,
            image_index,
            exc_info=True,
        )
        reason = f"{_attr(check, 'name')} raised {type(exc).__name__}: {exc}"
        return _unchecked(
            check, _categories(check), stage, image_index, reason, start, CheckState.ERROR
        )

    covered = {f.category for f in findings}
    missing = [c for c in _categories(check) if c not in covered]
    if missing:
        logger.warning(
            "safety check %s returned no finding for %s; reporting not checked",
            _attr(check, "name"),
            ", ".join(c.value for c in missing),
        )
        reason = f"{_attr(check, 'name')} returned no finding for this category"
        findings += _unchecked(
            check, missing, stage, image_index, reason, start, CheckState.NOT_CHECKED
        )
    return findings


def _accepts_reference(check: ImageCheck) -> TypeGuard[ReferenceImageCheck]:
    # Declared, not sniffed from the signature: a check opts in to receiving the input image.
    try:
        return getattr(check, "accepts_reference", False) is True
    except Exception:
        return False


def _attr(check: object, name: str) -> str:
    # A broken check must not break the reporting of its failure.
    try:
        return str(getattr(check, name))
    except Exception:
        return f"<{type(check).__name__}>" if name == "name" else "unknown"


def _categories(check: object) -> tuple[Category, ...]:
    try:
        return tuple(Category(c) for c in getattr(check, "categories"))  # noqa: B009
    except Exception:
        return ()


def _unchecked(
    check: object,
    categories: Sequence[Category],
    stage: Stage,
    image_index: int | None,
    reason: str,
    start: float,
    state: CheckState,
) -> list[Finding]:
    elapsed_ms = (time.perf_counter() - start) * 1000.0
    return [
        Finding(
            check=_attr(check, "name"),
            check_version=_attr(check, "version"),
            category=category,
            stage=stage,
            state=state,
            reason=reason,
            image_index=image_index,
            latency_ms=elapsed_ms,
        )
        for category in categories
    ]
