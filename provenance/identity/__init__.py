"""Signing identities and trust: the certificate chain and key (or remote signer) genseal signs
with, the checks that refuse one verifiers would reject, and whom a verifier trusts.

A development identity is made and renewed locally (`init_identity`, `renew_identity`); a
production one is loaded from PEM files (`load_pem_identity`), its key possibly held by a
`RemoteSigner` in a KMS or HSM (`load_signer_plugin`). `TrustConfig` is the trust part of
c2pa's settings: anchors, allowed EKUs, trust lists, network fetching.
"""

from provenance.identity._development import (
    ensure_identity,
    init_identity,
    load_identity,
    renew_identity,
)
from provenance.identity._pem import load_pem_identity
from provenance.identity._remote import RemoteSigner, load_signer_plugin
from provenance.identity._signing import (
    DEFAULT_ALLOWED_EKUS,
    SIGNING_ALGORITHMS,
    SigningAlgorithm,
    SigningIdentity,
    identity_problems,
)
from provenance.identity._trust import TrustConfig, load_allowed_ekus

__all__ = [
    "DEFAULT_ALLOWED_EKUS",
    "SIGNING_ALGORITHMS",
    "RemoteSigner",
    "SigningAlgorithm",
    "SigningIdentity",
    "TrustConfig",
    "ensure_identity",
    "identity_problems",
    "init_identity",
    "load_allowed_ekus",
    "load_identity",
    "load_pem_identity",
    "load_signer_plugin",
    "renew_identity",
]
