"""The fingerprint band index: exact nearest-neighbour answers, and old stores migrated."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np

from provenance import ManifestStore, hamming
from provenance._fpindex import band_values, probe_values, radius_for
from tests.provenance.test_store import _record


def test_probe_values_cover_the_radius() -> None:
    assert radius_for(31) == 1 and radius_for(32) == 2 and radius_for(47) == 2
    values = probe_values(0b1010, 2)
    assert len(values) == 1 + 16 + 120 == len(set(values))
    assert all(bin(v ^ 0b1010).count("1") <= 2 for v in values)
    assert band_values("ab" * 32) == [0xABAB] * 16
    assert band_values("ab") is None and band_values("zz" * 32) is None


def test_indexed_nearest_equals_brute_force(store: ManifestStore) -> None:
    rng = np.random.default_rng(4)
    base = rng.bytes(32).hex()
    prints: dict[str, str] = {}
    # Neighbours of one hash at 0-60 bits (flipped anywhere) among random hashes.
    for i in range(150):
        value = int(base, 16)
        for bit in rng.choice(256, size=int(rng.integers(0, 61)), replace=False):
            value ^= 1 << int(bit)
        prints[f"gs_n{i}"] = f"{value:064x}"
    for i in range(150):
        prints[f"gs_r{i}"] = rng.bytes(32).hex()
    store.add_many([_record(k, v) for k, v in prints.items()])
    for max_distance in (8, 31, 32, 47, 60):
        want = sorted((d, k) for k, v in prints.items() if (d := hamming(base, v)) <= max_distance)
        got = store.nearest(base, max_distance, limit=1000)
        assert [(d, r.id) for r, d in got] == want, max_distance


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
        "INSERT INTO genseal_manifests VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (
            old.id,
            old.manifest_label,
            old.manifest_store,
            old.watermark_alg,
            old.watermark_payload,
            old.fingerprint_alg,
            old.fingerprint_hex,
            old.mime,
            old.sha256,
            "2026-01-01 00:00:00.000000",
            old.tenant,
            old.model_id,
            old.decision,
        ),
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
