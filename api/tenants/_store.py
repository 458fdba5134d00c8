"""Tenants: who may call the API, with which key, policy overlay, rate limit and webhook secret.

An API key is shown once, when it is issued; only its sha256 is stored. Keys are 256 random
bits, so a fast hash is enough (a slow password hash protects guessable secrets, not these),
and looking a key up by its hash is an index probe rather than a scan.

A tenant's id is its name; its policy overlay is ``<name>.yaml`` in the tenants directory
(see ``safety`` policy sets), so a policy team names files after tenants.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import re
import secrets
from typing import ClassVar

from limits import parse as parse_limit
from pydantic import BaseModel, Field
from sqlalchemy import Boolean, DateTime, MetaData, String, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from genseal.db import Database, Tables
from genseal.errors import ConflictError, InputError, NotFoundError, StoreError

__all__ = ["IssuedKey", "Tenant", "TenantStore", "validate_rate_limit"]

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
KEY_PREFIX = "gs_"


class _Base(DeclarativeBase):
    pass


class _TenantRow(_Base):
    __tablename__ = "genseal_tenants"

    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    key_sha256: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    key_hint: Mapped[str] = mapped_column(String(16))
    webhook_secret: Mapped[str] = mapped_column(String(128))
    rate_limit: Mapped[str | None] = mapped_column(String(64), nullable=True)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    key_issued_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class Tenant(BaseModel):
    """A tenant as the API and CLI show it (never its key or its webhook secret)."""

    name: str = Field(description="Tenant id; its policy overlay is <name>.yaml.")
    key_hint: str = Field(description="The first characters of the API key, to tell keys apart.")
    rate_limit: str | None = Field(
        default=None, description="Its own rate limit, e.g. '600/minute'; None: the default."
    )
    disabled: bool = False
    created_at: dt.datetime
    key_issued_at: dt.datetime


class IssuedKey(BaseModel):
    """What `genseal tenants create` / `rotate-key` prints once."""

    tenant: Tenant
    api_key: str = Field(description="Bearer token for the API; stored only as a hash.")
    webhook_secret: str = Field(
        description="Verifies webhook signatures (Standard Webhooks, HMAC-SHA256)."
    )


def validate_rate_limit(value: str) -> str:
    """A limit in the `limits` notation ('60/minute', '10 per second'), else InputError."""
    try:
        parse_limit(value)
    except ValueError as exc:
        raise InputError(
            f"invalid rate limit {value!r}: use e.g. '60/minute' or '10/second'"
        ) from exc
    return value


def key_digest(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


class TenantStore:
    """Tenants in the genseal database (the same URL as the manifest store)."""

    metadata: ClassVar[MetaData] = _Base.metadata
    """The store's tables, for schema comparison and revision autogenerate."""

    def __init__(self, database: Database | str, *, auto_upgrade: bool = True) -> None:
        self._tables = Tables(database, "tenant table", auto_upgrade=auto_upgrade)
        self._transaction = self._tables.transaction

    def close(self) -> None:
        self._tables.close()

    def create(self, name: str, *, rate_limit: str | None = None) -> IssuedKey:
        if not _NAME.match(name):
            raise InputError(
                f"invalid tenant name {name!r}: lowercase letters, digits, '-' and '_', "
                "starting with a letter or digit, at most 63 characters"
            )
        if rate_limit is not None:
            validate_rate_limit(rate_limit)
        api_key, secret = _new_key(), _new_webhook_secret()
        now = dt.datetime.now(dt.UTC)
        row = _TenantRow(
            name=name,
            key_sha256=key_digest(api_key),
            key_hint=api_key[:10],
            webhook_secret=secret,
            rate_limit=rate_limit,
            disabled=False,
            created_at=now,
            key_issued_at=now,
        )
        try:
            with self._transaction("create the tenant") as session:
                session.add(row)
        except StoreError as exc:
            if isinstance(exc.__cause__, IntegrityError):
                raise ConflictError(f"tenant {name!r} already exists") from exc.__cause__
            raise
        return IssuedKey(tenant=_tenant(row), api_key=api_key, webhook_secret=secret)

    def rotate_key(self, name: str) -> IssuedKey:
        """A new API key (the old one stops working at once); the webhook secret is kept."""
        api_key = _new_key()
        with self._transaction("rotate the key") as session:
            row = self._row(session, name)
            row.key_sha256 = key_digest(api_key)
            row.key_hint = api_key[:10]
            row.key_issued_at = dt.datetime.now(dt.UTC)
        return IssuedKey(tenant=_tenant(row), api_key=api_key, webhook_secret=row.webhook_secret)

    def update(
        self, name: str, *, rate_limit: str | None = None, disabled: bool | None = None
    ) -> Tenant:
        if rate_limit is not None:
            validate_rate_limit(rate_limit)
        with self._transaction("update the tenant") as session:
            row = self._row(session, name)
            if rate_limit is not None:
                row.rate_limit = rate_limit
            if disabled is not None:
                row.disabled = disabled
        return _tenant(row)

    def get(self, name: str) -> Tenant:
        with self._transaction("read the tenant") as session:
            return _tenant(self._row(session, name))

    def all(self) -> list[Tenant]:
        with self._transaction("list tenants") as session:
            rows = session.scalars(select(_TenantRow).order_by(_TenantRow.name))
            return [_tenant(row) for row in rows]

    def count(self) -> int:
        with self._transaction("count tenants") as session:
            return int(session.scalar(select(func.count()).select_from(_TenantRow)) or 0)

    def authenticate(self, api_key: str) -> Tenant | None:
        """The enabled tenant holding this key, else None."""
        if not api_key.startswith(KEY_PREFIX):
            return None
        with self._transaction("check the API key") as session:
            row = session.scalar(
                select(_TenantRow).where(_TenantRow.key_sha256 == key_digest(api_key))
            )
            if row is None or row.disabled:
                return None
            return _tenant(row)

    def webhook_secret(self, name: str) -> str:
        with self._transaction("read the webhook secret") as session:
            return self._row(session, name).webhook_secret

    @staticmethod
    def _row(session: Session, name: str) -> _TenantRow:
        row = session.get(_TenantRow, name)
        if row is None:
            raise NotFoundError(f"no tenant {name!r}")
        return row


def _new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def _new_webhook_secret() -> str:
    # Standard Webhooks' format: "whsec_" + base64 of the raw HMAC key.
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def _tenant(row: _TenantRow) -> Tenant:
    return Tenant(
        name=row.name,
        key_hint=row.key_hint,
        rate_limit=row.rate_limit,
        disabled=row.disabled,
        created_at=_utc(row.created_at),
        key_issued_at=_utc(row.key_issued_at),
    )


def _utc(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value
