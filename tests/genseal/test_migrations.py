"""Schema migrations: head equals the models, old databases upgrade in place, opens don't race.

Each test runs on SQLite and on PostgreSQL (the ``pg_url`` fixture: skipped without a server).
"""

from __future__ import annotations

import multiprocessing
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, inspect, text

import genseal.db
import genseal.migrations
from api._tables import model_metadata
from api.jobs._store import JobStore
from api.tenants._store import TenantStore
from genseal.db import differences, ensure_schema, head
from genseal.errors import InputError, StoreError
from provenance import ManifestStore
from tests.provenance.store.test_sql import BASE, _flip, _record


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'genseal.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture(autouse=True)
def _forget_checked_urls() -> Iterator[None]:
    """Each test sees its databases afresh (the process remembers URLs it found at head)."""
    genseal.db._at_head.clear()
    yield
    genseal.db._at_head.clear()


def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def _execute(url: str, *statements: str) -> None:
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            for statement in statements:
                connection.execute(text(statement))
    finally:
        engine.dispose()


def test_the_models_have_a_migration() -> None:
    """The guard: a model changed without a revision fails here. Write one with
    `genseal db revision -m "what changed"` and review it."""
    assert head() == genseal.db.history()[0].revision
    with _scratch() as url:
        genseal.db.upgrade(url)
        assert differences(url, model_metadata()) == [], "a model changed without a migration"


class _scratch:
    def __enter__(self) -> str:
        import tempfile

        self._dir = tempfile.mkdtemp(prefix="genseal-guard-")
        return f"sqlite:///{Path(self._dir) / 'head.db'}"

    def __exit__(self, *_: object) -> None:
        shutil.rmtree(self._dir, ignore_errors=True)


def test_upgrade_from_empty_creates_exactly_the_models_schema(url: str) -> None:
    assert genseal.db.current(url) is None
    assert genseal.db.upgrade(url) == head()
    assert genseal.db.current(url) == head()
    assert differences(url, model_metadata()) == []
    assert {t for t in _tables(url) if t.startswith("genseal_")} == {
        "genseal_manifests",
        "genseal_fingerprint_index",
        "genseal_audit",
        "genseal_audit_head",
        "genseal_jobs",
        "genseal_tenants",
        "genseal_files",
        "genseal_bias_tenants",
        "genseal_bias_days",
        "genseal_bias_counts",
        "genseal_face_identities",
        "genseal_face_descriptors",
        "genseal_face_registry_state",
        "genseal_reviews",
    }
    # Running it again changes nothing.
    assert genseal.db.upgrade(url) == head()
    store = ManifestStore(url)
    try:
        assert store.verify_audit_chain()  # the head row is there
    finally:
        store.close()


def _roll_back_to_before_migrations(url: str) -> None:
    """Make the database what the releases before migrations left: no alembic_version, the audit
    table without ``entry_key`` or the ``manifest_id`` index, manifests not in the fingerprint
    index, the old band table and the ``genseal_schema`` marks; no review table."""
    common = (
        "DROP TABLE alembic_version",
        "DROP TABLE genseal_reviews",  # since revision 0002 (held images were files before)
        "DROP INDEX ix_genseal_audit_manifest_id",
        "DELETE FROM genseal_fingerprint_index",
        "CREATE TABLE genseal_schema (component VARCHAR(64) NOT NULL, "
        "version INTEGER NOT NULL, PRIMARY KEY (component))",
        "INSERT INTO genseal_schema VALUES ('fingerprint_index', 1)",
        "CREATE TABLE genseal_fingerprint_bands (band INTEGER NOT NULL, value INTEGER NOT NULL, "
        "manifest_id VARCHAR(64) NOT NULL, PRIMARY KEY (band, value, manifest_id))",
    )
    if url.startswith("sqlite"):
        # The audit table exactly as the previous release created it (SQLite cannot drop a
        # UNIQUE column: copy the rows over).
        audit = (
            "CREATE TABLE genseal_audit_old (seq INTEGER NOT NULL, at DATETIME NOT NULL, "
            "event VARCHAR(16) NOT NULL, request_id VARCHAR(128) NOT NULL, "
            "tenant VARCHAR(128), decision TEXT NOT NULL, manifest_id VARCHAR(64), "
            "prev_hash VARCHAR(64) NOT NULL, hash VARCHAR(64) NOT NULL, PRIMARY KEY (seq))",
            "INSERT INTO genseal_audit_old SELECT seq, at, event, request_id, tenant, decision, "
            "manifest_id, prev_hash, hash FROM genseal_audit",
            "DROP TABLE genseal_audit",
            "ALTER TABLE genseal_audit_old RENAME TO genseal_audit",
            "CREATE INDEX ix_genseal_audit_request_id ON genseal_audit (request_id)",
            "CREATE INDEX ix_genseal_audit_tenant ON genseal_audit (tenant)",
        )
    else:
        audit = ("ALTER TABLE genseal_audit DROP COLUMN entry_key",)
    _execute(url, *common, *audit)


def test_a_database_from_before_migrations_is_upgraded_with_its_data(url: str) -> None:
    store = ManifestStore(url)
    store.add(_record("gs_1", BASE))
    store.add(_record("gs_2", _flip(BASE, 9), minutes=2))
    for i in range(5):
        store.append_audit(
            "released", request_id=f"r{i}", tenant="acme", decision={"i": i}, manifest_id="gs_1"
        )
    store.close()
    issued = TenantStore(url).create("acme")
    _roll_back_to_before_migrations(url)
    genseal.db._at_head.clear()
    assert genseal.db.current(url) is None
    columns = {c["name"] for c in inspect(create_engine(url)).get_columns("genseal_audit")}
    assert "entry_key" not in columns

    with pytest.raises(StoreError, match="genseal db upgrade"):
        ManifestStore(url, auto_upgrade=False)
    upgraded = ManifestStore(url)  # the embedded default: migrated on open
    try:
        assert genseal.db.current(url) == head()
        assert differences(url, model_metadata()) == []
        tables = _tables(url)
        assert "genseal_schema" not in tables and "genseal_fingerprint_bands" not in tables
        # Every row kept: manifests (now indexed), the audit chain, other components' rows.
        assert [(r.id, d) for r, d in upgraded.nearest(BASE, 16)] == [("gs_1", 0), ("gs_2", 9)]
        assert [e.request_id for e in upgraded.audit_entries()] == [f"r{i}" for i in range(5)][::-1]
        assert upgraded.verify_audit_chain()
        tenant = TenantStore(url).authenticate(issued.api_key)
        assert tenant is not None and tenant.name == "acme"
        # The new column works: an append under a key is made once.
        first = upgraded.append_audit(
            "released", request_id="r5", tenant="acme", decision={}, entry_key="job/1"
        )
        again = upgraded.append_audit(
            "released", request_id="r5", tenant="acme", decision={}, entry_key="job/1"
        )
        assert first.seq == again.seq == 6
        assert upgraded.verify_audit_chain()
    finally:
        upgraded.close()


def test_auto_upgrade_off_refuses_a_database_behind_and_names_the_command(url: str) -> None:
    with pytest.raises(StoreError) as caught:
        ensure_schema(url, auto_upgrade=False)
    message = str(caught.value)
    assert "revision none" in message and head() in message and "genseal db upgrade" in message
    with pytest.raises(StoreError, match="genseal db upgrade"):
        JobStore(url, auto_upgrade=False)
    assert genseal.db.current(url) is None  # nothing was created
    genseal.db.upgrade(url)
    ensure_schema(url, auto_upgrade=False)  # at head: fine
    JobStore(url, auto_upgrade=False).close()


def test_a_database_from_a_newer_genseal_is_refused(url: str) -> None:
    genseal.db.upgrade(url)
    _execute(url, "UPDATE alembic_version SET version_num = 'f00dfeed'")
    with pytest.raises(StoreError, match=r"does not know.*newer genseal"):
        ManifestStore(url)


def test_an_unknown_target_revision_is_an_input_error(url: str) -> None:
    with pytest.raises(InputError, match="no schema revision 'nope'"):
        genseal.db.upgrade(url, "nope")


def test_a_url_at_head_is_checked_once_per_process(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'genseal.db'}"
    ManifestStore(url).close()
    _execute(url, "DROP TABLE alembic_version")
    ManifestStore(url, auto_upgrade=False).close()  # not asked again
    genseal.db._at_head.clear()
    with pytest.raises(StoreError, match="genseal db upgrade"):
        ManifestStore(url, auto_upgrade=False)


def test_in_memory_databases_are_each_migrated() -> None:
    first, second = JobStore("sqlite://"), JobStore("sqlite://")
    try:
        assert first.count("queued") == second.count("queued") == 0
        assert "sqlite://" not in genseal.db._at_head
    finally:
        first.close()
        second.close()
    store = ManifestStore("sqlite://")
    try:
        store.append_audit("released", request_id="r", tenant=None, decision={})
        assert store.verify_audit_chain()
    finally:
        store.close()


def _open_everything(url: str, barrier: Any) -> None:
    """One process starting: every component opens the database at once with the others."""
    barrier.wait()
    store = ManifestStore(url)
    JobStore(url).close()
    TenantStore(url).close()
    store.append_audit("released", request_id="start", tenant=None, decision={})
    store.close()


@pytest.mark.parametrize("processes", [4])
def test_processes_opening_a_fresh_database_together_all_succeed(url: str, processes: int) -> None:
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(processes)
    workers = [
        context.Process(target=_open_everything, args=(url, barrier)) for _ in range(processes)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert [w.exitcode for w in workers] == [0] * processes
    assert genseal.db.current(url) == head()
    assert differences(url, model_metadata()) == []
    store = ManifestStore(url)
    try:
        assert len(store.audit_entries()) == processes
        assert store.verify_audit_chain()
    finally:
        store.close()


def test_a_new_revision_is_written_after_head(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scripts = tmp_path / "migrations"
    shutil.copytree(
        genseal.migrations.SCRIPT_LOCATION, scripts, ignore=shutil.ignore_patterns("__pycache__")
    )
    original = head()
    following = f"{int(original) + 1:04d}"
    monkeypatch.setattr(genseal.migrations, "SCRIPT_LOCATION", scripts)
    genseal.db._scripts.cache_clear()
    try:
        path, changed = genseal.db.new_revision("add nothing", model_metadata())
        assert not changed  # the models are at head
        assert path.parent == scripts / "versions"
        assert path.name == f"{following}_add_nothing.py"
        written = path.read_text()
        assert f"revision: str = '{following}'" in written
        assert f"down_revision: str | Sequence[str] | None = '{original}'" in written
        assert genseal.db.head() == following
    finally:
        monkeypatch.undo()
        genseal.db._scripts.cache_clear()
    assert genseal.db.head() == original


def test_the_newest_script_by_number_is_alembic_s_head() -> None:
    # ensure_schema's quick check trusts the numbering; the real graph must agree.
    assert genseal.db._newest_script_revision() == head()


def test_a_database_at_head_is_recognised_without_alembic_and_one_behind_is_upgraded(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'genseal.db'}"
    genseal.db.upgrade(url, "0001")
    engine = genseal.db.make_engine(url)
    try:
        assert not genseal.db._plainly_at_head(engine)
        genseal.db.ensure_schema(engine)
        assert genseal.db.current(url) == head()
        assert genseal.db._plainly_at_head(engine)
    finally:
        engine.dispose()
