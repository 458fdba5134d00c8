"""Watermark embed and detect on a 512² image, for every backend; the headline figure is
embed + detect of the configured backend (``GENSEAL_WATERMARK``, default dwtdctsvd).

python -m bench.watermark [--runs N]      or      genseal bench watermark --json
"""

from __future__ import annotations

from typing import Any

from bench._harness import carrier, measure, report
from gen import Settings
from provenance import WATERMARK_BACKENDS, make_watermarker


def _backend(name: str, runs: int) -> dict[str, Any]:
    watermarker = make_watermarker(name)
    image, _source = carrier(512)
    marked = watermarker.embed(image, "c0ffee42")
    reading = watermarker.detect(marked)

    def both() -> None:
        watermarker.detect(watermarker.embed(image, "c0ffee42"))

    return {
        "embed": measure(lambda: watermarker.embed(image, "c0ffee42"), runs),
        "detect": measure(lambda: watermarker.detect(marked), runs),
        "embed_and_detect": measure(both, runs),
        "roundtrip_ok": reading.detected and reading.payload == "c0ffee42",
    }


def run(runs: int = 20) -> dict[str, Any]:
    configured = Settings().watermark
    _image, source = carrier(512)
    backends = {name: _backend(name, runs) for name in WATERMARK_BACKENDS}
    headline = backends[configured]
    return report(
        "watermark",
        headline["embed_and_detect"],
        algorithm=configured,
        image="512x512",
        carrier=source,
        embed=headline["embed"],
        detect=headline["detect"],
        roundtrip_ok=headline["roundtrip_ok"],
        backends=backends,
    )


if __name__ == "__main__":
    from bench._cli import main

    main(run)
