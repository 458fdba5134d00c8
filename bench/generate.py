"""A whole moderated generation on the embedded tiny model at 512², default steps:
screen prompt + generate + screen output + decide + seal + store.

    python -m bench.generate [--runs N]      or      genseal bench generate --json
"""

from __future__ import annotations

from typing import Any

from bench._harness import measure, report, scratch_service
from gen import GenerationRequest


def run(runs: int = 20) -> dict[str, Any]:
    service = scratch_service()
    request = GenerationRequest(prompt="a ceramic figurine of a red fox on a desk", seed=0)
    backend = service.backend(service.settings.model)

    def generate_once() -> None:
        result = service.generate(request)
        assert result.released, result.decision

    stats = measure(generate_once, runs)
    return report(
        "generate",
        stats,
        model=backend.model_id,
        size="x".join(map(str, backend.defaults.size)),
        steps=backend.defaults.steps,
    )


if __name__ == "__main__":
    from bench._cli import main

    main(run)
