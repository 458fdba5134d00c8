"""Building a verifier from settings, without the generation machinery auditors do not need.

The verifier trusts, by default, what this deployment signs with: the development root in
``home/keys`` (when there is one) and the production root of ``GENSEAL_SIGNING_ROOT``. To that
come ``GENSEAL_TRUST_ANCHORS``, the allowed-EKU file ``GENSEAL_TRUST_CONFIG``, the c2pa trust
list ``GENSEAL_TRUST_LIST`` and the anchors a caller passes (``genseal verify --trust``).
Remote manifests and OCSP are fetched only when ``GENSEAL_VERIFY_REMOTE_MANIFESTS`` /
``GENSEAL_VERIFY_OCSP`` say so.

Watermarks are read with the configured backend first, then with the other built-in ones
(``WATERMARK_BACKENDS``) and TrustMark when its models are configured, so that images sealed
before the deployment changed backends are still recovered.
"""

from __future__ import annotations

import contextlib

from gen._signing import signing_root_pem
from genseal.errors import SigningError
from genseal.settings import Settings
from provenance import (
    WATERMARK_BACKENDS,
    ManifestStore,
    TrustConfig,
    Verifier,
    Watermarker,
    load_identity,
    make_watermarker,
)

__all__ = [
    "build_verifier",
    "configured_watermarker",
    "other_watermarkers",
    "trust_anchors",
    "trust_config",
]


def configured_watermarker(settings: Settings, name: str | None = None) -> Watermarker:
    """The watermark backend ``name`` (default: the ``watermark`` setting), built with the
    settings it needs."""
    return make_watermarker(
        name or settings.watermark,
        trustmark_models=settings.trustmark_models,
        cache_dir=settings.home / "cache",
    )


def other_watermarkers(settings: Settings) -> list[Watermarker]:
    """Every other backend: what a verifier also reads, and what sealing falls back to for a
    picture the configured backend cannot mark readably."""
    names = [n for n in WATERMARK_BACKENDS if n != settings.watermark]
    if settings.trustmark_models is not None and settings.watermark != "trustmark":
        names.append("trustmark")
    return [configured_watermarker(settings, n) for n in names]


def trust_anchors(settings: Settings, extra_pem: bytes = b"") -> bytes:
    """The roots trusted by default and ``extra_pem``, as one PEM bundle (checked)."""
    return trust_config(settings, extra_pem).anchors_pem


def trust_config(settings: Settings, extra_pem: bytes = b"") -> TrustConfig:
    """Everything the verifier trusts and may fetch; ConfigError for a bad trust file."""
    trust = TrustConfig(
        fetch_remote_manifests=settings.verify_remote_manifests,
        fetch_ocsp=settings.verify_ocsp,
    )
    # An auditor's machine need not have a signing identity of its own.
    with contextlib.suppress(SigningError):
        trust = trust.with_anchors(load_identity(settings.home).root_cert_pem, "the local root")
    production = signing_root_pem(settings)
    if production is not None:
        trust = trust.with_anchors(production, f"GENSEAL_SIGNING_ROOT {settings.signing_root}")
    configured = TrustConfig.from_files(
        settings.trust_anchors,
        allowed_ekus=settings.trust_config,
        trust_list=settings.trust_list,
    )
    return trust.merged(configured).with_anchors(extra_pem, "the extra trust anchors")


def build_verifier(
    settings: Settings,
    extra_anchors_pem: bytes = b"",
    *,
    store: ManifestStore | None = None,
    watermarker: Watermarker | None = None,
) -> Verifier:
    # Trust first: a bad trust file should fail before anything is opened.
    trust = trust_config(settings, extra_anchors_pem)
    return Verifier(
        store=store or ManifestStore(settings.store_url),
        trust_anchors_pem=None,
        watermarker=watermarker or configured_watermarker(settings),
        also_read=other_watermarkers(settings),
        trust=trust,
        max_pixels=min(settings.max_image_pixels, settings.verify_max_pixels),
    )
