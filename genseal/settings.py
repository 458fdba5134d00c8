"""The one settings object, grouped by concern: read from the environment (prefix ``GENSEAL_``,
then the field name) and handed down. Every environment variable genseal reads is a field here.

Each group is a model of its own (``SigningSettings``, ``JobSettings``, ...); ``Settings`` is all
of them, flat, so a variable's name does not depend on its group.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = [
    "SIGNING_ALGORITHMS",
    "ApiSettings",
    "BiasSettings",
    "CheckSettings",
    "GenerationSettings",
    "JobSettings",
    "LogSettings",
    "PolicySettings",
    "Settings",
    "SigningAlgorithm",
    "SigningSettings",
    "StorageSettings",
    "VerificationSettings",
    "WatermarkSettings",
]

SigningAlgorithm = Literal["ES256", "ES384", "ES512", "PS256", "PS384", "PS512", "ED25519"]
"""The C2PA signature algorithms genseal signs with."""
SIGNING_ALGORITHMS: tuple[SigningAlgorithm, ...] = (
    "ES256",
    "ES384",
    "ES512",
    "PS256",
    "PS384",
    "PS512",
    "ED25519",
)

_ENV = SettingsConfigDict(env_prefix="GENSEAL_", extra="ignore")


def _default_home() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "genseal"


class StorageSettings(BaseModel):
    """Where genseal keeps its state: the home directory and the database."""

    home: Path = Field(
        default_factory=_default_home,
        description="Directory for the signing identity, the manifest store and the audit log.",
    )
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL of the manifest store; default SQLite in home."
    )
    database_auto_upgrade: bool = Field(
        default=True,
        description="Migrate a database behind this genseal's schema when a component opens "
        "it. Off: such a database is refused until `genseal db upgrade` ran (at scale, run it "
        "once as a release step and start the API and workers with this off).",
    )

    @field_validator("home", mode="after")
    @classmethod
    def _expand_home(cls, value: Path) -> Path:
        return value.expanduser()

    @property
    def store_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'genseal.db'}"


class GenerationSettings(BaseModel):
    """Models and the images they take and give."""

    model: str = Field(default="tiny", description="Default model: tiny, a HF id or a directory.")
    device: str | None = Field(default=None, description="torch device; default chosen for you.")
    offline: bool = Field(
        default=True, description="Never reach the Hugging Face hub; load models from cache only."
    )
    output_format: Literal["png", "jpeg", "webp"] = Field(
        default="png", description="Format of sealed images when a request names none."
    )
    max_upload_bytes: int = Field(
        default=20 * 1024 * 1024,
        gt=0,
        description="Largest upload accepted (input images, files to seal or verify); larger "
        "ones are refused (HTTP 413, CLI exit 2) before they are read whole.",
    )
    min_free_disk_mb: int = Field(
        default=512,
        ge=0,
        description="Free space GENSEAL_HOME's volume (and a SQLite database's) must keep; "
        "below it /readyz reports not ready, before writes of sealed images and manifests fail.",
    )
    max_image_pixels: int = Field(
        default=40_000_000,
        gt=0,
        description="Most pixels an image may declare; more is refused before decoding "
        "(a decompression bomb costs nothing).",
    )
    verify_max_pixels: int = Field(
        default=4096 * 4096,
        gt=0,
        description="Most pixels a verification decodes to read watermarks and fingerprints; a "
        "larger image still has its Content Credentials checked, and its report says why no "
        "watermark was read (reading a 40-megapixel image costs seconds of CPU).",
    )


class PolicySettings(BaseModel):
    """The policy files and their hot reload."""

    policy: Path | None = Field(
        default=None, description="Policy file; default the packaged policies/default.yaml."
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


class CheckSettings(BaseModel):
    """Optional image checks. CLIP weights cannot be downloaded offline: unset, the CLIP
    concept check reports not_checked for its categories rather than score with random weights."""

    clip_model: str | None = Field(
        default=None,
        description="open_clip architecture of the CLIP concept check (e.g. ViT-B-32, "
        "ViT-L-14-quickgelu for OpenAI weights), or local-dir:PATH with open_clip_config.json.",
    )
    clip_weights: Path | None = Field(
        default=None,
        description="Local open_clip checkpoint (state dict: .safetensors, .bin, .pt) for "
        "GENSEAL_CLIP_MODEL; unset, the CLIP concept check reports not_checked.",
    )
    nudenet: bool = Field(
        default=False,
        description="Add NudeNet's body-part detector to the image checks; needs "
        "pip install 'genseal[nudenet]' (AGPL-3.0).",
    )


class WatermarkSettings(BaseModel):
    """The invisible watermark of sealed images."""

    watermark: Literal["dwtdctsvd", "rivagan", "trustmark"] = Field(
        default="rivagan",
        description="Invisible watermark embedded in every sealed image: rivagan (survives "
        "crops, rotation, JPEG; default), dwtdctsvd (faster, CRC-checked id, does not survive "
        "crops or rescaling) or trustmark (needs GENSEAL_TRUSTMARK_MODELS). Verification reads "
        "every backend, so a change keeps older images recoverable.",
    )
    trustmark_models: Path | None = Field(
        default=None,
        description="Directory holding TrustMark's model files for GENSEAL_WATERMARK=trustmark "
        "(trustmark_Q.yaml, encoder_Q.ckpt, decoder_Q.ckpt); genseal never downloads them. "
        "Needs pip install 'genseal[trustmark]'.",
    )


class SigningSettings(BaseModel):
    """The C2PA signing identity and what every manifest says. Unset: the development
    identity in home/keys (`genseal keys init`)."""

    signing_cert: Path | None = Field(
        default=None,
        description="PEM certificate chain to sign with: the signing certificate first, then "
        "its intermediates. Needs GENSEAL_SIGNING_ROOT and a key or a signer plugin.",
    )
    signing_key: Path | None = Field(
        default=None, description="PEM private key of GENSEAL_SIGNING_CERT (PKCS#8 or PKCS#1/SEC1)."
    )
    signing_key_password: SecretStr | None = Field(
        default=None, description="Password of an encrypted GENSEAL_SIGNING_KEY."
    )
    signing_root: Path | None = Field(
        default=None,
        description="PEM root certificate the chain must lead to; verifiers here trust it.",
    )
    signing_alg: SigningAlgorithm | None = Field(
        default=None,
        description="C2PA algorithm; default from the key (ES256/ES384/ES512 for P-256/384/521, "
        "PS256 for RSA, ED25519). PS384/PS512 for RSA keys.",
    )
    signer_plugin: str | None = Field(
        default=None,
        description="package.module:factory returning a RemoteSigner (a KMS/HSM signing "
        "function); the key then never leaves it.",
    )
    tsa_url: str | None = Field(
        default=None,
        description="RFC 3161 time-stamp authority; manifests then stay verifiable after the "
        "signing certificate expires. An unreachable TSA fails signing.",
    )
    training_mining: Literal["allowed", "notAllowed", "constrained"] | None = Field(
        default=None,
        description="Add cawg.training-mining to every manifest (notAllowed: 'do not train').",
    )
    creator_name: str | None = Field(
        default=None,
        description="Name the platform as creator in every manifest (CreativeWork author).",
    )
    creator_url: str | None = Field(default=None, description="URL of the creator platform.")


class VerificationSettings(BaseModel):
    """Whom the verifier trusts and what it may fetch."""

    trust_anchors: list[Path] = Field(
        default_factory=list,
        description="Extra PEM files of roots the verifier trusts (the local root always is).",
    )
    trust_config: Path | None = Field(
        default=None,
        description="Allowed-EKU file for the verifier (one OID a line, // comments, as C2PA's "
        "test-trust-config.txt); c2pa adds these to the EKUs it accepts by default.",
    )
    trust_list: Path | None = Field(
        default=None,
        description="A trust list in c2pa's settings format (JSON, or TOML): its `trust` table "
        "(trust_anchors, trust_config, allowed_list) is added to the verifier's trust.",
    )
    verify_remote_manifests: bool = Field(
        default=False,
        description="Let the verifier fetch a manifest a file points to on the network.",
    )
    verify_ocsp: bool = Field(
        default=False,
        description="Let the verifier check signing certificates for revocation online (OCSP).",
    )


class BiasSettings(BaseModel):
    """Bias monitoring of released images, for tenants an operator opted in
    (`genseal bias-monitor enable TENANT`); counts only, never faces."""

    bias_baseline: Path | None = Field(
        default=None,
        description="results.json of a bias probe run (`genseal probe bias`): its overall "
        "proportions per attribute are the baseline that monitored releases are compared to; "
        "unset, summaries report counts without drift.",
    )
    bias_drift_tvd: float = Field(
        default=0.1,
        gt=0,
        le=1,
        description="Drift is flagged when the total variation distance from the baseline is at "
        "least this (and the chi-square p-value below 0.01).",
    )
    bias_min_images: int = Field(
        default=30,
        ge=1,
        description="Images an attribute must be measured on before its drift can be flagged.",
    )


class ApiSettings(BaseModel):
    """The HTTP API: keys, rate limits, image URLs and webhooks."""

    auth: Literal["keys", "none"] = Field(
        default="keys",
        description="keys: the API asks for a key once a tenant or GENSEAL_API_KEYS exists, and "
        "`genseal serve` refuses to listen beyond loopback without one; none: the API is open "
        "to anyone who reaches it, on purpose.",
    )
    model_dirs: list[Path] = Field(
        default_factory=list,
        description="Directories whose sub-directories API callers may name as `model`; any "
        "other local path is refused over HTTP with the same answer whether it exists or not "
        "(the command line, run by someone with the files at hand, takes any directory).",
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Addresses or networks of the reverse proxies whose X-Forwarded-For and "
        "X-Forwarded-Proto `genseal serve` believes (for rate limits per client address); "
        "empty: none, every client is the address it connects from.",
    )
    api_keys: list[str] = Field(
        default_factory=list,
        description="API keys the HTTP API accepts as Bearer tokens; empty disables auth.",
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
    public_url: str | None = Field(
        default=None,
        description="Base URL clients reach the API at (for image URLs); default: as requested.",
    )
    image_url_ttl_seconds: int = Field(
        default=3600, gt=0, description="How long a response_format=url image URL works."
    )
    sync_timeout_seconds: float = Field(
        default=600.0,
        gt=0,
        description="With the celery backend, how long a synchronous request waits for its "
        "job; past it the answer is 202 and the job (poll GET /v1/jobs/{id}).",
    )
    webhook_allow_private: bool = Field(
        default=False,
        description="Allow webhook URLs on loopback or private networks (off: SSRF guard).",
    )
    webhook_max_attempts: int = Field(default=8, ge=1, description="Deliveries before giving up.")
    webhook_retry_seconds: float = Field(
        default=2.0, gt=0, description="First retry delay; doubles each attempt (capped at 1 h)."
    )
    webhook_ports: list[int] = Field(
        default_factory=lambda: [80, 443],
        description="Ports a webhook URL may name; an empty list allows any (a webhook must "
        "not probe a host's other services).",
    )
    webhook_deadline_seconds: float = Field(
        default=15.0,
        gt=0,
        le=300,
        description="Longest one delivery attempt may take, connecting, sending and reading the "
        "answer together (a receiver that trickles its answer is cut off here).",
    )
    webhook_concurrency: int = Field(
        default=4,
        ge=1,
        le=64,
        description="Deliveries in flight at once, each for a different tenant: a slow "
        "receiver holds up only its own tenant's webhooks.",
    )


class JobSettings(BaseModel):
    """Jobs: who runs them (threads in the API, or Celery workers) and how they are retried."""

    workers: int = Field(default=2, ge=1, le=64, description="In-process job worker threads.")
    job_lease_seconds: float = Field(
        default=60.0,
        gt=0,
        description="A running job whose worker stops renewing its lease this long is retried.",
    )
    job_max_attempts: int = Field(
        default=3, ge=1, description="Attempts before an interrupted job is marked failed."
    )
    job_backend: Literal["inprocess", "celery"] = Field(
        default="inprocess",
        description="Who runs jobs: worker threads inside `genseal serve` (inprocess), or "
        "`genseal worker` processes fed through the broker (celery).",
    )
    broker_url: str = Field(
        default="redis://127.0.0.1:6379/0",
        description="The Celery broker (Redis) when job_backend is celery.",
    )
    broker_namespace: str = Field(
        default="genseal",
        pattern=r"^[A-Za-z0-9_.-]{1,64}$",
        description="Prefix of genseal's queues and worker registry keys in the broker, so "
        "several deployments can share one Redis.",
    )
    broker_visibility_timeout_seconds: float = Field(
        default=3600.0,
        gt=0,
        description="A delivered job message not acknowledged this long (its worker vanished "
        "with it) is delivered again. Keep it above the longest job.",
    )
    worker_concurrency: int = Field(
        default=1,
        ge=1,
        le=64,
        description="Processes per `genseal worker` (each loads its models; one per GPU).",
    )
    worker_models: list[str] = Field(
        default_factory=list,
        description="Models a `genseal worker` serves and loads at start (default: the "
        "default model); jobs for a model go only to workers that serve it.",
    )
    worker_start_timeout_seconds: float = Field(
        default=600.0,
        gt=0,
        description="How long a `genseal worker` process may take to load its models and report "
        "ready before the pool gives up on it (a process replacing a crashed one included).",
    )
    worker_metrics_port: int = Field(
        default=0,
        ge=0,
        le=65535,
        description="Port on which a `genseal worker` serves the Prometheus metrics of all its "
        "processes (/metrics, every interface); 0: none. Each worker on a machine needs its own.",
    )


class LogSettings(BaseSettings):
    """Logs and error output. Read on its own by the command line before anything else (a
    malformed setting elsewhere must not hide its own error message)."""

    model_config = _ENV

    log_level: str | None = Field(
        default=None,
        description="Level of the structured logs on stderr (debug, info, warning, error, "
        "critical); default critical for commands, info for `genseal serve` and `genseal worker`.",
    )
    debug: bool = Field(
        default=False,
        description="Let an internal error of a command end in its traceback instead of one line.",
    )

    @field_validator("log_level", mode="after")
    @classmethod
    def _known_level(cls, value: str | None) -> str | None:
        if value is not None and value.upper() not in logging.getLevelNamesMapping():
            raise ValueError(f"unknown log level {value!r}; use debug, info, warning or error")
        return value


class Settings(
    LogSettings,
    StorageSettings,
    GenerationSettings,
    PolicySettings,
    CheckSettings,
    WatermarkSettings,
    SigningSettings,
    VerificationSettings,
    BiasSettings,
    ApiSettings,
    JobSettings,
):
    """Every knob genseal has. Environment variables are the field names with ``GENSEAL_``."""

    model_config = _ENV


def reference_markdown() -> str:
    """The configuration reference (docs/reference/configuration.md): every variable, grouped
    by concern, with its default and description, as the settings model declares them."""
    lines = [
        "# Configuration",
        "",
        "<!-- Generated from genseal/settings.py by `python docs/generate.py`; do not edit. -->",
        "",
        "genseal reads its settings from environment variables: `GENSEAL_` and the field name in "
        "capitals. Every variable is listed here, grouped by what it configures.",
    ]
    for group in _GROUPS:
        doc = " ".join((group.__doc__ or "").split())
        lines += ["", f"## {_group_title(group)}", "", doc, ""]
        lines += ["| variable | default | meaning |", "| --- | --- | --- |"]
        for name, field in group.model_fields.items():
            default = (
                "`$XDG_DATA_HOME/genseal` (else `~/.local/share/genseal`)"
                if name == "home"
                else _shown(field.get_default(call_default_factory=True, validated_data={}))
            )
            meaning = " ".join((field.description or "").split()).replace("|", "\\|")
            lines.append(f"| `GENSEAL_{name.upper()}` | {default} | {meaning} |")
    return "\n".join(lines) + "\n"


# The reference's order: the groups as Settings lists them, logging last.
_GROUPS: tuple[type[BaseModel], ...] = (
    *(group for group in Settings.__bases__ if group is not LogSettings),
    LogSettings,
)


def _group_title(group: type[BaseModel]) -> str:
    name = group.__name__.removesuffix("Settings")
    return {"Api": "HTTP API", "Log": "Logs"}.get(name, name)


def _shown(value: object) -> str:
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "`true`" if value else "`false`"
    return f"`{value}`"
