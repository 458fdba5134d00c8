"""Multi-index hashing for Hamming-distance search over 256-bit PDQ fingerprints.

A linear scan costs O(rows) per query: ~1 s per million rows in Python. Instead each stored
fingerprint is cut into ``len(WIDTHS)`` = 11 bands (three of 24 bits, eight of 23) and every
band value goes in its own indexed integer column; any database with B-trees (SQLite,
PostgreSQL) then finds candidates with point lookups.

Generalised pigeonhole: give band *i* a threshold ``t_i`` (``-1`` = not probed). If every band
differed in more than its threshold, the distance would be at least ``sum(t_i + 1)``; so when
``sum(t_i + 1) >= d + 1``, every hash within ``d`` bits agrees with the query within ``t_i``
bits on some band *i*. Enumerating, per band, the values within ``t_i`` bits of the query's
(1, 1 + w, 1 + w + w(w-1)/2, ... values) and looking them up therefore finds *every* record
within ``d`` — no approximation — and the exact distance is then computed on the candidates.

``plan`` spreads the ``d + 1`` units of threshold over the bands greedily by marginal cost
(index probes plus the candidates they are expected to return at a million rows; the cost is
convex in ``t``, so greedy is optimal). Expected work for random hashes at 1 M rows:

======  =====================  ======================
``d``   probes                 candidates (≈ rows/2^w per probe)
======  =====================  ======================
8       9                      ~0
16      152                    ~14
24      1 095                  ~77
31      2 866                  ~290
32      3 119                  ~320
40      17 287                 ~2 000
47      58 779                 ~6 600
======  =====================  ======================

Why 11 bands: at ``d = 31`` the previous 16 bands of 16 bits needed radius 1 everywhere
(272 probes but ~4 150 candidates at 1 M rows, growing with the store), and at ``d = 32``
radius 2 (2 192 probes, ~33 000 candidates). Eight bands of 32 bits need ~44 000 probes.
11–12 bands minimise probes + candidates around PDQ's threshold of 31, and 11 keeps the
candidate count lower as the store grows (~2 900 at 10 M rows). Past ``MAX_PROBES`` the
enumeration outgrows a scan's cost and the store scans instead (``plan`` returns None).

Measured with ``python -m bench.store --rows 1000000 [--distance d]`` (README, "Fingerprint
search in the manifest store"), median per query at 1 M random hashes: SQLite d = 16 1.5 ms,
24 3.4 ms, 31 6.2 ms, 40 36 ms, 47 110 ms, 51 229 ms; PostgreSQL d = 31 12.5 ms, 47 139 ms;
a linear scan ~0.94 s (SQLite) / ~1.04 s (PostgreSQL).
"""

from __future__ import annotations

import functools
import itertools
import math
from typing import Final

__all__ = [
    "BANDS",
    "FINGERPRINT_BITS",
    "MAX_PROBES",
    "WIDTHS",
    "band_values",
    "parse",
    "plan",
    "probe_count",
    "probe_values",
]

FINGERPRINT_BITS: Final = 256
# Most significant band first; 3 × 24 + 8 × 23 = 256. Every value fits a signed 32-bit INTEGER.
WIDTHS: Final = (24, 24, 24, 23, 23, 23, 23, 23, 23, 23, 23)
BANDS: Final = len(WIDTHS)
# Beyond this many index probes a query scans instead (d >= 52). At 1 M rows d = 51 (94 199
# probes) took 229 ms median against 0.94-1.7 s for the scan on a loaded machine.
MAX_PROBES: Final = 100_000
# The store size the greedy plan weighs candidates for; the plan is exact at any size.
_NOMINAL_ROWS: Final = 1_000_000
_CANDIDATE_COST: Final = 2.0  # one candidate (row fetch + popcount) ≈ two index probes

_SHIFTS: Final = tuple(
    FINGERPRINT_BITS - sum(WIDTHS[: i + 1]) for i in range(BANDS)
)  # bit offset of each band's least significant bit


def parse(fingerprint_hex: str) -> int | None:
    """A 256-bit hex fingerprint as an integer, or None when it is not one."""
    if len(fingerprint_hex) != FINGERPRINT_BITS // 4:
        return None
    try:
        return int(fingerprint_hex, 16)
    except ValueError:
        return None


def band_values(value: int) -> list[int]:
    """The band values of a 256-bit fingerprint (most significant band first)."""
    return [
        (value >> shift) & ((1 << width) - 1) for shift, width in zip(_SHIFTS, WIDTHS, strict=True)
    ]


def _ball(width: int, threshold: int) -> int:
    """How many ``width``-bit values lie within ``threshold`` bits of one value."""
    return sum(math.comb(width, k) for k in range(threshold + 1))


def _cost(width: int, threshold: int) -> float:
    return _ball(width, threshold) * (1.0 + _CANDIDATE_COST * _NOMINAL_ROWS / (1 << width))


@functools.cache
def plan(max_distance: int) -> tuple[int, ...] | None:
    """Per-band thresholds (-1 = skip the band) that find everything within ``max_distance``.

    None when the probes would exceed ``MAX_PROBES``: scan instead.
    """
    thresholds = [-1] * BANDS
    for _ in range(max(max_distance, 0) + 1):  # sum(t_i + 1) must reach d + 1
        best = min(
            range(BANDS),
            key=lambda i: (
                _cost(WIDTHS[i], thresholds[i] + 1) - _cost(WIDTHS[i], thresholds[i]),
                i,
            ),
        )
        thresholds[best] += 1
    result = tuple(thresholds)
    return result if probe_count(result) <= MAX_PROBES else None


def probe_count(thresholds: tuple[int, ...]) -> int:
    return sum(_ball(w, t) for w, t in zip(WIDTHS, thresholds, strict=True) if t >= 0)


@functools.cache
def _flip_masks(width: int, threshold: int) -> tuple[int, ...]:
    masks = [0]
    for k in range(1, threshold + 1):
        for bits in itertools.combinations(range(width), k):
            masks.append(sum(1 << b for b in bits))
    return tuple(masks)


def probe_values(value: int, width: int, threshold: int) -> list[int]:
    """Every ``width``-bit value within ``threshold`` bits of ``value`` (none for -1)."""
    if threshold < 0:
        return []
    return [value ^ mask for mask in _flip_masks(width, threshold)]
