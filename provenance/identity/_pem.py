"""A production signing identity from PEM files: the certificate chain a CA issued, its private
key (or none, when a remote signer holds it) and the root verifiers trust.

Loading refuses, with every reason at once, an identity that would sign manifests verifiers
reject (see `identity_problems`): genseal never starts signing with one.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from genseal.errors import SigningError
from provenance.identity._signing import (
    DEFAULT_ALLOWED_EKUS,
    SigningAlgorithm,
    SigningIdentity,
    identity_problems,
    load_private_key,
)

__all__ = ["load_pem_identity"]


def load_pem_identity(
    chain: Path,
    root: Path,
    key: Path | None = None,
    *,
    key_password: str | None = None,
    algorithm: SigningAlgorithm | None = None,
    allowed_ekus: Iterable[str] = DEFAULT_ALLOWED_EKUS,
    certificate_chain_pem: bytes | None = None,
) -> SigningIdentity:
    """Load and check an identity; SigningError naming the files and every problem.

    ``chain``: the signing certificate first, then its intermediates (a copy of the root at
    the end is dropped: C2PA leaves it out). ``key`` None means a remote signer signs with a
    key that never leaves its KMS/HSM; its certificate chain may then come as
    ``certificate_chain_pem`` instead of a file. An encrypted key is decrypted in memory with
    ``key_password``.
    """
    chain_pem = certificate_chain_pem if certificate_chain_pem is not None else _read(chain)
    root_pem = _read(root)
    location = ", ".join(str(p) for p in (chain, key, root) if p is not None)
    try:
        root_cert = x509.load_pem_x509_certificate(root_pem)
        certificates = x509.load_pem_x509_certificates(chain_pem)
    except ValueError as exc:
        raise SigningError(f"the certificates in {location} cannot be parsed: {exc}") from exc
    kept = [c for c in certificates if c != root_cert]
    if not kept:
        raise SigningError(f"{chain} holds no signing certificate (only the root)")
    key_pem = None
    if key is not None:
        key_pem = _unencrypted(_read(key), key, key_password)
    identity = SigningIdentity(
        root_cert_pem=root_pem,
        chain_pem=b"".join(c.public_bytes(serialization.Encoding.PEM) for c in kept),
        private_key_pem=key_pem,
        location=location,
        algorithm=algorithm,
        allowed_ekus=frozenset(allowed_ekus),
    )
    problems = identity_problems(identity)
    if problems:
        raise SigningError(
            f"the signing identity ({location}) cannot be used: " + "; ".join(problems),
            hint="issue a signing certificate with the C2PA profile under the configured root",
        )
    return identity


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise SigningError(f"cannot read {path}: {exc.strerror or exc}") from exc


def _unencrypted(pem: bytes, path: Path, password: str | None) -> bytes:
    """c2pa takes an unencrypted PKCS#8 key; an encrypted file is opened here, in memory only."""
    try:
        key = load_private_key(pem, password.encode() if password is not None else None)
    except TypeError as exc:
        # cryptography says "Password was not given but private key is encrypted" (or the
        # reverse): both are configuration mistakes worth naming as such.
        raise SigningError(
            f"the signing key {path} and GENSEAL_SIGNING_KEY_PASSWORD disagree: {exc}"
        ) from exc
    except ValueError as exc:
        raise SigningError(
            f"the signing key {path} cannot be read (not a PEM private key, or a wrong "
            f"password): {exc}"
        ) from exc
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
