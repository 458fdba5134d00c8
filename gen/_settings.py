"""The one settings object: read from the environment (prefix ``GENSEAL_``) and handed down."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_home() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "genseal"


class Settings(BaseSettings):
    """Every knob genseal has. Environment variables are the field names with ``GENSEAL_``."""

    model_config = SettingsConfigDict(env_prefix="GENSEAL_", extra="ignore")

    home: Path = Field(
        default_factory=_default_home,
        description="Directory for the signing identity, the manifest store and the audit log.",
    )
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL of the manifest store; default SQLite in home."
    )
    policy: Path | None = Field(
        default=None, description="Policy file; default the packaged policies/default.yaml."
    )
    model: str = Field(default="tiny", description="Default model: tiny, a HF id or a directory.")
    device: str | None = Field(default=None, description="torch device; default chosen for you.")
    offline: bool = Field(
        default=True, description="Never reach the Hugging Face hub; load models from cache only."
    )
    watermark: Literal["dwtdctsvd", "rivagan"] = Field(default="dwtdctsvd")
    output_format: Literal["png", "jpeg", "webp"] = "png"
    trust_anchors: list[Path] = Field(
        default_factory=list,
        description="Extra PEM files of roots the verifier trusts (the local root always is).",
    )
    max_upload_bytes: int = Field(default=20 * 1024 * 1024, gt=0)
    max_image_pixels: int = Field(default=40_000_000, gt=0)
    api_keys: list[str] = Field(
        default_factory=list,
        description="API keys the HTTP API accepts as Bearer tokens; empty disables auth.",
    )
    policy_tenants_dir: Path | None = Field(
        default=None,
        description="Tenant overlays (<tenant>.yaml); default `tenants/` beside the policy file.",
    )
    policy_reload_seconds: float = Field(
        default=2.0,
        ge=0,
        description="How often `genseal serve` checks the policy files for changes; 0 disables.",
    )

    rate_limit: str = Field(
        default="120/minute",
        description="Default requests per tenant (limits notation: '120/minute', '10/second'); "
        "a tenant's own limit overrides it.",
    )
    verify_rate_limit: str = Field(
        default="60/minute", description="Requests to /v1/verify per client address."
    )
    rate_limit_storage: str = Field(
        default="memory://",
        description="Where rate-limit counters live: memory:// (one process) or redis://host.",
    )
    workers: int = Field(default=2, ge=1, le=64, description="In-process job worker threads.")
    job_lease_seconds: float = Field(
        default=60.0,
        gt=0,
        description="A running job whose worker stops renewing its lease this long is retried.",
    )
    job_max_attempts: int = Field(
        default=3, ge=1, description="Attempts before an interrupted job is marked failed."
    )
    webhook_allow_private: bool = Field(
        default=False,
        description="Allow webhook URLs on loopback or private networks (off: SSRF guard).",
    )
    webhook_max_attempts: int = Field(default=8, ge=1, description="Deliveries before giving up.")
    webhook_retry_seconds: float = Field(
        default=2.0, gt=0, description="First retry delay; doubles each attempt (capped at 1 h)."
    )
    public_url: str | None = Field(
        default=None,
        description="Base URL clients reach the API at (for image URLs); default: as requested.",
    )
    image_url_ttl_seconds: int = Field(
        default=3600, gt=0, description="How long a response_format=url image URL works."
    )

    @field_validator("home", mode="after")
    @classmethod
    def _expand_home(cls, value: Path) -> Path:
        return value.expanduser()

    @property
    def store_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'genseal.db'}"
