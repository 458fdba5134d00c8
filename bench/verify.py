"""Verification of a sealed 512² PNG (C2PA read + trust, watermark, store lookup), and of the
same image with its manifest stripped (recovery by watermark + fingerprint).

    python -m bench.verify [--runs N]      or      genseal bench verify --json
"""

from __future__ import annotations

import io
from typing import Any

from PIL import Image

from bench._harness import carrier, measure, png_bytes, report, scratch_service


def run(runs: int = 20) -> dict[str, Any]:
    service = scratch_service()
    image, source = carrier(512)
    sealed = service.seal(png_bytes(image), source_model="bench").images[0].data
    stripped = png_bytes(Image.open(io.BytesIO(sealed)))
    verifier = service.verifier()
    signed_stats = measure(lambda: verifier.verify(sealed, "sealed.png"), runs)
    stripped_stats = measure(lambda: verifier.verify(stripped, "stripped.png"), runs)
    return report(
        "verify",
        signed_stats,
        image="512x512 PNG",
        carrier=source,
        stripped=stripped_stats,
        throughput_per_s=round(1000 / signed_stats["median_ms"], 1),
    )


if __name__ == "__main__":
    from bench._cli import main

    main(run)
