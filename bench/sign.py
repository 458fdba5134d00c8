"""C2PA signing alone: `C2paSigner.sign` of a 512² PNG and a 512² JPEG with a genseal claim
(actions, moderation attestation, soft binding; no thumbnail, no time-stamp authority), with a
development identity. No screening, watermarking, encoding or store: the seal benchmark has
those.

The headline (``median_ms``, ``p90_ms``) is the PNG; ``jpeg`` has the same for the JPEG.

    python -m bench.sign [--runs N]      or      genseal bench sign --json
"""

from __future__ import annotations

import io
import tempfile
from pathlib import Path
from typing import Any

from bench._harness import carrier, measure, png_bytes, report
from provenance import C2paSigner, SealClaim, init_identity


def run(runs: int = 20) -> dict[str, Any]:
    home = Path(tempfile.mkdtemp(prefix="genseal-bench-"))
    signer = C2paSigner(init_identity(home))
    image, source = carrier(512)
    png = png_bytes(image)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    jpeg = buffer.getvalue()
    claim = _claim()
    png_stats = measure(lambda: signer.sign(png, "image/png", claim), runs)
    jpeg_stats = measure(lambda: signer.sign(jpeg, "image/jpeg", claim), runs)
    signed = signer.sign(png, "image/png", claim)
    return report(
        "sign",
        png_stats,
        image=f"512x512 PNG, {len(png):,} bytes",
        carrier=source,
        manifest_bytes=len(signed.manifest_store),
        jpeg={"image": f"512x512 JPEG q90, {len(jpeg):,} bytes", **jpeg_stats},
        signing="ES256, development identity, no thumbnail, no time-stamp authority",
    )


def _claim() -> SealClaim:
    # What the seal stage signs for a released text-to-image output, at its usual size.
    checks = [
        {"check": "prompt_terms", "category": c, "state": "clean", "score": 0.0, "stage": "prompt"}
        for c in ("sexual", "minors", "violence", "self_harm", "hate")
    ]
    checks.append(
        {"check": "opennsfw", "category": "sexual", "state": "clean", "score": 0.002,
         "stage": "output"}
    )  # fmt: skip
    return SealClaim(
        genseal_id="00000000-0000-4000-8000-000000000000",
        title="bench.png",
        software_agent="genseal bench",
        model_id="genseal/tiny-sd",
        kind="created",
        moderation={
            "decision": "allow",
            "input_decision": "allow",
            "policy": {"id": "default", "version": "2", "sha256": "0" * 64},
            "checks": checks,
        },
        soft_binding_alg="org.genseal.dwtdctsvd.1",
        soft_binding_value="c0ffee42",
    )


if __name__ == "__main__":
    from bench._cli import main

    main(run)
