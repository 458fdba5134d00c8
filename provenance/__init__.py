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
    TRAINING_MINING_LABEL,
    C2paSigner,
    IngredientSpec,
    ManifestOptions,
    ManifestSigner,
    SealClaim,
    SignedAsset,
)
from ._cropprint import CROP_MATCH_THRESHOLD, crop_match, crop_print
from ._dwtdctsvd import DwtDctSvdWatermarker
from ._fingerprint import Fingerprint, Fingerprinter, fingerprint, hamming
from ._identity import ensure_identity, init_identity, load_identity, renew_identity
from ._media import sniff_mime
from ._pem_identity import load_pem_identity
from ._records import AuditEntry, AuditEvent, AuditLog, ManifestLookup, ManifestRecord
from ._remote_signer import RemoteSigner, load_signer_plugin
from ._report import (
    C2paReport,
    C2paState,
    CertificateInfo,
    Creator,
    Evidence,
    IdentityAssertion,
    IngredientReport,
    ProvenanceReport,
    Recovery,
    StatusCode,
    TimeStamp,
)
from ._rivagan import RivaGanWatermarker
from ._signing_identity import (
    DEFAULT_ALLOWED_EKUS,
    SIGNING_ALGORITHMS,
    SigningAlgorithm,
    SigningIdentity,
    identity_problems,
)
from ._store import ManifestStore
from ._trust import TrustConfig, load_allowed_ekus
from ._trustmark import TrustMarkWatermarker
from ._verify import Verifier
from ._watermark import Watermarker, WatermarkReading
from ._watermarkers import (
    OPTIONAL_WATERMARK_BACKENDS,
    WATERMARK_BACKENDS,
    WatermarkBackend,
    make_watermarker,
)

__all__ = [
    "CROP_MATCH_THRESHOLD",
    "DEFAULT_ALLOWED_EKUS",
    "MODERATION_LABEL",
    "OPTIONAL_WATERMARK_BACKENDS",
    "SIGNING_ALGORITHMS",
    "SOFT_BINDING_LABEL",
    "TRAINED_ALGORITHMIC_MEDIA",
    "TRAINING_MINING_LABEL",
    "WATERMARK_BACKENDS",
    "AuditEntry",
    "AuditEvent",
    "AuditLog",
    "C2paReport",
    "C2paSigner",
    "C2paState",
    "CertificateInfo",
    "Creator",
    "DwtDctSvdWatermarker",
    "Evidence",
    "Fingerprint",
    "Fingerprinter",
    "IdentityAssertion",
    "IngredientReport",
    "IngredientSpec",
    "ManifestLookup",
    "ManifestOptions",
    "ManifestRecord",
    "ManifestSigner",
    "ManifestStore",
    "ProvenanceReport",
    "Recovery",
    "RemoteSigner",
    "RivaGanWatermarker",
    "SealClaim",
    "SignedAsset",
    "SigningAlgorithm",
    "SigningIdentity",
    "StatusCode",
    "TimeStamp",
    "TrustConfig",
    "TrustMarkWatermarker",
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
    "load_allowed_ekus",
    "load_identity",
    "load_pem_identity",
    "load_signer_plugin",
    "make_watermarker",
    "renew_identity",
    "sniff_mime",
]
