"""Watermark embed and detect on a 512² image; the headline figure is embed.

python -m bench.watermark [--runs N]      or      genseal bench watermark --json
"""

from __future__ import annotations

from typing import Any

from bench._harness import carrier, measure, report
from provenance import DwtDctSvdWatermarker


def run(runs: int = 20) -> dict[str, Any]:
    watermarker = DwtDctSvdWatermarker()
    image, source = carrier(512)
    marked = watermarker.embed(image, "c0ffee42")
    reading = watermarker.detect(marked)
    embed = measure(lambda: watermarker.embed(image, "c0ffee42"), runs)
    detect = measure(lambda: watermarker.detect(marked), runs)
    return report(
        "watermark",
        embed,
        algorithm=watermarker.name,
        image="512x512",
        carrier=source,
        detect=detect,
        roundtrip_ok=reading.detected and reading.payload == "c0ffee42",
    )


if __name__ == "__main__":
    from bench._cli import main

    main(run)
