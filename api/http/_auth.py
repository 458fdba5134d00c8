"""Who is calling, and whether they may: API keys → tenants, and rate limits.

Authentication is on as soon as a tenant exists (``genseal tenants create``) or static keys
are configured (``GENSEAL_API_KEYS``, each its own tenant named ``key-<digest>``); with
neither, the API is open, as a local tool is, and ``genseal serve`` listens only on loopback
unless ``GENSEAL_AUTH=none`` says the openness is meant. Unknown and disabled keys get 401.

Rate limits use the ``limits`` library's moving window: per tenant (its own limit, else
``GENSEAL_RATE_LIMIT``) on the authenticated endpoints, and per client address on
``/v1/verify``, which needs no key. Counters live in ``GENSEAL_RATE_LIMIT_STORAGE``
(``memory://``: per API process; ``redis://…``: shared by every replica).
"""

from __future__ import annotations

import hashlib
import hmac
import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from api.tenants._store import TenantStore
from genseal.errors import AuthenticationError, ConfigError, RateLimitError
from genseal.settings import Settings

__all__ = ["Caller", "Gatekeeper"]

_AUTH_CACHE_SECONDS = 1.0


@dataclass(frozen=True)
class Caller:
    """An authenticated caller; ``tenant`` None when authentication is off."""

    tenant: str | None
    rate_limit: str


class Gatekeeper:
    def __init__(self, settings: Settings, tenants: TenantStore) -> None:
        self._settings = settings
        self._tenants = tenants
        self._static = {
            hashlib.sha256(key.encode()).hexdigest(): "key-" + _digest(key)
            for key in settings.api_keys
        }
        try:
            self._limiter = MovingWindowRateLimiter(
                storage_from_string(settings.rate_limit_storage)
            )
            self._default_limit = parse(settings.rate_limit)
            self._verify_limit = parse(settings.verify_rate_limit)
        except (ValueError, ConfigError) as exc:
            raise ConfigError(f"invalid rate limit settings: {exc}") from exc
        self._auth_on: tuple[float, bool] = (0.0, False)

    def auth_required(self) -> bool:
        """On when any tenant or static key exists (cached for a second: a tenant created
        while the server runs switches authentication on within that second)."""
        if self._settings.auth == "none":
            return False
        checked_at, required = self._auth_on
        now = time.monotonic()
        if now - checked_at > _AUTH_CACHE_SECONDS:
            required = bool(self._static) or self._tenants.count() > 0
            self._auth_on = (now, required)
        return required

    def authenticate(self, token: str | None) -> Caller:
        if not self.auth_required():
            return Caller(tenant=None, rate_limit=self._settings.rate_limit)
        if not token:
            raise AuthenticationError("missing API key: send it as 'Authorization: Bearer <key>'")
        digest = hashlib.sha256(token.encode()).hexdigest()
        for known, tenant in self._static.items():
            if hmac.compare_digest(digest, known):
                return Caller(tenant=tenant, rate_limit=self._settings.rate_limit)
        found = self._tenants.authenticate(token)
        if found is None:
            raise AuthenticationError("invalid or disabled API key")
        return Caller(tenant=found.name, rate_limit=found.rate_limit or self._settings.rate_limit)

    def limit_caller(self, caller: Caller) -> None:
        item = self._default_limit
        if caller.rate_limit != self._settings.rate_limit:
            item = parse(caller.rate_limit)
        self._hit(item, "tenant", caller.tenant or "-")

    def limit_address(self, address: str) -> None:
        self._hit(self._verify_limit, "verify", address)

    def _hit(self, item: RateLimitItem, *identifiers: str) -> None:
        if self._limiter.hit(item, *identifiers):
            return
        reset_at, _remaining = self._limiter.get_window_stats(item, *identifiers)
        retry_after = max(1, math.ceil(reset_at - time.time()))
        raise RateLimitError(
            f"rate limit of {item} exceeded; retry in {retry_after} s",
            retry_after=retry_after,
            limit=str(item),
        )


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:12]
