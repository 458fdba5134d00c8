"""The manifest store on PostgreSQL (marker `services`; skipped without psycopg or a server).

Server: GENSEAL_TEST_POSTGRES_URL, default postgresql+psycopg://postgres@127.0.0.1:5432/postgres.
Each run works in a throwaway database.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator

import pytest

from provenance import ManifestStore
from tests.provenance.test_store import BASE, _flip, _record

pytestmark = pytest.mark.services

psycopg = pytest.importorskip("psycopg")

ADMIN_URL = os.environ.get(
    "GENSEAL_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


@pytest.fixture
def pg_url() -> Iterator[str]:
    from sqlalchemy.engine import make_url

    admin = make_url(ADMIN_URL)
    name = f"genseal_test_{uuid.uuid4().hex[:10]}"
    conninfo = admin.set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        connection = psycopg.connect(conninfo, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        pytest.skip(f"no PostgreSQL server at {admin.host}:{admin.port}: {exc}")
    with connection:
        connection.execute(f'CREATE DATABASE "{name}"')
        try:
            yield admin.set(database=name).render_as_string(hide_password=False)
        finally:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


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
