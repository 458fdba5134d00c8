"""The whole seal stage on a 512² image: screen + decide + watermark + sign + store.

python -m bench.seal [--runs N]      or      genseal bench seal --json
"""

from __future__ import annotations

from typing import Any

from bench._harness import carrier, measure, png_bytes, report, scratch_service


def run(runs: int = 20) -> dict[str, Any]:
    service = scratch_service()
    image, source = carrier(512)
    data = png_bytes(image)

    def seal_once() -> None:
        result = service.seal(data, source_model="bench")
        assert result.released, result.decision

    stats = measure(seal_once, runs)
    return report(
        "seal",
        stats,
        image="512x512 PNG",
        carrier=source,
        stages="decode + screen (prompt terms, opennsfw) + decide + watermark + encode "
        "+ fingerprint + C2PA sign + store + audit",
    )


if __name__ == "__main__":
    from bench._cli import main

    main(run)
