"""Manifest store and audit chain on SQLite (the PostgreSQL path uses the same code)."""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
from pathlib import Path

import pytest

from genseal.errors import StoreError
from provenance import ManifestRecord, ManifestStore


def _record(
    id: str, fingerprint_hex: str, *, payload: str = "0badcafe", minutes: int = 0
) -> ManifestRecord:
    return ManifestRecord(
        id=id,
        manifest_label=f"urn:c2pa:{id}",
        manifest_store=b"\x00jumb" + id.encode(),
        watermark_alg="dwtdctsvd",
        watermark_payload=payload,
        fingerprint_alg="pdq",
        fingerprint_hex=fingerprint_hex,
        mime="image/png",
        sha256="ab" * 32,
        created_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC) + dt.timedelta(minutes=minutes),
        tenant="tenant-a",
        model_id="tiny",
        decision="release",
    )


def _flip(hex_: str, bits: int) -> str:
    """``hex_`` with its lowest ``bits`` bits inverted."""
    return f"{int(hex_, 16) ^ ((1 << bits) - 1):064x}"


BASE = "5a" * 32


def test_add_get_and_lookups(store: ManifestStore) -> None:
    first = _record("gs_1", BASE, minutes=0)
    second = _record("gs_2", _flip(BASE, 40), minutes=5)
    other = _record("gs_3", _flip(BASE, 3), payload="12345678", minutes=9)
    for record in (first, second, other):
        store.add(record)
    assert store.get("gs_1") == first
    assert store.get("missing") is None
    assert store.by_label("urn:c2pa:gs_2") == second
    assert store.by_label("urn:c2pa:nope") is None
    assert [r.id for r in store.by_watermark("0BADCAFE")] == ["gs_2", "gs_1"]
    assert store.by_watermark("ffffffff") == []
    loaded = store.get("gs_1")
    assert loaded is not None and loaded.created_at.tzinfo is not None


def test_nearest_orders_by_distance_and_respects_the_bounds(store: ManifestStore) -> None:
    for i, bits in enumerate((0, 10, 20, 33, 120)):
        store.add(_record(f"gs_{i}", _flip(BASE, bits)))
    hits = store.nearest(BASE, max_distance=32)
    assert [(r.id, d) for r, d in hits] == [("gs_0", 0), ("gs_1", 10), ("gs_2", 20)]
    assert [r.id for r, _ in store.nearest(BASE, max_distance=32, limit=2)] == ["gs_0", "gs_1"]
    assert store.nearest("00" * 32, max_distance=8) == []


def test_duplicate_id_is_a_store_error(store: ManifestStore) -> None:
    store.add(_record("gs_1", BASE))
    with pytest.raises(StoreError, match="already stored"):
        store.add(_record("gs_1", BASE))


def test_audit_chain_appends_and_links(store: ManifestStore) -> None:
    assert store.verify_audit_chain()
    first = store.append_audit(
        "released",
        request_id="req-1",
        tenant="tenant-a",
        decision={"action": "release", "score": 0.25, "rule": "é"},
        manifest_id="gs_1",
    )
    second = store.append_audit(
        "blocked", request_id="req-2", tenant="tenant-b", decision={"action": "block"}
    )
    third = store.append_audit("error", request_id="req-3", tenant=None, decision={})
    assert (first.seq, second.seq, third.seq) == (1, 2, 3)
    assert first.prev_hash == "0" * 64
    assert second.prev_hash == first.hash and third.prev_hash == second.hash
    assert first.hash == first.expected_hash()
    assert store.verify_audit_chain()
    assert [e.seq for e in store.audit_entries(10)] == [3, 2, 1]
    assert store.audit_entries(10, tenant="tenant-b") == [second]
    assert [e.seq for e in store.audit_entries(1)] == [3]
    assert [e.seq for e in store.audit_entries(10, before_seq=3)] == [2, 1]
    assert store.audit_entries(10)[-1] == first


def _sql(path: Path, statement: str) -> None:
    with sqlite3.connect(path) as connection:
        connection.execute(statement)


def test_audit_chain_detects_an_edited_row(store: ManifestStore, tmp_path: Path) -> None:
    for i in range(3):
        store.append_audit("released", request_id=f"r{i}", tenant="t", decision={"n": i})
    _sql(tmp_path / "genseal.db", "UPDATE genseal_audit SET decision = '{\"n\":7}' WHERE seq = 2")
    assert not store.verify_audit_chain()
    assert "entry 2 was altered" in (store.audit_chain_break() or "")


def test_audit_chain_detects_removed_rows(store: ManifestStore, tmp_path: Path) -> None:
    for i in range(3):
        store.append_audit("released", request_id=f"r{i}", tenant="t", decision={})
    _sql(tmp_path / "genseal.db", "DELETE FROM genseal_audit WHERE seq = 3")
    assert not store.verify_audit_chain()
    _sql(tmp_path / "genseal.db", "DELETE FROM genseal_audit WHERE seq = 1")
    assert "entry 1 is missing" in (store.audit_chain_break() or "")


def test_concurrent_appends_from_two_stores_keep_one_chain(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    stores = [ManifestStore(url), ManifestStore(url)]
    errors: list[BaseException] = []

    def worker(index: int) -> None:
        try:
            for i in range(15):
                stores[index % 2].append_audit(
                    "released", request_id=f"w{index}-{i}", tenant=None, decision={"i": i}
                )
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert stores[0].verify_audit_chain()
    assert [e.seq for e in stores[1].audit_entries(100)] == list(range(60, 0, -1))
    for manifest_store in stores:
        manifest_store.close()


def test_sqlite_uses_wal(store: ManifestStore, tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "genseal.db") as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_in_memory_database_works() -> None:
    memory = ManifestStore("sqlite://")
    memory.add(_record("gs_1", BASE))
    assert memory.get("gs_1") is not None
    memory.append_audit("released", request_id="r", tenant=None, decision={})
    assert memory.verify_audit_chain()


def test_unusable_databases_are_store_errors(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="invalid database URL"):
        ManifestStore("not a url")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError, match="cannot open the manifest store"):
        ManifestStore(f"sqlite:///{blocker}/sub/genseal.db")
    with pytest.raises(StoreError):
        ManifestStore("postgresql+nosuchdriver://localhost/genseal")
