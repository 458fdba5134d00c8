"""The fingerprint band index: exact nearest-neighbour answers, and old stores migrated."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from genseal.db import head
from provenance import ManifestRecord, ManifestStore, hamming
from provenance.store._index import (
    BANDS,
    MAX_PROBES,
    WIDTHS,
    band_values,
    parse,
    plan,
    probe_count,
    probe_values,
)
from tests.provenance.store.test_sql import _record

_SHIFTS = [256 - sum(WIDTHS[: i + 1]) for i in range(BANDS)]


def _flip_in_bands(value: int, per_band: list[int], rng: np.random.Generator) -> int:
    """``value`` with ``per_band[i]`` bits flipped inside band i."""
    for i, count in enumerate(per_band):
        for bit in rng.choice(WIDTHS[i], size=count, replace=False):
            value ^= 1 << (_SHIFTS[i] + int(bit))
    return value


def test_bands_cut_the_fingerprint_exactly() -> None:
    assert sum(WIDTHS) == 256 and max(WIDTHS) <= 24  # every band fits a 32-bit INTEGER
    value = parse("0123456789abcdef" * 4)
    assert value is not None
    bands = band_values(value)
    rebuilt = 0
    for band, width in zip(bands, WIDTHS, strict=True):
        assert 0 <= band < 1 << width
        rebuilt = (rebuilt << width) | band
    assert rebuilt == value
    assert (
        parse("ab") is None and parse("zz" * 32) is None and parse("AB" * 32) == int("ab" * 32, 16)
    )


def test_probe_values_cover_the_threshold() -> None:
    values = probe_values(0b1010, 23, 2)
    assert len(values) == 1 + 23 + 253 == len(set(values))
    assert all(bin(v ^ 0b1010).count("1") <= 2 and v < 1 << 23 for v in values)
    assert probe_values(5, 24, -1) == [] and probe_values(5, 24, 0) == [5]


@pytest.mark.parametrize("max_distance", range(0, 65))
def test_every_plan_is_exact_or_a_scan(max_distance: int) -> None:
    thresholds = plan(max_distance)
    if thresholds is None:  # too many probes: nearest scans
        assert max_distance > 47
        return
    assert len(thresholds) == BANDS and min(thresholds) >= -1
    # Generalised pigeonhole: sum(t_i + 1) > d, so some band is within its threshold.
    assert sum(t + 1 for t in thresholds) >= max_distance + 1
    assert probe_count(thresholds) <= MAX_PROBES


def test_the_verifiers_distance_stays_cheap() -> None:
    # PDQ's match threshold 31: ~2 900 probes (the previous 16 x 16 bands: 272 probes but
    # ~4 150 candidates per million rows; at 32 bits 2 192 probes and ~33 000 candidates).
    assert plan(31) is not None and probe_count(plan(31) or ()) < 3_000
    assert plan(32) is not None and probe_count(plan(32) or ()) < 3_200
    assert plan(8) is not None and probe_count(plan(8) or ()) <= 9


def _brute(base: str, prints: dict[str, str], max_distance: int) -> list[tuple[int, str]]:
    return sorted((d, k) for k, v in prints.items() if (d := hamming(base, v)) <= max_distance)


def _neighbourhood(seed: int) -> tuple[str, dict[str, str]]:
    rng = np.random.default_rng(seed)
    base = rng.bytes(32).hex()
    prints: dict[str, str] = {}
    # Neighbours of one hash at 0-64 bits (flipped anywhere) among random hashes.
    for i in range(150):
        value = int(base, 16)
        for bit in rng.choice(256, size=int(rng.integers(0, 65)), replace=False):
            value ^= 1 << int(bit)
        prints[f"gs_n{i:03d}"] = f"{value:064x}"
    # The pigeonhole's edge for each planned distance: every band differs by t_i + 1 bits
    # except one, which differs by exactly t_i (distance d: must be found) or t_i + 1
    # (distance d + 1 or more: must not).
    for d in (8, 16, 24, 31, 32, 40):
        thresholds = plan(d)
        assert thresholds is not None
        for inside in range(BANDS):
            per_band = [max(t + 1, 0) for t in thresholds]
            per_band[inside] = max(thresholds[inside], 0)
            value = _flip_in_bands(int(base, 16), per_band, rng)
            prints[f"gs_e{d}_{inside:02d}"] = f"{value:064x}"
    for i in range(150):
        prints[f"gs_r{i:03d}"] = rng.bytes(32).hex()
    # Duplicates of the base: ties are ordered by id.
    prints["gs_dup_b"] = prints["gs_dup_a"] = base
    return base, prints


def test_indexed_nearest_equals_brute_force(store: ManifestStore) -> None:
    base, prints = _neighbourhood(4)
    store.add_many([_record(k, v) for k, v in prints.items()])
    for max_distance in (0, 5, 8, 16, 24, 30, 31, 32, 33, 40, 47, 50, 51, 64, 256):
        want = _brute(base, prints, max_distance)
        got = store.nearest(base, max_distance, limit=1000)
        assert [(d, r.id) for r, d in got] == want, max_distance
        limited = store.nearest(base.upper(), max_distance, limit=5)
        assert [(d, r.id) for r, d in limited] == want[:5], max_distance
    assert store.nearest(base, 31, limit=0) == []


def _forbid(monkeypatch: pytest.MonkeyPatch, method: str) -> None:
    def forbidden(*_: object) -> None:
        raise AssertionError(f"{method} was called")

    monkeypatch.setattr(ManifestStore, method, staticmethod(forbidden))


def test_a_large_store_probes_the_index_up_to_51_bits_and_scans_beyond(
    store: ManifestStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    base, prints = _neighbourhood(5)
    store.add_many([_record(k, v) for k, v in prints.items()])
    monkeypatch.setattr(ManifestStore, "_rows_estimate", staticmethod(lambda _: 10**7))
    with monkeypatch.context() as patched:
        _forbid(patched, "_scan")
        for max_distance in (31, 40, 51):
            got = store.nearest(base, max_distance, 1000)
            assert [(d, r.id) for r, d in got] == _brute(base, prints, max_distance)
    _forbid(monkeypatch, "_probe")
    assert [(d, r.id) for r, d in store.nearest(base, 52, 1000)] == _brute(base, prints, 52)


def test_a_small_store_scans_for_loose_distances(
    store: ManifestStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    base, prints = _neighbourhood(7)
    store.add_many([_record(k, v) for k, v in prints.items()])
    with store._transaction("count") as session:
        assert store._rows_estimate(session) == len(prints)
    with monkeypatch.context() as patched:
        _forbid(patched, "_scan")  # few probes: the index, whatever the size
        assert [(d, r.id) for r, d in store.nearest(base, 31, 1000)] == _brute(base, prints, 31)
    # ~370 rows: the 17 287 probes for 40 bits cost more than reading every row.
    _forbid(monkeypatch, "_probe")
    assert [(d, r.id) for r, d in store.nearest(base, 40, 1000)] == _brute(base, prints, 40)


def _record_alg(id: str, fingerprint_hex: str) -> ManifestRecord:
    return _record(id, fingerprint_hex).model_copy(update={"fingerprint_alg": "phash"})


def test_fingerprints_of_another_length_are_found_by_scan(store: ManifestStore) -> None:
    store.add(_record_alg("gs_short", "00ff00ff00ff00ff"))
    store.add(_record("gs_pdq", "00" * 32))
    assert [(r.id, d) for r, d in store.nearest("00ff00ff00ff00fe", 4)] == [("gs_short", 1)]
    assert [(r.id, d) for r, d in store.nearest("00" * 32, 4)] == [("gs_pdq", 0)]
    assert store.nearest("not hex", 4) == []


def _old_row(old: ManifestRecord, crop: bytes | None = None) -> tuple[object, ...]:
    """A manifests row as an earlier release wrote it (with its crop-print column if given)."""
    head = (
        old.id,
        old.manifest_label,
        old.manifest_store,
        old.watermark_alg,
        old.watermark_payload,
        old.fingerprint_alg,
        old.fingerprint_hex,
    )
    tail = (old.mime, old.sha256, "2026-01-01 00:00:00.000000", old.tenant)
    return (*head, *(() if crop is None else (crop,)), *tail, old.model_id, old.decision)


def test_a_store_from_before_the_index_is_migrated_on_open(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old = _record("gs_old", "5a" * 32)
    connection = sqlite3.connect(path)
    # The schema-1 manifests table exactly as the previous release created it.
    connection.execute(
        "CREATE TABLE genseal_manifests (id VARCHAR(64) NOT NULL PRIMARY KEY, "
        "manifest_label VARCHAR(255) NOT NULL, manifest_store BLOB NOT NULL, "
        "watermark_alg VARCHAR(64) NOT NULL, watermark_payload VARCHAR(64) NOT NULL, "
        "fingerprint_alg VARCHAR(32) NOT NULL, fingerprint_hex VARCHAR(128) NOT NULL, "
        "mime VARCHAR(64) NOT NULL, sha256 VARCHAR(64) NOT NULL, created_at DATETIME NOT NULL, "
        "tenant VARCHAR(128), model_id VARCHAR(512) NOT NULL, decision VARCHAR(64) NOT NULL)"
    )
    connection.execute(
        "INSERT INTO genseal_manifests VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", _old_row(old)
    )
    connection.commit()
    connection.close()
    store = ManifestStore(f"sqlite:///{path}")
    loaded = store.get("gs_old")
    assert loaded is not None and loaded.fingerprint_crop is None
    assert [(r.id, d) for r, d in store.nearest("5a" * 32, 32)] == [("gs_old", 0)]
    store.add(_record("gs_new", "5a" * 31 + "5b"))
    store.close()
    # The second open finds the migration done and both rows indexed.
    reopened = ManifestStore(f"sqlite:///{path}")
    assert [r.id for r, _ in reopened.nearest("5a" * 32, 32)] == ["gs_old", "gs_new"]
    reopened.close()


def _old_bands(fingerprint_hex: str) -> list[int]:
    """The previous release's 16 band values of 16 bits."""
    return [int(fingerprint_hex[i : i + 4], 16) for i in range(0, 64, 4)]


def test_a_store_with_the_previous_band_table_is_migrated_on_open(tmp_path: Path) -> None:
    path = tmp_path / "schema2.db"
    rng = np.random.default_rng(8)
    base = rng.bytes(32).hex()
    # gs_old{i} differs from base in its lowest 7 * i bits.
    prints = {f"gs_old{i}": f"{int(base, 16) ^ ((1 << (7 * i)) - 1):064x}" for i in range(8)}
    prints["gs_oldfar"] = rng.bytes(32).hex()
    connection = sqlite3.connect(path)
    # Schema 2 exactly as the previous release created it (manifests + 16 x 16-bit bands).
    connection.executescript(
        """
        CREATE TABLE genseal_manifests (id VARCHAR(64) NOT NULL, manifest_label VARCHAR(255)
          NOT NULL, manifest_store BLOB NOT NULL, watermark_alg VARCHAR(64) NOT NULL,
          watermark_payload VARCHAR(64) NOT NULL, fingerprint_alg VARCHAR(32) NOT NULL,
          fingerprint_hex VARCHAR(128) NOT NULL, fingerprint_crop BLOB, mime VARCHAR(64)
          NOT NULL, sha256 VARCHAR(64) NOT NULL, created_at DATETIME NOT NULL,
          tenant VARCHAR(128), model_id VARCHAR(512) NOT NULL, decision VARCHAR(64) NOT NULL,
          PRIMARY KEY (id));
        CREATE UNIQUE INDEX ix_genseal_manifests_manifest_label
          ON genseal_manifests (manifest_label);
        CREATE INDEX ix_genseal_manifests_watermark_payload
          ON genseal_manifests (watermark_payload);
        CREATE TABLE genseal_fingerprint_bands (band INTEGER NOT NULL, value INTEGER NOT NULL,
          manifest_id VARCHAR(64) NOT NULL, PRIMARY KEY (band, value, manifest_id));
        CREATE TABLE genseal_schema (component VARCHAR(64) NOT NULL, version INTEGER NOT NULL,
          PRIMARY KEY (component));
        INSERT INTO genseal_schema VALUES ('fingerprint_bands', 1);
        """
    )
    for record_id, fingerprint_hex in prints.items():
        old = _record(record_id, fingerprint_hex)
        connection.execute(
            "INSERT INTO genseal_manifests VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            _old_row(old, crop=b"crop"),
        )
        connection.executemany(
            "INSERT INTO genseal_fingerprint_bands VALUES (?,?,?)",
            [(band, value, record_id) for band, value in enumerate(_old_bands(fingerprint_hex))],
        )
    connection.commit()
    connection.close()

    store = ManifestStore(f"sqlite:///{path}")
    for max_distance in (0, 20, 31, 32, 64, 256):
        want = _brute(base, prints, max_distance)
        got = store.nearest(base, max_distance, limit=100)
        assert [(d, r.id) for r, d in got] == want, max_distance
    loaded = store.get("gs_old3")
    assert loaded is not None and loaded.fingerprint_crop == b"crop"
    store.add(_record("gs_new", base))
    store.close()
    with sqlite3.connect(path) as connection:
        tables = {r[0] for r in connection.execute("SELECT name FROM sqlite_master")}
        revisions = connection.execute("SELECT version_num FROM alembic_version").fetchall()
    # The stale band table is gone, and the schema marks with it: Alembic's revision replaces
    # them (an older genseal finds neither, and rebuilds its own index).
    assert "genseal_fingerprint_bands" not in tables and "genseal_schema" not in tables
    assert "genseal_fingerprint_index" in tables
    assert revisions == [(head(),)]
    reopened = ManifestStore(f"sqlite:///{path}")
    got = reopened.nearest(base, 31, limit=3)
    assert [(d, r.id) for r, d in got] == [(0, "gs_new"), (0, "gs_old0"), (7, "gs_old1")]
    reopened.close()
