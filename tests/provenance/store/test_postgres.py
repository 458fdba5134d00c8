"""The manifest store on PostgreSQL (marker `services`; skipped without psycopg or a server).

Server: GENSEAL_TEST_POSTGRES_URL, default postgresql+psycopg://postgres@127.0.0.1:5432/postgres.
Each run works in a throwaway database.
"""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import text

import genseal.db
from provenance import ManifestStore
from tests.provenance.store.test_index import _brute, _neighbourhood
from tests.provenance.store.test_sql import BASE, _flip, _record

pytestmark = pytest.mark.services

psycopg = pytest.importorskip("psycopg")


def test_records_and_nearest(pg_url: str) -> None:
    store = ManifestStore(pg_url)
    try:
        store.add(_record("gs_1", BASE))
        store.add(_record("gs_2", _flip(BASE, 12), minutes=3))
        assert store.get("gs_1") == _record("gs_1", BASE)
        assert [r.id for r in store.by_watermark("0badcafe")] == ["gs_2", "gs_1"]
        assert [(r.id, d) for r, d in store.nearest(BASE, 32)] == [("gs_1", 0), ("gs_2", 12)]
    finally:
        store.close()


def test_indexed_nearest_equals_brute_force(pg_url: str) -> None:
    # The PostgreSQL statement form (= ANY(CAST(:v AS INTEGER[])) per band) is its own path.
    base, prints = _neighbourhood(6)
    store = ManifestStore(pg_url)
    try:
        store.add_many([_record(k, v) for k, v in prints.items()])
        for max_distance in (0, 8, 16, 31, 32, 40, 51, 52, 64):
            got = store.nearest(base, max_distance, limit=1000)
            assert [(d, r.id) for r, d in got] == _brute(base, prints, max_distance)
        with store._transaction("analyse") as session:
            session.execute(text("ANALYZE genseal_fingerprint_index"))
            assert ManifestStore._rows_estimate(session) == len(prints)
    finally:
        store.close()


def test_the_previous_band_table_is_migrated(pg_url: str) -> None:
    with psycopg.connect(pg_url.replace("+psycopg", ""), autocommit=True) as connection:
        store = ManifestStore(pg_url)
        store.add(_record("gs_1", BASE))
        store.close()
        # Roll the database back to what the previous release left: its band table and
        # mark, no fingerprint index yet, no review table, and no Alembic revision.
        connection.execute("DROP TABLE genseal_fingerprint_index")
        connection.execute("DROP TABLE genseal_reviews")
        connection.execute("DROP TABLE alembic_version")
        connection.execute(
            "CREATE TABLE genseal_schema (component VARCHAR(64) NOT NULL, version INTEGER "
            "NOT NULL, PRIMARY KEY (component))"
        )
        connection.execute(
            "CREATE TABLE genseal_fingerprint_bands (band INTEGER NOT NULL, value INTEGER "
            "NOT NULL, manifest_id VARCHAR(64) NOT NULL, PRIMARY KEY (band, value, manifest_id))"
        )
        connection.execute("INSERT INTO genseal_schema VALUES ('fingerprint_bands', 1)")
        genseal.db._at_head.clear()  # this process saw the database at head before
        reopened = ManifestStore(pg_url)
        try:
            assert [(r.id, d) for r, d in reopened.nearest(_flip(BASE, 5), 31)] == [("gs_1", 5)]
        finally:
            reopened.close()
        tables = {
            row[0]
            for row in connection.execute(
                "SELECT tablename FROM pg_tables WHERE tablename LIKE 'genseal%'"
            )
        }
        assert "genseal_fingerprint_bands" not in tables and "genseal_schema" not in tables
        revisions = connection.execute("SELECT version_num FROM alembic_version").fetchall()
        assert revisions == [(genseal.db.head(),)]


def test_audit_chain_under_concurrency_and_tampering(pg_url: str) -> None:
    stores = [ManifestStore(pg_url), ManifestStore(pg_url)]
    errors: list[BaseException] = []

    def worker(index: int) -> None:
        try:
            for i in range(10):
                stores[index % 2].append_audit(
                    "released", request_id=f"w{index}-{i}", tenant="t", decision={"x": 0.1 * i}
                )
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert not errors
        assert stores[0].verify_audit_chain()
        assert [e.seq for e in stores[1].audit_entries(5)] == [40, 39, 38, 37, 36]
        with psycopg.connect(pg_url.replace("+psycopg", ""), autocommit=True) as connection:
            connection.execute("UPDATE genseal_audit SET tenant = 'other' WHERE seq = 7")
        assert not stores[0].verify_audit_chain()
    finally:
        for store in stores:
            store.close()


def _append_from_a_process(url: str, writer: int, count: int) -> None:
    store = ManifestStore(url)
    try:
        for i in range(count):
            # Every writer also records the same shared outcomes, as retried jobs would.
            store.append_audit(
                "released",
                request_id=f"p{writer}-{i}",
                tenant="t",
                decision={"i": i},
                entry_key=f"shared/{i % 5}" if i % 2 else None,
            )
    finally:
        store.close()


def test_processes_appending_at_once_keep_one_chain_and_each_key_once(pg_url: str) -> None:
    """Appends are serialised in the database (a row lock on the chain's head), not in a
    Python lock: separate processes, as API replicas and workers are, extend one chain."""
    import multiprocessing

    genseal.db.upgrade(pg_url)
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(target=_append_from_a_process, args=(pg_url, n, 20)) for n in range(4)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(120)
        assert process.exitcode == 0
    store = ManifestStore(pg_url)
    try:
        assert store.verify_audit_chain()
        entries = store.audit_entries(1000)
        # 4 writers x 10 unkeyed appends, and the 5 shared keys once each.
        assert len(entries) == 4 * 10 + 5
        assert [e.seq for e in entries] == list(range(45, 0, -1))
    finally:
        store.close()
