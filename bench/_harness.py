"""Timing harness shared by the benchmarks: warm up, repeat, report median and p90 as JSON."""

from __future__ import annotations

import io
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image


def measure(fn: Callable[[], Any], runs: int, warmup: int = 2) -> dict[str, float | int]:
    for _ in range(warmup):
        fn()
    samples: list[float] = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    ordered = sorted(samples)
    p90_index = max(0, min(len(ordered) - 1, round(0.9 * len(ordered)) - 1))
    return {
        "runs": runs,
        "median_ms": round(statistics.median(ordered), 2),
        "p90_ms": round(ordered[p90_index], 2),
        "min_ms": round(ordered[0], 2),
        "max_ms": round(ordered[-1], 2),
    }


def machine() -> dict[str, Any]:
    # Only a benchmark that already runs torch reports its threads: importing it here would
    # add seconds to the ones (prompt screening) that never need it.
    torch = sys.modules.get("torch")
    return {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads() if torch is not None else None,
        "platform": platform.platform(),
    }


def carrier(size: int = 512) -> tuple[Image.Image, str]:
    """A real photograph when scikit-image is installed, else the tiny model's output."""
    try:
        from skimage import data

        photo = Image.fromarray(data.astronaut()).convert("RGB")
        return photo.resize((size, size), Image.Resampling.LANCZOS), "skimage astronaut"
    except ImportError:
        from gen import DiffusersBackend, GenerationParams

        backend = DiffusersBackend.load("tiny")
        output = backend.generate(
            GenerationParams(prompt="a red fox", seed=0, width=size, height=size, steps=2)
        )
        return output.images[0], "tiny model output"


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def scratch_service() -> Any:
    """A service with its own fresh home (identity, SQLite store) under a temporary directory."""
    from gen import SealedGenerationService
    from genseal.settings import Settings

    home = Path(tempfile.mkdtemp(prefix="genseal-bench-"))
    return SealedGenerationService(Settings(home=home))


def report(name: str, stats: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"name": name, **stats, **extra, "machine": machine()}
