"""Fingerprint search in a large manifest store: multi-index hashing vs a linear scan.

python -m bench.store [--runs N] [--rows 1000000] [--distance 31]
                      [--url sqlite:///... | postgresql+psycopg://...]
genseal bench store --json          (100 000 rows unless GENSEAL_BENCH_STORE_ROWS says otherwise)

Fills the store with random records up to ``--rows`` (random 256-bit fingerprints and payloads;
a store already holding rows is topped up, not refilled, so a filled SQLite file or PostgreSQL
database is reused when given again) and times the insertion, then times
``ManifestStore.nearest(query, distance)`` (default 31, what the verifier asks) for queries
that are a stored fingerprint with 0..distance bits flipped (must be found: ``found``), the
same at 32 bits, random fingerprints (nothing to find: ``miss``), and the linear scan that
``nearest`` falls back to past 51 bits (``linear_scan_64_bits``). Output: one JSON object,
``median_ms``/``p90_ms`` are ``nearest`` at ``distance``.

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


def fill(store: ManifestStore, rows: int, seed: int = 1, *, start: int = 0) -> float:
    """Add ``rows`` random records (ids from ``start``); seconds taken."""
    rng = np.random.default_rng(seed + start)
    started = time.perf_counter()
    for offset in range(start, start + rows, _BATCH):
        store.add_many(_records(offset, min(_BATCH, start + rows - offset), rng))
    return time.perf_counter() - started


def _flip(hex_: str, bits: int, rng: np.random.Generator) -> str:
    value = int(hex_, 16)
    for b in rng.choice(256, size=bits, replace=False):
        value ^= 1 << int(b)
    return f"{value:064x}"


def run(
    runs: int = 50,
    *,
    rows: int | None = None,
    url: str | None = None,
    scan_runs: int = 3,
    distance: int = 31,
) -> dict[str, Any]:
    rows = rows if rows is not None else int(os.environ.get("GENSEAL_BENCH_STORE_ROWS", 100_000))
    if url is None:
        url = f"sqlite:///{Path(tempfile.mkdtemp(prefix='genseal-bench-store-')) / 'store.db'}"
    store = ManifestStore(url)
    existing = store.count()
    added = max(rows - existing, 0)
    fill_s = fill(store, added, start=existing) if added else 0.0
    if added:
        _analyze(store)
    rows = max(rows, existing)
    rng = np.random.default_rng(3)
    targets = [store.get(f"gs_{int(i):09d}") for i in rng.integers(0, rows, size=runs)]
    queries = [
        (t.id, _flip(t.fingerprint_hex, int(rng.integers(0, distance + 1)), rng))
        for t in targets
        if t is not None
    ]

    def hits(max_distance: int) -> tuple[dict[str, float | int], int]:
        found = 0
        pending = iter(queries)

        def hit() -> None:
            nonlocal found
            record_id, query = next(pending)
            found += any(r.id == record_id for r, _ in store.nearest(query, max_distance))

        return measure(hit, len(queries), warmup=0), found

    # Warm the connection pool, prepared statements and the upper index pages with queries
    # other than the timed ones (a verifier's store is long-lived).
    for _ in range(20):
        store.nearest(rng.bytes(32).hex(), distance)
    hit_stats, found = hits(distance)
    hit_32_stats, found_32 = hits(32)
    misses = [rng.bytes(32).hex() for _ in range(runs + 2)]
    miss_stats = measure(lambda: store.nearest(misses.pop(), distance), runs)
    scan_query = queries[0][1]
    # Past the store index's MAX_PROBES (52+ bits) nearest scans the compact fingerprint table.
    scan_stats = measure(lambda: store.nearest(scan_query, 64), scan_runs, warmup=0)
    store.close()
    return {
        "name": "store",
        **hit_stats,
        "max_distance": distance,
        "rows": rows,
        "url": url.split("@")[-1],
        "found": f"{found}/{len(queries)}",
        "inserted": added,
        "insert_s": round(fill_s, 1),
        "insert_rows_per_s": round(added / fill_s) if fill_s else None,
        "nearest_32": {**hit_32_stats, "found": f"{found_32}/{len(queries)}"},
        "miss": miss_stats,
        "linear_scan_64_bits": scan_stats,
        "machine": machine(),
    }


def _analyze(store: ManifestStore) -> None:
    """Fresh planner statistics after a bulk load (PostgreSQL's autovacuum would, later)."""
    from sqlalchemy import text

    with store._transaction("analyze") as session:
        session.execute(text("ANALYZE"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--url", default=None)
    parser.add_argument("--scan-runs", type=int, default=3)
    parser.add_argument("--distance", type=int, default=31)
    args = parser.parse_args()
    result = run(
        args.runs, rows=args.rows, url=args.url, scan_runs=args.scan_runs, distance=args.distance
    )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
