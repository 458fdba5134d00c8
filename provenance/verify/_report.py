"""The provenance report: the one schema `genseal verify --json` and `POST /v1/verify` return.

Three independent readings of one file, then a conclusion:

- ``c2pa``: what the Content Credentials say (embedded, or from a ``.c2pa`` sidecar given with
  the file) and whether they hold (`C2paReport`, defined with the reader in `provenance.c2pa`);
- ``watermark``: whether a genseal watermark is in the pixels, and its payload;
- ``recovery``: which sealed manifest in our store the file comes from, found by the manifest
  label, the watermark payload and/or the perceptual fingerprint, and on what evidence.

Fields are added, never renamed or removed, without bumping ``schema_version``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, Field

from provenance.c2pa import C2paReport
from provenance.fingerprints import Fingerprint
from provenance.watermark import WatermarkReading

__all__ = ["REPORT_SCHEMA_VERSION", "Evidence", "ProvenanceReport", "Recovery"]

REPORT_SCHEMA_VERSION = 1

Evidence = Literal["watermark", "fingerprint", "crop_fingerprint", "manifest"]


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
    warnings: list[str] = Field(
        default_factory=list,
        description="everything to know before relying on the report: the C2PA warnings and "
        "what could not be checked (pixels that could not be decoded, say)",
    )
