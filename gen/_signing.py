"""The signer settings ask for: a production identity from PEM files, a platform's remote
signer (KMS/HSM) or, when neither is configured, the development identity in ``home/keys``."""

from __future__ import annotations

from pathlib import Path

from genseal.errors import ConfigError, SigningError
from genseal.settings import Settings
from provenance import (
    DEFAULT_ALLOWED_EKUS,
    C2paSigner,
    ManifestOptions,
    RemoteSigner,
    SigningIdentity,
    ensure_identity,
    identity_problems,
    load_allowed_ekus,
    load_pem_identity,
    load_signer_plugin,
)

__all__ = ["build_signer", "configured_identity", "signing_root_pem"]


def configured_identity(settings: Settings) -> tuple[SigningIdentity, RemoteSigner | None]:
    """The identity to sign with and, for a key held elsewhere, the signer that holds it."""
    remote = load_signer_plugin(settings.signer_plugin) if settings.signer_plugin else None
    if remote is None and settings.signing_cert is None and settings.signing_key is None:
        return ensure_identity(settings.home), None
    root = settings.signing_root
    if root is None:
        raise ConfigError(
            "GENSEAL_SIGNING_ROOT is not set: a production identity is checked against the "
            "root its verifiers trust",
            hint="point GENSEAL_SIGNING_ROOT at the PEM root certificate of your signing CA",
        )
    chain_pem = remote.certificate_chain_pem if remote is not None else None
    if chain_pem is None and settings.signing_cert is None:
        raise ConfigError(
            "no signing certificate: set GENSEAL_SIGNING_CERT (or have the signer plugin "
            "return certificate_chain_pem)"
        )
    if remote is None and settings.signing_key is None:
        raise ConfigError(
            "GENSEAL_SIGNING_CERT is set but GENSEAL_SIGNING_KEY is not",
            hint="give the certificate's private key, or GENSEAL_SIGNER_PLUGIN for a KMS/HSM",
        )
    password = settings.signing_key_password
    # c2pa adds the configured EKUs to its defaults; the signer checks the same set verifiers on
    # this deployment accept.
    allowed = set(DEFAULT_ALLOWED_EKUS)
    if settings.trust_config is not None:
        allowed.update(load_allowed_ekus(settings.trust_config))
    identity = load_pem_identity(
        settings.signing_cert or Path(f"<certificate chain of {settings.signer_plugin}>"),
        root,
        None if remote is not None else settings.signing_key,
        key_password=password.get_secret_value() if password is not None else None,
        algorithm=settings.signing_alg or (remote.algorithm if remote is not None else None),
        certificate_chain_pem=chain_pem,
        allowed_ekus=allowed,
    )
    return identity, remote


def build_signer(
    settings: Settings, identity: SigningIdentity, remote: RemoteSigner | None
) -> C2paSigner:
    """A signer for ``identity`` that has already signed and verified a test manifest;
    SigningError, with every problem named, for an identity verifiers would reject."""
    problems = identity_problems(identity)
    if problems:
        raise SigningError(
            f"refusing to sign with the identity in {identity.location}: " + "; ".join(problems),
            hint="renew the certificate (`genseal keys renew` for the development identity) "
            "or fix GENSEAL_SIGNING_*",
        )
    options = ManifestOptions(
        training_mining=settings.training_mining,
        creator_name=settings.creator_name,
        creator_url=settings.creator_url,
    )
    return C2paSigner(identity, remote=remote, tsa_url=settings.tsa_url, options=options)


def signing_root_pem(settings: Settings) -> bytes | None:
    """The configured production root, for verifiers on this deployment (None when unset)."""
    if settings.signing_root is None:
        return None
    try:
        return settings.signing_root.read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"cannot read GENSEAL_SIGNING_ROOT {settings.signing_root}: {exc}"
        ) from exc
