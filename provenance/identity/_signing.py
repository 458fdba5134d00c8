"""A signing identity — certificate chain, the root it must reach, and the key or the remote
signer that holds it — and the checks that keep genseal from signing with one that would not
verify.

c2pa-python 0.38 signs ES256/ES384/ES512 (ECDSA on P-256/P-384/P-521), PS256/PS384/PS512 (RSA-PSS)
and Ed25519. The algorithm follows from the signing certificate's key; RSA keys sign PS256 unless
PS384/PS512 is asked for. What c2pa refuses, measured against 0.38.1 (so checked here first, with
messages that name the certificate instead of c2pa's "the certificate is invalid"):

- a CA:true signing certificate, one without KeyUsage digitalSignature, or without an
  AuthorityKeyIdentifier;
- an ExtendedKeyUsage outside the allowed set: emailProtection or timeStamping by default, any
  OID of the deployment's trust configuration (e.g. documentSigning) when one is given — and
  then verifiers need that configuration too;
- an expired or not-yet-valid certificate.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from genseal.settings import SIGNING_ALGORITHMS, SigningAlgorithm

__all__ = [
    "DEFAULT_ALLOWED_EKUS",
    "SIGNING_ALGORITHMS",
    "SigningAlgorithm",
    "SigningIdentity",
    "identity_problems",
    "load_private_key",
    "signing_algorithm",
]

DEFAULT_ALLOWED_EKUS: frozenset[str] = frozenset(
    {
        ExtendedKeyUsageOID.EMAIL_PROTECTION.dotted_string,
        ExtendedKeyUsageOID.TIME_STAMPING.dotted_string,
    }
)
_CURVES: dict[str, SigningAlgorithm] = {
    "secp256r1": "ES256",
    "secp384r1": "ES384",
    "secp521r1": "ES512",
}
_MIN_RSA_BITS = 2048


@dataclass(frozen=True)
class SigningIdentity:
    """PEM material of a signing identity.

    ``chain_pem`` is the signing certificate followed by its intermediates (the root left out,
    as C2PA asks); ``root_cert_pem`` the anchor verifiers are given. ``private_key_pem`` is
    None when the key never leaves a KMS or HSM and a remote signer signs instead.
    """

    root_cert_pem: bytes
    chain_pem: bytes
    private_key_pem: bytes | None = field(default=None, repr=False)
    location: str = ""
    algorithm: SigningAlgorithm | None = None
    allowed_ekus: frozenset[str] = DEFAULT_ALLOWED_EKUS
    created: bool = False

    @property
    def signing_certificate(self) -> x509.Certificate:
        return x509.load_pem_x509_certificates(self.chain_pem)[0]

    @property
    def alg(self) -> SigningAlgorithm:
        """The C2PA signing algorithm: the one asked for, else the one the certificate implies."""
        return self.algorithm or signing_algorithm(self.signing_certificate.public_key())


def signing_algorithm(public_key: object) -> SigningAlgorithm:
    """The C2PA algorithm for a key; ValueError for a key C2PA cannot sign with."""
    if isinstance(public_key, ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey):
        try:
            return _CURVES[public_key.curve.name]
        except KeyError:
            raise ValueError(
                f"ECDSA on {public_key.curve.name} is not a C2PA algorithm "
                "(P-256, P-384 and P-521 are)"
            ) from None
    if isinstance(public_key, rsa.RSAPublicKey | rsa.RSAPrivateKey):
        return "PS256"
    if isinstance(public_key, ed25519.Ed25519PublicKey | ed25519.Ed25519PrivateKey):
        return "ED25519"
    raise ValueError(
        f"a {type(public_key).__name__} cannot sign C2PA manifests "
        "(ECDSA P-256/P-384/P-521, RSA-PSS or Ed25519 can)"
    )


def load_private_key(pem: bytes, password: bytes | None = None) -> PrivateKeyTypes:
    """Parse a PEM private key (PKCS#8 or traditional, optionally encrypted)."""
    return serialization.load_pem_private_key(pem, password=password)


def identity_problems(
    identity: SigningIdentity,
    at: dt.datetime | None = None,
    *,
    key_password: bytes | None = None,
) -> list[str]:
    """What would stop ``identity`` from signing manifests that verify Trusted at ``at``
    (default: now); empty when nothing.

    Checked: every certificate's validity window, each link of the chain up to the root, the
    signing certificate's C2PA profile, the algorithm, and that the key (when held here) is the
    certificate's. The messages name certificates and dates, never key material. A long-running
    signer calls this again later to learn that its certificate expired since.
    """
    when = at if at is not None else dt.datetime.now(dt.UTC)
    if when.tzinfo is None:
        raise ValueError("identity_problems needs an aware datetime")
    where = f" in {identity.location}" if identity.location else ""
    try:
        root = x509.load_pem_x509_certificate(identity.root_cert_pem)
    except ValueError as exc:
        return [f"the root certificate{where} cannot be parsed ({exc})"]
    try:
        chain = x509.load_pem_x509_certificates(identity.chain_pem)
    except ValueError as exc:
        return [f"the certificate chain{where} cannot be parsed ({exc})"]
    if not chain:
        return [f"the certificate chain{where} is empty"]
    key: PrivateKeyTypes | None = None
    if identity.private_key_pem is not None:
        try:
            key = load_private_key(identity.private_key_pem, key_password)
        except (ValueError, TypeError) as exc:
            return [f"the signing key{where} cannot be parsed ({exc})"]

    problems = _validity_problems(chain, root, when)
    problems += _chain_problems(chain, root)
    problems += _key_problems(identity, chain[0], key)
    problems += leaf_profile_problems(chain[0], identity.allowed_ekus)
    return problems


def leaf_profile_problems(leaf: x509.Certificate, allowed_ekus: Iterable[str]) -> list[str]:
    """The C2PA signing-certificate profile, as far as c2pa enforces it."""
    problems: list[str] = []
    extensions = leaf.extensions
    with contextlib.suppress(x509.ExtensionNotFound):
        if extensions.get_extension_for_class(x509.BasicConstraints).value.ca:
            problems.append("the signing certificate is a CA (c2pa refuses CA:true leaves)")
    try:
        usage = extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        problems.append("the signing certificate has no KeyUsage (needs digitalSignature)")
    else:
        if not usage.digital_signature:
            problems.append("the signing certificate's KeyUsage lacks digitalSignature")
    try:
        extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
    except x509.ExtensionNotFound:
        problems.append("the signing certificate has no AuthorityKeyIdentifier (c2pa refuses it)")
    try:
        purposes = {
            p.dotted_string for p in extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        }
    except x509.ExtensionNotFound:
        purposes = set()
    allowed = set(allowed_ekus)
    if not purposes & allowed:
        names = ", ".join(sorted(_eku_name(oid) for oid in allowed))
        found = ", ".join(sorted(_eku_name(oid) for oid in purposes)) or "none"
        problems.append(
            f"the signing certificate's ExtendedKeyUsage ({found}) holds none of the purposes "
            f"verifiers accept ({names}); another purpose needs a trust configuration "
            "(GENSEAL_TRUST_CONFIG) on signer and verifiers"
        )
    return problems


def _validity_problems(
    chain: list[x509.Certificate], root: x509.Certificate, when: dt.datetime
) -> list[str]:
    problems = []
    roles = ["signing certificate"] + ["intermediate certificate"] * (len(chain) - 1)
    for role, cert in [*zip(roles, chain, strict=True), ("root certificate", root)]:
        name = common_name(cert)
        if when < cert.not_valid_before_utc:
            problems.append(
                f"the {role} {name!r} is not valid before {_iso(cert.not_valid_before_utc)}"
            )
        elif when >= cert.not_valid_after_utc:
            problems.append(f"the {role} {name!r} expired at {_iso(cert.not_valid_after_utc)}")
    return problems


def _chain_problems(chain: list[x509.Certificate], root: x509.Certificate) -> list[str]:
    problems = []
    with contextlib.suppress(x509.ExtensionNotFound):
        if not root.extensions.get_extension_for_class(x509.BasicConstraints).value.ca:
            problems.append(f"the root certificate {common_name(root)!r} is not a CA")
    for cert, issuer in zip(chain, [*chain[1:], root], strict=True):
        if not issued_by(cert, issuer):
            problems.append(
                f"{common_name(cert)!r} was not issued by {common_name(issuer)!r}: "
                "the chain does not lead to the configured root"
            )
    return problems


def _key_problems(
    identity: SigningIdentity, leaf: x509.Certificate, key: PrivateKeyTypes | None
) -> list[str]:
    public = leaf.public_key()
    try:
        implied = signing_algorithm(public)
    except ValueError as exc:
        return [f"the signing certificate's key: {exc}"]
    problems = []
    if isinstance(public, rsa.RSAPublicKey) and public.key_size < _MIN_RSA_BITS:
        problems.append(
            f"the signing certificate's RSA key has {public.key_size} bits; "
            f"C2PA needs at least {_MIN_RSA_BITS}"
        )
    wanted = identity.algorithm
    if wanted is not None and wanted != implied:
        rsa_variant = implied == "PS256" and wanted in ("PS384", "PS512")
        if not rsa_variant:
            problems.append(
                f"the algorithm {wanted} does not fit the signing certificate's key "
                f"(which signs {implied})"
            )
    if key is not None and not _same_public_key(key, public):
        problems.append("the signing key does not belong to the signing certificate")
    return problems


def _same_public_key(key: PrivateKeyTypes, public: object) -> bool:
    def spki(k: object) -> bytes | None:
        try:
            return k.public_bytes(  # type: ignore[attr-defined, no-any-return]
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        except (AttributeError, ValueError, TypeError):
            return None

    mine = spki(key.public_key())
    return mine is not None and mine == spki(public)


def issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def common_name(cert: x509.Certificate) -> str:
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    value = names[0].value if names else cert.subject.rfc4514_string()
    return value if isinstance(value, str) else value.decode(errors="replace")


_EKU_NAMES = {
    ExtendedKeyUsageOID.EMAIL_PROTECTION.dotted_string: "emailProtection",
    ExtendedKeyUsageOID.TIME_STAMPING.dotted_string: "timeStamping",
    ExtendedKeyUsageOID.CODE_SIGNING.dotted_string: "codeSigning",
    ExtendedKeyUsageOID.SERVER_AUTH.dotted_string: "serverAuth",
    ExtendedKeyUsageOID.CLIENT_AUTH.dotted_string: "clientAuth",
    ExtendedKeyUsageOID.OCSP_SIGNING.dotted_string: "OCSPSigning",
    "1.3.6.1.5.5.7.3.36": "documentSigning",
    "1.3.6.1.4.1.62558.2.1": "c2pa-kp-claimSigning",
}


def _eku_name(oid: str) -> str:
    return _EKU_NAMES.get(oid, oid)


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
