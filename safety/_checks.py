"""The seams every safety check plugs into.

A check reports one `Finding` per category it declares, in one of three states. A check that
cannot run should say so with a NOT_CHECKED finding; if it raises instead, the `Screener` turns
the exception into ERROR findings for every declared category, so `categories` must be
known without running the check.

A check that compares an output with the request's input image (likeness) is a
`ReferenceImageCheck`: it says so with `accepts_reference = True`, and only such checks are
handed the reference, so every other check keeps the plain `ImageCheck` signature.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from PIL import Image

from ._findings import Category, Finding, Stage


@runtime_checkable
class ImageCheck(Protocol):
    """Screens one image (an input image or a generated output)."""

    # Properties rather than bare attributes so read-only implementations satisfy the seam.
    @property
    def name(self) -> str: ...

    @property
    def version(self) -> str: ...

    @property
    def categories(self) -> tuple[Category, ...]: ...

    def check(self, image: Image.Image, stage: Stage, image_index: int = 0) -> list[Finding]: ...


@runtime_checkable
class ReferenceImageCheck(ImageCheck, Protocol):
    """An image check that may also be given a reference image (the request's input)."""

    @property
    def accepts_reference(self) -> bool: ...

    def check(
        self,
        image: Image.Image,
        stage: Stage,
        image_index: int = 0,
        reference: Image.Image | None = None,
    ) -> list[Finding]: ...


@runtime_checkable
class PromptCheck(Protocol):
    """Screens the text prompt; its findings carry `Stage.PROMPT`."""

    @property
    def name(self) -> str: ...

    @property
    def version(self) -> str: ...

    @property
    def categories(self) -> tuple[Category, ...]: ...

    def check(self, prompt: str) -> list[Finding]: ...
