"""A value built on first use, once per owner, and shared by every thread: a check's model."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["Lazy"]

T = TypeVar("T")


class Lazy(Generic[T]):
    """`get()` builds the value the first time, under a lock so that two threads never build it
    twice, and afterwards returns it without taking the lock. A build that raises leaves nothing
    behind: the next `get()` tries again, so a transient failure heals."""

    def __init__(self, build: Callable[[], T]) -> None:
        self._build = build
        self._lock = threading.Lock()
        self._value: T | None = None

    @property
    def value(self) -> T | None:
        """The value if it has been built, else None; never builds it."""
        return self._value

    def get(self) -> T:
        value = self._value
        if value is not None:
            return value
        with self._lock:
            if self._value is None:
                self._value = self._build()
            return self._value
