"""All default image checks on a 512² image (what every output goes through).

python -m bench.checks [--runs N]      or      genseal bench checks --json
"""

from __future__ import annotations

from typing import Any

from bench._harness import carrier, measure, report, scratch_service
from safety import Stage


def run(runs: int = 20) -> dict[str, Any]:
    service = scratch_service()
    image, source = carrier(512)
    checks = [check.name for check in service.screener.image_checks]
    stats = measure(lambda: service.screener.screen_images([image], Stage.OUTPUT), runs)
    return report("checks", stats, image="512x512", carrier=source, checks=checks)


if __name__ == "__main__":
    from bench._cli import main

    main(run)
