"""``python -m bench.NAME [--runs N]``: run one benchmark and print its JSON."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

from genseal.logs import configure_logging


def main(run: Callable[[int], dict[str, Any]]) -> None:
    parser = argparse.ArgumentParser(description=run.__module__)
    parser.add_argument("--runs", type=int, default=20, help="measured runs (default 20)")
    args = parser.parse_args()
    configure_logging("warning")
    print(json.dumps(run(args.runs), indent=2))
