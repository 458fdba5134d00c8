"""Provenance: C2PA manifests, signing identities, watermarks, fingerprints, the manifest store,
the audit log and verification.

Sealing one image (what `gen` does, in this order)::

    marked = watermarker.embed(image, payload)            # pixels first
    data = encode(marked)                                  # PNG / JPEG / WebP bytes
    signed = C2paSigner(identity).sign(data, mime, claim)  # manifest over the marked pixels
    store.add(ManifestRecord(..., fingerprint_hex=fingerprint(marked).hex, ...))
    store.append_audit("released", ...)

Verifying: ``Verifier(store, root_pem, watermarker).verify(data, name)``.

Never imports `gen`, `safety` or `api`.
"""

from ._c2pa import (
    MODERATION_LABEL,
    SOFT_BINDING_LABEL,
    TRAINED_ALGORITHMIC_MEDIA,
    C2paSigner,
    IngredientSpec,
    ManifestSigner,
    SealClaim,
    SignedAsset,
)
from ._dwtdctsvd import DwtDctSvdWatermarker
from ._fingerprint import Fingerprint, Fingerprinter, fingerprint, hamming
from ._identity import (
    SigningIdentity,
    ensure_identity,
    init_identity,
    load_identity,
    renew_identity,
)
from ._media import sniff_mime
from ._records import AuditEntry, AuditEvent, AuditLog, ManifestLookup, ManifestRecord
from ._report import C2paReport, C2paState, Evidence, ProvenanceReport, Recovery, StatusCode
from ._store import ManifestStore
from ._verify import Verifier
from ._watermark import Watermarker, WatermarkReading

__all__ = [
    "MODERATION_LABEL",
    "SOFT_BINDING_LABEL",
    "TRAINED_ALGORITHMIC_MEDIA",
    "AuditEntry",
    "AuditEvent",
    "AuditLog",
    "C2paReport",
    "C2paSigner",
    "C2paState",
    "DwtDctSvdWatermarker",
    "Evidence",
    "Fingerprint",
    "Fingerprinter",
    "IngredientSpec",
    "ManifestLookup",
    "ManifestRecord",
    "ManifestSigner",
    "ManifestStore",
    "ProvenanceReport",
    "Recovery",
    "SealClaim",
    "SignedAsset",
    "SigningIdentity",
    "StatusCode",
    "Verifier",
    "WatermarkReading",
    "Watermarker",
    "ensure_identity",
    "fingerprint",
    "hamming",
    "init_identity",
    "load_identity",
    "renew_identity",
    "sniff_mime",
]
