"""Verification: a file's C2PA state, watermark and fingerprint, and recovery through the
manifest store, in one `ProvenanceReport`."""

from provenance.verify._report import REPORT_SCHEMA_VERSION, Evidence, ProvenanceReport, Recovery
from provenance.verify._verifier import Verifier

__all__ = ["REPORT_SCHEMA_VERSION", "Evidence", "ProvenanceReport", "Recovery", "Verifier"]
