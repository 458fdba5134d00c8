"""Provenance: C2PA manifests, signing identities, watermarks, fingerprints, the manifest store,
the audit log and verification.

One concern per sub-package: `provenance.c2pa` (signing manifests, reading and validating
them), `provenance.identity` (signing identities, remote signers, trust), `provenance.watermark`
(the watermark seam and its backends), `provenance.fingerprints` (PDQ and the crop print),
`provenance.store` (the manifest store and audit log) and `provenance.verify` (the verifier and
its report). Here: the names the rest of genseal uses; each sub-package exports all of its own.

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

from provenance._media import sniff_mime
from provenance.c2pa import (
    MODERATION_LABEL,
    TRAINED_ALGORITHMIC_MEDIA,
    C2paReport,
    C2paSigner,
    Creator,
    IdentityAssertion,
    IngredientReport,
    IngredientSpec,
    ManifestOptions,
    ManifestSigner,
    SealClaim,
    SignedAsset,
    StatusCode,
    TimeStamp,
)
from provenance.fingerprints import crop_match, crop_print, fingerprint, hamming
from provenance.identity import (
    DEFAULT_ALLOWED_EKUS,
    RemoteSigner,
    SigningAlgorithm,
    SigningIdentity,
    TrustConfig,
    ensure_identity,
    identity_problems,
    init_identity,
    load_allowed_ekus,
    load_identity,
    load_pem_identity,
    load_signer_plugin,
    renew_identity,
)
from provenance.store import AuditEntry, AuditEvent, ManifestRecord, ManifestStore
from provenance.verify import ProvenanceReport, Recovery, Verifier
from provenance.watermark import (
    OPTIONAL_WATERMARK_BACKENDS,
    WATERMARK_BACKENDS,
    DwtDctSvdWatermarker,
    RivaGanWatermarker,
    TrustMarkWatermarker,
    Watermarker,
    WatermarkReading,
    make_watermarker,
)

__all__ = [
    "DEFAULT_ALLOWED_EKUS",
    "MODERATION_LABEL",
    "OPTIONAL_WATERMARK_BACKENDS",
    "TRAINED_ALGORITHMIC_MEDIA",
    "WATERMARK_BACKENDS",
    "AuditEntry",
    "AuditEvent",
    "C2paReport",
    "C2paSigner",
    "Creator",
    "DwtDctSvdWatermarker",
    "IdentityAssertion",
    "IngredientReport",
    "IngredientSpec",
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
