"""The development signing identity: a private root CA, an intermediate CA and a signing leaf.

c2pa validates the signing certificate against a profile, so the chain is built to it:

- every key is ECDSA P-256 and signs with SHA-256 (C2PA alg ES256);
- the leaf has KeyUsage digitalSignature, ExtendedKeyUsage emailProtection (the one EKU c2pa
  accepts without a custom `trust.trust_config` on both signer and verifier) and CA:false;
- the CAs have BasicConstraints CA:true and KeyUsage keyCertSign/cRLSign.

Layout under ``<home>/keys/``:

    root.pem      the trust anchor to hand to verifiers (`genseal verify --trust`)
    chain.pem     leaf then intermediate; the root is left out, as C2PA asks
    signer.key    leaf private key, mode 0600
    root.key      root private key, mode 0600, kept so a new leaf can be issued under the same root

There is no time-stamp authority offline, so a signature turns Invalid once the leaf expires:
the leaf is issued for two years and `renew_identity` re-issues it under the same root.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from genseal.errors import ConfigError, SigningError
from provenance.identity._signing import SigningIdentity, issued_by

__all__ = [
    "ensure_identity",
    "init_identity",
    "load_identity",
    "renew_identity",
]

ROOT_CERT = "root.pem"
CHAIN = "chain.pem"
SIGNER_KEY = "signer.key"
ROOT_KEY = "root.key"
_LOCK = ".lock"

_ORG = "genseal (development identity)"
_ROOT_DAYS = 3650
_INTERMEDIATE_DAYS = 1825
_LEAF_DAYS = 730
# Clocks of verifiers drift; a certificate valid "from now" would read as not-yet-valid on a
# machine a few seconds behind.
_BACKDATE = dt.timedelta(minutes=10)
_INIT_HINT = "run `genseal keys init` to create a development signing identity"


def init_identity(home: Path, *, force: bool = False) -> SigningIdentity:
    """Create a new root → intermediate → leaf chain under ``home/keys``.

    Refuses (ConfigError) to replace an existing identity unless ``force``: images signed by the
    old root stop reading as Trusted for verifiers given the new one.
    """
    keys = Path(home) / "keys"
    with _locked(keys):
        return _create(Path(home), force=force)


def load_identity(home: Path) -> SigningIdentity:
    """Load and check the identity under ``home/keys`` (SigningError if missing or unusable)."""
    keys = Path(home) / "keys"
    paths = {name: keys / name for name in (ROOT_CERT, CHAIN, SIGNER_KEY)}
    missing = [name for name, path in paths.items() if not path.is_file()]
    if missing:
        raise SigningError(
            f"no signing identity in {keys} (missing: {', '.join(missing)})", hint=_INIT_HINT
        )
    try:
        root_pem = paths[ROOT_CERT].read_bytes()
        chain_pem = paths[CHAIN].read_bytes()
        key_pem = paths[SIGNER_KEY].read_bytes()
    except OSError as exc:
        raise SigningError(f"cannot read the signing identity in {keys}: {exc}") from exc
    _check(keys, root_pem, chain_pem, key_pem)
    return SigningIdentity(root_pem, chain_pem, key_pem, location=str(keys), created=False)


def ensure_identity(home: Path) -> SigningIdentity:
    """Load the identity, or create one (``created=True``) when ``home`` has none at all.

    A half-present or corrupt identity is an error, never silently replaced: replacing it would
    orphan every image signed under the old root.
    """
    keys = Path(home) / "keys"
    with _locked(keys):
        if not any((keys / name).exists() for name in (ROOT_CERT, CHAIN, SIGNER_KEY)):
            return _create(Path(home), force=False)
    return load_identity(home)


def renew_identity(home: Path) -> SigningIdentity:
    """Issue a new intermediate and leaf under the existing root (which stays the trust anchor)."""
    keys = Path(home) / "keys"
    with _locked(keys):
        try:
            root_pem = (keys / ROOT_CERT).read_bytes()
            root_key_pem = (keys / ROOT_KEY).read_bytes()
        except OSError as exc:
            raise SigningError(
                f"cannot renew: the root certificate or key in {keys} is unreadable ({exc})",
                hint=_INIT_HINT,
            ) from exc
        try:
            root_cert = x509.load_pem_x509_certificate(root_pem)
            root_key = serialization.load_pem_private_key(root_key_pem, password=None)
        except ValueError as exc:
            raise SigningError(f"cannot renew: the root in {keys} is corrupt ({exc})") from exc
        if not isinstance(root_key, ec.EllipticCurvePrivateKey):
            raise SigningError(f"cannot renew: {keys / ROOT_KEY} is not an EC key")
        chain_pem, key_pem = _issue_below(root_cert, root_key)
        _write(keys / CHAIN, chain_pem, 0o644)
        _write(keys / SIGNER_KEY, key_pem, 0o600)
    return load_identity(home)


def _create(home: Path, *, force: bool) -> SigningIdentity:
    keys = home / "keys"
    existing = [name for name in (ROOT_CERT, CHAIN, SIGNER_KEY, ROOT_KEY) if (keys / name).exists()]
    if existing and not force:
        raise ConfigError(
            f"a signing identity already exists in {keys} ({', '.join(existing)})",
            hint="use `genseal keys init --force` to replace it; images signed under the old "
            "root will no longer verify as trusted against the new one",
        )
    root_key = ec.generate_private_key(ec.SECP256R1())
    root_name = _name("genseal development root CA")
    root_cert = _certificate(
        subject=root_name,
        issuer=root_name,
        public_key=root_key.public_key(),
        signing_key=root_key,
        issuer_cert=None,
        days=_ROOT_DAYS,
        ca_path_length=1,
    )
    chain_pem, key_pem = _issue_below(root_cert, root_key)
    root_pem = root_cert.public_bytes(serialization.Encoding.PEM)
    # The private keys are written first and the root certificate last, so a crash part-way
    # leaves no loadable-looking identity that lacks its keys.
    _write(keys / ROOT_KEY, _private_pem(root_key), 0o600)
    _write(keys / SIGNER_KEY, key_pem, 0o600)
    _write(keys / CHAIN, chain_pem, 0o644)
    _write(keys / ROOT_CERT, root_pem, 0o644)
    return SigningIdentity(root_pem, chain_pem, key_pem, location=str(keys), created=True)


def _issue_below(
    root_cert: x509.Certificate, root_key: ec.EllipticCurvePrivateKey
) -> tuple[bytes, bytes]:
    intermediate_key = ec.generate_private_key(ec.SECP256R1())
    intermediate = _certificate(
        subject=_name("genseal development intermediate CA"),
        issuer=root_cert.subject,
        public_key=intermediate_key.public_key(),
        signing_key=root_key,
        issuer_cert=root_cert,
        days=_INTERMEDIATE_DAYS,
        ca_path_length=0,
    )
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = _certificate(
        subject=_name("genseal development signer"),
        issuer=intermediate.subject,
        public_key=leaf_key.public_key(),
        signing_key=intermediate_key,
        issuer_cert=intermediate,
        days=_LEAF_DAYS,
        ca_path_length=None,
    )
    chain_pem = leaf.public_bytes(serialization.Encoding.PEM) + intermediate.public_bytes(
        serialization.Encoding.PEM
    )
    return chain_pem, _private_pem(leaf_key)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, _ORG),
        ]
    )


def _certificate(
    *,
    subject: x509.Name,
    issuer: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    signing_key: ec.EllipticCurvePrivateKey,
    issuer_cert: x509.Certificate | None,
    days: int,
    ca_path_length: int | None,
) -> x509.Certificate:
    """One certificate; ``ca_path_length`` None means a leaf (end-entity)."""
    now = dt.datetime.now(dt.UTC) - _BACKDATE
    is_ca = ca_path_length is not None
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=ca_path_length), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=not is_ca,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=is_ca,
                crl_sign=is_ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )
    if issuer_cert is not None:
        issuer_public = issuer_cert.public_key()
        assert isinstance(issuer_public, ec.EllipticCurvePublicKey)
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_public), critical=False
        )
    if not is_ca:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False
        )
    return builder.sign(signing_key, hashes.SHA256())


def _private_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _check(keys: Path, root_pem: bytes, chain_pem: bytes, key_pem: bytes) -> None:
    """Fail early with a message naming the file, instead of an opaque error at first signing."""
    try:
        root = x509.load_pem_x509_certificate(root_pem)
        chain = x509.load_pem_x509_certificates(chain_pem)
        key = serialization.load_pem_private_key(key_pem, password=None)
    except ValueError as exc:
        raise SigningError(
            f"the signing identity in {keys} is corrupt ({exc})",
            hint="restore it from a backup or run `genseal keys init --force`",
        ) from exc
    if len(chain) < 2:
        raise SigningError(
            f"{keys / CHAIN} must hold the signing certificate followed by its intermediate",
            hint=_INIT_HINT,
        )
    leaf = chain[0]
    leaf_public = leaf.public_key()
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(
        leaf_public, ec.EllipticCurvePublicKey
    ):
        raise SigningError(f"the signing key in {keys} is not an ECDSA P-256 key", hint=_INIT_HINT)
    if key.public_key().public_numbers() != leaf_public.public_numbers():
        raise SigningError(
            f"{keys / SIGNER_KEY} does not belong to the certificate in {keys / CHAIN}",
            hint="restore the matching pair or run `genseal keys init --force`",
        )
    if not issued_by(chain[-1], root):
        raise SigningError(
            f"{keys / CHAIN} was not issued under {keys / ROOT_CERT}",
            hint="restore the matching files or run `genseal keys init --force`",
        )
    now = dt.datetime.now(dt.UTC)
    if leaf.not_valid_after_utc <= now:
        raise SigningError(
            f"the signing certificate in {keys} expired on {leaf.not_valid_after_utc:%Y-%m-%d}",
            hint="run `genseal keys init --force` (or renew it under the same root)",
        )


def _write(path: Path, data: bytes, mode: int) -> None:
    """Write atomically, with the final mode set before any byte lands (no 0644 window for keys)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    os.replace(tmp, path)


@contextlib.contextmanager
def _locked(keys: Path) -> Iterator[None]:
    """Serialise creation across processes: two workers starting at once must not each write a
    different root, leaving one of them signing under a root nobody trusts."""
    try:
        keys.mkdir(parents=True, exist_ok=True)
        os.chmod(keys, 0o700)
        fd = os.open(keys / _LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise ConfigError(f"cannot create the key directory {keys}: {exc}") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
