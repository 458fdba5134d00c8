"""Signing with a key that never leaves a KMS or HSM: a `RemoteSigner` signs the bytes c2pa
hands it (the COSE Sig_structure), genseal never sees the key.

A platform plugs its own in by naming a factory, ``GENSEAL_SIGNER_PLUGIN=package.module:name``:
a callable taking no arguments (it reads its own configuration: KMS key id, region, ...) that
returns a `RemoteSigner`. The certificate chain comes from the plugin (``certificate_chain_pem``)
or from ``GENSEAL_SIGNING_CERT``; it is checked against ``GENSEAL_SIGNING_ROOT`` like any other
identity, and a test signature is verified at start-up, so a plugin that signs with the wrong
key or the wrong encoding is refused before it signs anything.

What ``sign`` must return, per algorithm (what c2pa 0.38 accepts): ES256/ES384/ES512 the
DER-encoded ECDSA signature (what AWS KMS, Google Cloud KMS and PKCS#11 return, and
`cryptography`'s ``sign``), computed over the SHA-256/384/512 of the data; PS256/PS384/PS512
RSASSA-PSS with MGF1 of the same hash and a salt as long as the hash; ED25519 the 64-byte
signature of the data itself.
"""

from __future__ import annotations

import importlib
from typing import Protocol, runtime_checkable

from genseal.errors import ConfigError
from provenance.identity._signing import SIGNING_ALGORITHMS, SigningAlgorithm

__all__ = ["RemoteSigner", "load_signer_plugin"]


@runtime_checkable
class RemoteSigner(Protocol):
    """A signing function backed by a key held elsewhere."""

    @property
    def algorithm(self) -> SigningAlgorithm:
        """One of ES256, ES384, ES512, PS256, PS384, PS512, ED25519."""
        ...

    @property
    def certificate_chain_pem(self) -> bytes | None:
        """The signing certificate then its intermediates, or None to use GENSEAL_SIGNING_CERT."""
        ...

    def sign(self, data: bytes) -> bytes:
        """Sign ``data`` (see the module docstring for the encoding c2pa expects)."""
        ...


def load_signer_plugin(spec: str) -> RemoteSigner:
    """Import ``package.module:factory`` and call the factory; ConfigError on any mistake."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ConfigError(
            f"GENSEAL_SIGNER_PLUGIN={spec!r} is not of the form package.module:factory"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"cannot import the signer plugin module {module_name!r}: {exc}") from exc
    factory = getattr(module, attribute, None)
    if not callable(factory):
        raise ConfigError(f"{spec!r}: {module_name} has no callable {attribute!r}")
    try:
        signer = factory()
    except Exception as exc:
        # A plugin's own failure (no credentials, KMS unreachable) must stop start-up with its
        # message, whatever type it raised.
        raise ConfigError(f"the signer plugin {spec!r} failed to start: {exc}") from exc
    if not isinstance(signer, RemoteSigner):
        raise ConfigError(
            f"the signer plugin {spec!r} returned {type(signer).__name__}, which lacks "
            "`algorithm`, `certificate_chain_pem` or `sign(data) -> bytes`"
        )
    if signer.algorithm not in SIGNING_ALGORITHMS:
        raise ConfigError(
            f"the signer plugin {spec!r} names algorithm {signer.algorithm!r}; "
            f"C2PA signs with {', '.join(SIGNING_ALGORITHMS)}"
        )
    return signer
