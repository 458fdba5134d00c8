"""Building a verifier from settings, without the generation machinery auditors do not need."""

from __future__ import annotations

import contextlib

from gen._settings import Settings
from genseal.errors import ConfigError, SigningError
from provenance import (
    ManifestStore,
    Verifier,
    Watermarker,
    load_identity,
    make_watermarker,
)


def trust_anchors(settings: Settings, extra_pem: bytes = b"") -> bytes:
    """The local signing root (when there is one), the configured anchors, and ``extra_pem``."""
    parts: list[bytes] = []
    # An auditor's machine need not have a signing identity of its own.
    with contextlib.suppress(SigningError):
        parts.append(load_identity(settings.home).root_cert_pem)
    for path in settings.trust_anchors:
        try:
            parts.append(path.read_bytes())
        except OSError as exc:
            raise ConfigError(f"cannot read trust anchor file {path}: {exc.strerror}") from exc
    if extra_pem.strip():
        parts.append(extra_pem)
    return b"\n".join(parts)


def build_verifier(
    settings: Settings,
    extra_anchors_pem: bytes = b"",
    *,
    store: ManifestStore | None = None,
    watermarker: Watermarker | None = None,
) -> Verifier:
    anchors = trust_anchors(settings, extra_anchors_pem)
    return Verifier(
        store=store or ManifestStore(settings.store_url),
        trust_anchors_pem=anchors or None,
        watermarker=watermarker or make_watermarker(settings.watermark),
    )
