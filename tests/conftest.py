"""Fixtures shared by every test package: a private genseal home and real photographs."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests._media import photo


@pytest.fixture
def genseal_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh GENSEAL_HOME per test: its own identity, manifest store and audit log."""
    home = tmp_path / "home"
    monkeypatch.setenv("GENSEAL_HOME", str(home))
    for name in ("GENSEAL_POLICY", "GENSEAL_MODEL", "GENSEAL_DATABASE_URL", "GENSEAL_API_KEYS"):
        monkeypatch.delenv(name, raising=False)
    for name in ("SIGNING_CERT", "SIGNING_KEY", "SIGNING_ROOT", "SIGNER_PLUGIN", "TSA_URL"):
        monkeypatch.delenv(f"GENSEAL_{name}", raising=False)
    return home


@pytest.fixture
def astronaut_png(tmp_path: Path) -> Path:
    path = tmp_path / "astronaut.png"
    path.write_bytes(photo("astronaut"))
    return path


POSTGRES_ADMIN_URL = os.environ.get(
    "GENSEAL_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


@contextmanager
def throwaway_postgres() -> Iterator[str]:
    """A new PostgreSQL database on GENSEAL_TEST_POSTGRES_URL's server, dropped afterwards;
    skips, saying why, without psycopg or a server."""
    psycopg = pytest.importorskip("psycopg")
    from sqlalchemy.engine import make_url

    admin = make_url(POSTGRES_ADMIN_URL)
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


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A throwaway PostgreSQL database (see ``throwaway_postgres``)."""
    with throwaway_postgres() as url:
        yield url


REDIS_URL = os.environ.get("GENSEAL_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def require_redis() -> str:
    """The test Redis server's URL; skips, saying why, when none answers."""
    redis = pytest.importorskip("redis")
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.skip(f"no Redis server at {REDIS_URL}: {exc}")
    finally:
        client.close()
    return REDIS_URL
