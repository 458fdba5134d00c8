"""C2PA: signing one manifest per released image, and reading and validating Content
Credentials into the C2PA part of the provenance report.

`C2paSigner` seals (`SealClaim` says what the manifest states, `ManifestOptions` what every
manifest of a deployment adds); `C2paReader` validates a file against its embedded manifest or
a ``.c2pa`` sidecar and maps c2pa's verdict to `C2paReport`, status codes with their meanings.
"""

from provenance.c2pa._read import C2paReader, read_assertion
from provenance.c2pa._report import (
    C2paReport,
    C2paState,
    CertificateInfo,
    Creator,
    IdentityAssertion,
    IngredientReport,
    ManifestSource,
    StatusCode,
    TimeStamp,
)
from provenance.c2pa._sign import (
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

__all__ = [
    "MODERATION_LABEL",
    "SOFT_BINDING_LABEL",
    "TRAINED_ALGORITHMIC_MEDIA",
    "TRAINING_MINING_LABEL",
    "C2paReader",
    "C2paReport",
    "C2paSigner",
    "C2paState",
    "CertificateInfo",
    "Creator",
    "IdentityAssertion",
    "IngredientReport",
    "IngredientSpec",
    "ManifestOptions",
    "ManifestSigner",
    "ManifestSource",
    "SealClaim",
    "SignedAsset",
    "StatusCode",
    "TimeStamp",
    "read_assertion",
]
