"""``genseal tenants`` and ``genseal audit`` end to end: keys shown once and stored hashed, and
an audit log whose tampering (edit, removal, reordering) the verify command finds."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

from typer.testing import CliRunner

from api.cli import app
from api.tenants._store import TenantStore
from genseal.settings import Settings
from provenance import ManifestStore

runner = CliRunner()


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_tenant_keys_are_shown_once_and_stored_only_as_a_hash(genseal_home: Path) -> None:
    code, stdout, stderr = invoke("tenants", "create", "acme", "--rate-limit", "30/minute")
    assert code == 0, stderr
    key = next(line.split()[-1] for line in stdout.splitlines() if line.startswith("API key"))
    assert "shown only now" in stderr
    store = TenantStore(Settings(home=genseal_home).store_url)
    assert store.authenticate(key) is not None
    # The store runs in WAL mode: until a checkpoint, fresh rows live only in the -wal file.
    database = b"".join(path.read_bytes() for path in genseal_home.glob("genseal.db*"))
    assert key.encode() not in database
    with sqlite3.connect(genseal_home / "genseal.db") as connection:
        [(stored,)] = connection.execute("SELECT key_sha256 FROM genseal_tenants").fetchall()
    assert stored == hashlib.sha256(key.encode()).hexdigest()

    code, stdout, _ = invoke("tenants", "list", "--json")
    assert code == 0
    [listed] = json.loads(stdout)
    assert listed["name"] == "acme" and listed["rate_limit"] == "30/minute"
    assert key not in stdout

    code, stdout, _ = invoke("tenants", "rotate-key", "acme", "--json")
    assert code == 0
    assert store.authenticate(key) is None, "the old key stops working at once"
    assert store.authenticate(json.loads(stdout)["api_key"]) is not None

    code, _, stderr = invoke("tenants", "create", "acme")
    assert code == 2 and "acme" in stderr and "Traceback" not in stderr
    code, _, stderr = invoke("tenants", "create", "Not A Name")
    assert code == 2 and "invalid tenant name" in stderr


def _log_with_entries(home: Path, n: int) -> Path:
    store = ManifestStore(Settings(home=home).store_url)
    for i in range(n):
        store.append_audit("released", request_id=f"r{i}", tenant="acme", decision={"n": i})
    return home / "genseal.db"


def _sql(path: Path, *statements: str) -> None:
    with sqlite3.connect(path) as connection:
        for statement in statements:
            connection.execute(statement)


def test_audit_verify_passes_on_an_intact_log(genseal_home: Path) -> None:
    _log_with_entries(genseal_home, 4)
    code, stdout, _ = invoke("audit", "verify", "--json")
    assert code == 0
    assert json.loads(stdout) == {"intact": True, "problem": None, "entries": 4}
    code, stdout, _ = invoke("audit", "list", "--limit", "2", "--json")
    assert code == 0
    assert [e["seq"] for e in json.loads(stdout)] == [4, 3]


def test_audit_verify_finds_an_edited_entry(genseal_home: Path) -> None:
    database = _log_with_entries(genseal_home, 4)
    _sql(database, "UPDATE genseal_audit SET tenant = 'globex' WHERE seq = 2")
    code, _, stderr = invoke("audit", "verify")
    assert code == 1
    assert "entry 2 was altered" in stderr


def test_audit_verify_finds_a_removed_entry(genseal_home: Path) -> None:
    database = _log_with_entries(genseal_home, 4)
    _sql(database, "DELETE FROM genseal_audit WHERE seq = 3")
    code, stdout, _ = invoke("audit", "verify", "--json")
    assert code == 1
    assert "entry 3 is missing" in json.loads(stdout)["problem"]


def test_audit_verify_finds_reordered_entries(genseal_home: Path) -> None:
    database = _log_with_entries(genseal_home, 4)
    # Swap entries 2 and 3, sequence numbers and all: every row is intact on its own.
    _sql(
        database,
        "UPDATE genseal_audit SET seq = -2 WHERE seq = 2",
        "UPDATE genseal_audit SET seq = 2 WHERE seq = 3",
        "UPDATE genseal_audit SET seq = 3 WHERE seq = -2",
    )
    code, stdout, _ = invoke("audit", "verify", "--json")
    assert code == 1
    problem = json.loads(stdout)["problem"]
    assert "does not link" in problem or "altered" in problem
