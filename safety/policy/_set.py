"""The active policies of a service: a base policy plus per-tenant overlays, hot-reloadable.

    policies/default.yaml               the base (GENSEAL_POLICY)
    policies/tenants/<tenant>.yaml      an overlay for that tenant: `extends: default`, then
                                        `overrides:` / `add:` / `disable:` by rule id

Every overlay in the tenants directory must extend the active base (the prompt screening, which
runs before any tenant rule, is built from the base's term lists). A `PolicySet` is immutable;
`PolicyReloader` builds a new one when a file changes, validates it completely first, and keeps
the old one when the new files do not load.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import structlog

from genseal.errors import PolicyError

from ._engine import Policy

__all__ = ["PolicyReloader", "PolicySet"]

log = structlog.get_logger("genseal.policy")


class PolicySet:
    """A base policy and the tenant overlays that extend it."""

    def __init__(self, base: Policy, overlays: Mapping[str, Policy] | None = None) -> None:
        self.base = base
        self.overlays = dict(overlays or {})

    @classmethod
    def load(cls, base_path: str | Path, tenants_dir: str | Path | None = None) -> PolicySet:
        """Load the base and every `<tenant>.yaml` under `tenants_dir` (default: `tenants/`
        beside the base); any problem in any file raises `PolicyError`."""
        base = Policy.load(base_path)
        directory = Path(tenants_dir) if tenants_dir is not None else base.path.parent / "tenants"
        overlays: dict[str, Policy] = {}
        if directory.is_dir():
            for path in sorted(directory.glob("*.yaml")):
                overlay = Policy.load(path)
                if overlay.base is None or overlay.base.sha256 != base.sha256:
                    raise PolicyError(
                        f"{path}: a tenant overlay must extend the active base policy"
                        f" {base.id!r} ({base.path})"
                    )
                overlays[path.stem] = overlay
        return cls(base, overlays)

    def for_tenant(self, tenant: str | None) -> Policy:
        """The tenant's overlay if it has one, else the base."""
        if tenant and tenant in self.overlays:
            return self.overlays[tenant]
        return self.base

    @property
    def sha256(self) -> str:
        """One hash over every file in the set (what `/healthz` and the reload log show)."""
        digest = hashlib.sha256(self.base.sha256.encode())
        for tenant in sorted(self.overlays):
            digest.update(f"\n{tenant}:{self.overlays[tenant].sha256}".encode())
        return digest.hexdigest()

    def summary(self) -> dict[str, object]:
        return {
            "id": self.base.id,
            "version": self.base.version,
            "sha256": self.base.sha256,
            "set_sha256": self.sha256,
            "tenants": {
                tenant: {"id": p.id, "version": p.version, "sha256": p.sha256, "mode": p.mode}
                for tenant, p in sorted(self.overlays.items())
            },
        }


def _snapshot(base_path: Path, tenants_dir: Path | None) -> dict[str, str]:
    """sha256 of every file that makes up the set (cheap: a few small files)."""
    directory = tenants_dir if tenants_dir is not None else base_path.parent / "tenants"
    paths = [base_path, *(sorted(directory.glob("*.yaml")) if directory.is_dir() else [])]
    found: dict[str, str] = {}
    for path in paths:
        try:
            found[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError:
            found[str(path)] = "unreadable"
    return found


class PolicyReloader:
    """Watches the policy files; on a change, validates the new set and swaps it in.

    `check()` is cheap (hashes a few small files) and is what the background thread calls;
    an invalid file is logged with its error and the old policy stays active.
    """

    def __init__(
        self,
        base_path: str | Path,
        tenants_dir: str | Path | None = None,
        *,
        on_change: Callable[[PolicySet], None] | None = None,
        settle_seconds: float = 0.2,
    ) -> None:
        self.base_path = Path(base_path)
        self.settle_seconds = settle_seconds
        self.on_change = on_change
        self.tenants_dir = Path(tenants_dir) if tenants_dir is not None else None
        self._lock = threading.Lock()
        self._snapshot = _snapshot(self.base_path, self.tenants_dir)
        self.current = PolicySet.load(self.base_path, self.tenants_dir)
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def check(self) -> bool:
        """Reload if any file changed; True when a new policy set became active."""
        with self._lock:
            snapshot = _snapshot(self.base_path, self.tenants_dir)
            if snapshot == self._snapshot:
                return False
            # Editors and `write_text` truncate before they write: a file caught half-written
            # would be rejected for an error nobody made. Load only once it holds still.
            if self.settle_seconds > 0:
                time.sleep(self.settle_seconds)
                if _snapshot(self.base_path, self.tenants_dir) != snapshot:
                    return False  # still being written; the next poll looks again
            self._snapshot = snapshot
            old = self.current
            try:
                new = PolicySet.load(self.base_path, self.tenants_dir)
            except PolicyError as exc:
                self.last_error = str(exc)
                log.error(
                    "policy reload rejected; the old policy stays active",
                    error=str(exc),
                    active_sha256=old.sha256,
                )
                return False
            if self.on_change is not None:
                self.on_change(new)  # e.g. rebuild the screener before requests see the policy
            self.current = new
            self.last_error = None
            log.info(
                "policy reloaded",
                old_sha256=old.sha256,
                new_sha256=new.sha256,
                old_base=f"{old.base.id}@{old.base.version}:{old.base.sha256}",
                new_base=f"{new.base.id}@{new.base.version}:{new.base.sha256}",
            )
            return True

    def start(self, interval: float) -> None:
        """Poll every `interval` seconds in a daemon thread (idempotent)."""
        if self._thread is not None or interval <= 0:
            return
        self._stop.clear()

        def run() -> None:
            while not self._stop.wait(interval):
                try:
                    self.check()
                except Exception as exc:  # never let the watcher die silently
                    log.error("policy watcher failed", error=str(exc))

        self._thread = threading.Thread(target=run, name="genseal-policy-reload", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
