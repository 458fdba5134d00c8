"""Provenance: C2PA manifests, signing identities, watermarks, fingerprints, the manifest store,
the audit log and verification.

Sealing one image (what `gen` does, in this order)::

    marked = watermarker.embed(image, payload)            # pixels first
    data = encode(marked)                                  # PNG / JPEG / WebP bytes
    signed = C2paSigner(identity).sign(data, mime, claim)  # manifest over the marked pixels
    store.add(ManifestRecord(..., fingerprint_hex=fingerprint(marked).hex,
                             fingerprint_crop=crop_print(marked), ...))
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
from ._cropprint import CROP_MATCH_THRESHOLD, crop_match, crop_print
from ._dwtdctsvd import DwtDctSvdWatermarker
from ._fingerprint import Fingerprint, Fingerprinter, fingerprint, hamming
from ._identity import (
    SigningIdentity,
    ensure_identity,
    identity_problems,
    init_identity,
    load_identity,
    renew_identity,
)
from ._media import sniff_mime
from ._records import AuditEntry, AuditEvent, AuditLog, ManifestLookup, ManifestRecord
from ._report import C2paReport, C2paState, Evidence, ProvenanceReport, Recovery, StatusCode
from ._rivagan import RivaGanWatermarker
from ._store import ManifestStore
from ._verify import Verifier
from ._watermark import Watermarker, WatermarkReading
from ._watermarkers import WATERMARK_BACKENDS, WatermarkBackend, make_watermarker

__all__ = [
    "CROP_MATCH_THRESHOLD",
    "MODERATION_LABEL",
    "SOFT_BINDING_LABEL",
    "TRAINED_ALGORITHMIC_MEDIA",
    "WATERMARK_BACKENDS",
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
    "RivaGanWatermarker",
    "SealClaim",
    "SignedAsset",
    "SigningIdentity",
    "StatusCode",
    "Verifier",
    "WatermarkBackend",
    "WatermarkReading",
    "Watermarker",
    "crop_match",
    "crop_print",
    "ensure_identity",
    "fingerprint",
    "hamming",
    "identity_problems",
    "init_identity",
    "load_identity",
    "make_watermarker",
    "renew_identity",
    "sniff_mime",
]
