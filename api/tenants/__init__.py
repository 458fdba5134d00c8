"""Tenants: who may call the API, with which keys, rate limits and webhook secrets."""

from api.tenants._store import IssuedKey, Tenant, TenantStore, validate_rate_limit

__all__ = ["IssuedKey", "Tenant", "TenantStore", "validate_rate_limit"]
