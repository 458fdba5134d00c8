"""Verification of a sealed 512² PNG (C2PA read + trust, watermark, store lookup), of the same
image with its manifest stripped (recovery by watermark + fingerprint), and the throughput of
one CPU core verifying sealed 512² PNG and JPEG files.

The headline (``median_ms``, ``p90_ms``) is the sealed PNG with the machine's default threads.
``one_core`` pins the process to a single CPU (``sched_setaffinity``) with torch and OpenCV at
one thread, so its images/s is what each core adds when verifiers scale out one per core.

    python -m bench.verify [--runs N]      or      genseal bench verify --json
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from PIL import Image

from bench._harness import carrier, measure, png_bytes, report, scratch_service


def run(runs: int = 20) -> dict[str, Any]:
    service = scratch_service()
    image, source = carrier(512)
    sealed = service.seal(png_bytes(image), source_model="bench").images[0].data
    sealed_jpeg = (
        service.seal(png_bytes(image), source_model="bench", output_format="jpeg").images[0].data
    )
    stripped = png_bytes(Image.open(io.BytesIO(sealed)))
    verifier = service.verifier()
    for data in (sealed, sealed_jpeg):
        # A benchmark of a failing verification would measure the wrong thing.
        assert verifier.verify(data).c2pa.state == "trusted"
    signed_stats = measure(lambda: verifier.verify(sealed, "sealed.png"), runs)
    stripped_stats = measure(lambda: verifier.verify(stripped, "stripped.png"), runs)
    with one_core() as how:
        png = _throughput(lambda: verifier.verify(sealed, "sealed.png"), runs)
        jpeg = _throughput(lambda: verifier.verify(sealed_jpeg, "sealed.jpg"), runs)
    return report(
        "verify",
        signed_stats,
        image="512x512 PNG",
        carrier=source,
        stripped=stripped_stats,
        throughput_per_s=round(1000 / signed_stats["median_ms"], 1),
        one_core={
            "cores": 1,
            "how": how,
            "png": {"image": f"512x512 PNG, {len(sealed):,} bytes", **png},
            "jpeg": {"image": f"512x512 JPEG, {len(sealed_jpeg):,} bytes", **jpeg},
        },
    )


def _throughput(fn: Callable[[], Any], runs: int) -> dict[str, Any]:
    stats = measure(fn, runs)
    return {
        **stats,
        "images_per_s_median": round(1000 / stats["median_ms"], 1),
        # The slow tail as a rate: what one core sustains when every file is a p90 file.
        "images_per_s_p90": round(1000 / stats["p90_ms"], 1),
    }


@contextmanager
def one_core() -> Iterator[str]:
    """Run the block on a single CPU, then give the process its CPUs and threads back (the
    benchmark can run inside a longer-lived ``genseal`` process)."""
    import cv2
    import torch

    threads = torch.get_num_threads()
    cv2_threads = cv2.getNumThreads()
    affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    how = ["torch.set_num_threads(1)", "cv2.setNumThreads(1)"]
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    if affinity:
        # Pinning holds every thread to the core, those of libraries started earlier
        # (BLAS, onnxruntime, c2pa) included, which thread settings alone cannot reach.
        cpu = min(affinity)
        os.sched_setaffinity(0, {cpu})
        how.insert(0, f"pinned to CPU {cpu} (sched_setaffinity)")
    else:
        how.insert(0, "not pinned: this platform has no sched_setaffinity")
    try:
        yield ", ".join(how)
    finally:
        if affinity:
            os.sched_setaffinity(0, affinity)
        torch.set_num_threads(threads)
        cv2.setNumThreads(cv2_threads)


if __name__ == "__main__":
    from bench._cli import main

    main(run)
