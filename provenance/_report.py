"""The provenance report: the one schema `genseal verify --json` and `POST /v1/verify` return.

Three independent readings of one file, then a conclusion:

- ``c2pa``: what the Content Credentials say (embedded, or from a ``.c2pa`` sidecar given with
  the file) and whether they hold;
- ``watermark``: whether a genseal watermark is in the pixels, and its payload;
- ``recovery``: which sealed manifest in our store the file comes from, found by the manifest
  label, the watermark payload and/or the perceptual fingerprint, and on what evidence.

Fields are added, never renamed or removed, without bumping ``schema_version``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ._fingerprint import Fingerprint
from ._watermark import WatermarkReading

__all__ = [
    "REPORT_SCHEMA_VERSION",
    "C2paReport",
    "C2paState",
    "Evidence",
    "ManifestSource",
    "ProvenanceReport",
    "Recovery",
    "StatusCode",
]

REPORT_SCHEMA_VERSION = 1

C2paState = Literal["trusted", "valid", "invalid", "absent"]
ManifestSource = Literal["embedded", "sidecar"]
Evidence = Literal["watermark", "fingerprint", "crop_fingerprint", "manifest"]


class StatusCode(BaseModel):
    """A C2PA validation status (e.g. ``assertion.dataHash.mismatch``)."""

    model_config = ConfigDict(frozen=True)

    code: str
    explanation: str | None = None
    url: str | None = None


class C2paReport(BaseModel):
    """The Content Credentials of the file, as read and validated by c2pa.

    ``trusted``: valid and signed under one of the verifier's trust anchors; ``valid``: intact
    but the signer is not trusted here; ``invalid``: present but broken (``status_codes`` say
    how), its content must not be relied on; ``absent``: none embedded (a remote manifest that
    could not be fetched offline also reads as absent, with ``manifest.inaccessible``).

    With a sidecar, c2pa validates the file against the sidecar alone (an embedded manifest is
    then ignored): a sidecar made for other bytes reads ``invalid`` with
    ``assertion.dataHash.mismatch``.
    """

    state: C2paState
    source: ManifestSource | None = Field(
        default=None,
        description="where the manifest came from: embedded in the file, or a .c2pa sidecar "
        "given with it (such as GET /v1/manifests/{id} serves); null when there is none",
    )
    status_codes: list[StatusCode] = Field(
        default_factory=list, description="validation failures of the active manifest"
    )
    informational: list[StatusCode] = Field(default_factory=list)
    success_codes: list[str] = Field(
        default_factory=list,
        description="distinct success codes, e.g. signingCredential.trusted, "
        "claimSignature.validated, assertion.dataHash.match",
    )
    manifest_label: str | None = None
    signer: str | None = Field(default=None, description="common name of the signing certificate")
    signer_organization: str | None = None
    issuer: str | None = Field(default=None, description="who issued the signing certificate")
    signed_at: dt.datetime | None = Field(
        default=None, description="from a trusted time-stamp only; genseal signs without one"
    )
    claim_generator: str | None = None
    title: str | None = None
    actions: list[dict[str, Any]] = Field(default_factory=list)
    digital_source_type: str | None = None
    ingredients: list[dict[str, Any]] = Field(
        default_factory=list,
        description="title, relationship, format and validation_state of each ingredient",
    )
    moderation: dict[str, Any] | None = Field(
        default=None, description="the org.genseal.moderation assertion"
    )
    soft_binding: dict[str, Any] | None = Field(
        default=None, description="the c2pa.soft-binding assertion"
    )


class Recovery(BaseModel):
    """The sealed manifest this file was traced back to through the manifest store."""

    attempted: bool = False
    found: bool = False
    manifest_id: str | None = None
    manifest_label: str | None = None
    evidence: list[Evidence] = Field(
        default_factory=list,
        description="manifest: the trusted manifest (embedded or sidecar) is the stored one; "
        "watermark: the payload matches; fingerprint: PDQ within the strict distance; "
        "crop_fingerprint: the file matches a crop of the sealed image's thumbnail "
        "(corroborates a watermark only)",
    )
    fingerprint_distance: int | None = Field(
        default=None, description="bits of 256 between this file's PDQ hash and the sealed one"
    )
    crop_match: float | None = Field(
        default=None,
        description="correlation (0-1) of the file with the best crop of the sealed thumbnail, "
        "when it was needed to corroborate the watermark",
    )
    pixels_altered: bool | None = Field(
        default=None,
        description="false: the file is byte for byte the sealed one; true: the pixels differ "
        "perceptibly (PDQ distance > 0: re-encoding, edits); null: nothing found, or the same "
        "PDQ hash in different bytes (stripped metadata or a near-lossless re-encode)",
    )
    sealed_at: dt.datetime | None = None
    moderation: dict[str, Any] | None = Field(
        default=None, description="the moderation attestation of the stored manifest"
    )
    reason: str = ""


class ProvenanceReport(BaseModel):
    """Everything genseal can tell about where an image came from."""

    schema_version: int = REPORT_SCHEMA_VERSION
    file: str
    format: str | None = Field(default=None, description="MIME type detected from the bytes")
    size_bytes: int
    sha256: str
    width: int | None = None
    height: int | None = None
    c2pa: C2paReport
    watermark: WatermarkReading
    fingerprint: Fingerprint | None = None
    recovery: Recovery
    summary: str
