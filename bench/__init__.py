"""Benchmarks (not tests). Each prints one JSON object with name, runs, median_ms and p90_ms."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def _lazy(module: str) -> Callable[[int], dict[str, Any]]:
    def run(runs: int) -> dict[str, Any]:
        from importlib import import_module

        result: dict[str, Any] = import_module(f"bench.{module}").run(runs)
        return result

    return run


BENCHMARKS: dict[str, Callable[[int], dict[str, Any]]] = {
    name: _lazy(name)
    for name in (
        "seal",
        "checks",
        "watermark",
        "verify",
        "sign",
        "generate",
        "robustness",
        "store",
        "load",
        "prompts",
        "faces",
        "bias",
        "scale",
        "startup",
        "soak",
    )
}

__all__ = ["BENCHMARKS"]
