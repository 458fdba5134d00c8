"""Fingerprint search in a large manifest store: multi-index hashing vs a linear scan.

python -m bench.store [--runs N] [--rows 1000000] [--url sqlite:///... | postgresql+psycopg://...]
genseal bench store --json          (100 000 rows unless GENSEAL_BENCH_STORE_ROWS says otherwise)

Fills a fresh store with ``--rows`` records (random 256-bit fingerprints and payloads; a filled
SQLite file is kept and reused when the same path is given again), then times
``ManifestStore.nearest(query, 32)`` for queries that are a stored fingerprint with 0-32 bits
flipped (must be found) and for random fingerprints (nothing to find), against the linear scan
that ``nearest`` falls back to past 47 bits.

Random fingerprints spread evenly over the band values; real PDQ hashes cluster somewhat more,
so real stores see more candidates per probe than this measures.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench._harness import machine, measure
from provenance import ManifestRecord, ManifestStore

_BATCH = 20_000


def _records(start: int, count: int, rng: np.random.Generator) -> list[ManifestRecord]:
    now = dt.datetime.now(dt.UTC)
    prints = rng.integers(0, 256, size=(count, 32), dtype=np.uint8)
    payloads = rng.integers(0, 256, size=(count, 4), dtype=np.uint8)
    return [
        ManifestRecord(
            id=f"gs_{start + i:09d}",
            manifest_label=f"urn:c2pa:bench-{start + i}",
            manifest_store=b"",
            watermark_alg="bench",
            watermark_payload=payloads[i].tobytes().hex(),
            fingerprint_alg="pdq",
            fingerprint_hex=prints[i].tobytes().hex(),
            mime="image/png",
            sha256="00" * 32,
            created_at=now,
            model_id="bench",
            decision="release",
        )
        for i in range(count)
    ]


def fill(store: ManifestStore, rows: int, seed: int = 1) -> float:
    """Add ``rows`` random records; seconds taken."""
    rng = np.random.default_rng(seed)
    started = time.perf_counter()
    for start in range(0, rows, _BATCH):
        store.add_many(_records(start, min(_BATCH, rows - start), rng))
    return time.perf_counter() - started


def _flip(hex_: str, bits: int, rng: np.random.Generator) -> str:
    value = int(hex_, 16)
    for b in rng.choice(256, size=bits, replace=False):
        value ^= 1 << int(b)
    return f"{value:064x}"


def run(
    runs: int = 50, *, rows: int | None = None, url: str | None = None, scan_runs: int = 3
) -> dict[str, Any]:
    rows = rows if rows is not None else int(os.environ.get("GENSEAL_BENCH_STORE_ROWS", 100_000))
    if url is None:
        url = f"sqlite:///{Path(tempfile.mkdtemp(prefix='genseal-bench-store-')) / 'store.db'}"
    store = ManifestStore(url)
    existing = _count(store)
    fill_s = fill(store, rows - existing) if existing < rows else 0.0
    rng = np.random.default_rng(3)
    targets = [store.get(f"gs_{int(i):09d}") for i in rng.integers(0, rows, size=runs)]
    queries = [
        (t.id, _flip(t.fingerprint_hex, int(rng.integers(0, 33)), rng))
        for t in targets
        if t is not None
    ]
    found = 0

    def hit() -> None:
        nonlocal found
        record_id, query = queries[hit.i % len(queries)]  # type: ignore[attr-defined]
        hit.i += 1  # type: ignore[attr-defined]
        found += any(r.id == record_id for r, _ in store.nearest(query, 32))

    hit.i = 0  # type: ignore[attr-defined]
    hit_stats = measure(hit, runs, warmup=0)
    misses = [rng.bytes(32).hex() for _ in range(runs + 2)]
    miss_stats = measure(lambda: store.nearest(misses.pop(), 32), runs)
    scan_query = queries[0][1]
    scan_stats = measure(lambda: store.nearest(scan_query, 48), scan_runs, warmup=0)
    store.close()
    return {
        "name": "store",
        **hit_stats,
        "rows": rows,
        "url": url.split("@")[-1],
        "fill_s": round(fill_s, 1),
        "found": f"{found}/{runs}",
        "miss": miss_stats,
        "linear_scan_48_bits": scan_stats,
        "machine": machine(),
    }


def _count(store: ManifestStore) -> int:
    from sqlalchemy import func, select

    from provenance._store import _ManifestRow

    with store._transaction("count") as session:
        return int(session.scalar(select(func.count()).select_from(_ManifestRow)) or 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--url", default=None)
    parser.add_argument("--scan-runs", type=int, default=3)
    args = parser.parse_args()
    print(
        json.dumps(run(args.runs, rows=args.rows, url=args.url, scan_runs=args.scan_runs), indent=2)
    )


if __name__ == "__main__":
    main()
