"""Watermark embed and detect on a 512² image, for every backend; the headline figure is
embed + detect of the configured backend (``GENSEAL_WATERMARK``, default rivagan).

``detect_thorough`` is the reading the verifier falls back to when a quick one recovers
nothing, timed on a 20 % centre crop of the marked image (rivaGan re-reads it at every crop
scale; dwtdctsvd has nothing more to try).

python -m bench.watermark [--runs N]      or      genseal bench watermark --json
"""

from __future__ import annotations

from typing import Any

from bench._attacks import crop
from bench._harness import carrier, measure, report
from genseal.settings import Settings
from provenance import WATERMARK_BACKENDS, make_watermarker


def _backend(name: str, runs: int) -> dict[str, Any]:
    watermarker = make_watermarker(name)
    image, _source = carrier(512)
    marked = watermarker.embed(image, "c0ffee42")
    reading = watermarker.detect(marked)
    cropped = crop(0.2, "centre")(marked)
    thorough = watermarker.detect(cropped, thorough=True)

    def both() -> None:
        watermarker.detect(watermarker.embed(image, "c0ffee42"))

    return {
        "embed": measure(lambda: watermarker.embed(image, "c0ffee42"), runs),
        "detect": measure(lambda: watermarker.detect(marked), runs),
        "embed_and_detect": measure(both, runs),
        "detect_thorough": measure(lambda: watermarker.detect(cropped, thorough=True), runs),
        "roundtrip_ok": reading.detected and reading.payload == "c0ffee42",
        "crop20_payload_listed": "c0ffee42" in (thorough.payload, *thorough.candidates),
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
        detect_thorough=headline["detect_thorough"],
        roundtrip_ok=headline["roundtrip_ok"],
        backends=backends,
    )


if __name__ == "__main__":
    from bench._cli import main

    main(run)
