"""A test certificate authority: a root, an intermediate, and signing certificates issued below
them with whatever key type, validity and extensions a test needs (written out as PEM files, as
a CA would hand them to a platform)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
    PrivateKeyTypes,
)
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

NOW = dt.datetime.now(dt.UTC)
DOCUMENT_SIGNING = x509.ObjectIdentifier("1.3.6.1.5.5.7.3.36")


def new_key(kind: str) -> PrivateKeyTypes:
    """``p256``, ``p384``, ``p521``, ``rsa2048``, ``rsa1024`` or ``ed25519``."""
    curves = {"p256": ec.SECP256R1(), "p384": ec.SECP384R1(), "p521": ec.SECP521R1()}
    if kind in curves:
        return ec.generate_private_key(curves[kind])
    if kind.startswith("rsa"):
        return rsa.generate_private_key(65537, int(kind[3:]))
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    raise ValueError(kind)


def pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def key_pem(key: PrivateKeyTypes, password: bytes | None = None) -> bytes:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "genseal test CA"),
        ]
    )


def _usage(*, ca: bool, digital_signature: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


@dataclass
class CertificateAuthority:
    """Root → intermediate (both ECDSA P-256); `issue` makes signing certificates below."""

    root_key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    name: str = "genseal test root"

    def __post_init__(self) -> None:
        self.root = self._cert(
            _name(self.name),
            _name(self.name),
            self.root_key.public_key(),
            self.root_key,
            None,
            ca=True,
        )
        self.intermediate_key = ec.generate_private_key(ec.SECP256R1())
        self.intermediate = self._cert(
            _name(f"{self.name} intermediate"),
            self.root.subject,
            self.intermediate_key.public_key(),
            self.root_key,
            self.root_key,
            ca=True,
        )

    @property
    def root_pem(self) -> bytes:
        return pem(self.root)

    def issue(
        self,
        kind: str = "p256",
        *,
        common_name: str = "genseal test signer",
        not_before: dt.datetime | None = None,
        not_after: dt.datetime | None = None,
        eku: list[x509.ObjectIdentifier] | None = None,
        ca: bool = False,
        digital_signature: bool = True,
        authority_key_id: bool = True,
    ) -> tuple[bytes, PrivateKeyTypes]:
        """A signing certificate for a new ``kind`` key: (chain PEM leaf + intermediate, key)."""
        key = new_key(kind)
        leaf = self._cert(
            _name(common_name),
            self.intermediate.subject,
            key.public_key(),
            self.intermediate_key,
            self.intermediate_key if authority_key_id else None,
            ca=ca,
            digital_signature=digital_signature,
            eku=[ExtendedKeyUsageOID.EMAIL_PROTECTION] if eku is None else eku,
            not_before=not_before,
            not_after=not_after,
        )
        return pem(leaf) + pem(self.intermediate), key

    def write(
        self, directory: Path, chain: bytes, key: PrivateKeyTypes, **options: Any
    ) -> dict[str, Path]:
        """chain.pem, signer.key and root.pem in ``directory``: the files GENSEAL_SIGNING_* name."""
        directory.mkdir(parents=True, exist_ok=True)
        paths = {
            "chain": directory / "chain.pem",
            "key": directory / "signer.key",
            "root": directory / "root.pem",
        }
        paths["chain"].write_bytes(chain)
        paths["key"].write_bytes(key_pem(key, **options))
        paths["root"].write_bytes(self.root_pem)
        return paths

    @staticmethod
    def _cert(
        subject: x509.Name,
        issuer: x509.Name,
        public_key: Any,
        signing_key: CertificateIssuerPrivateKeyTypes,
        authority: ec.EllipticCurvePrivateKey | None,
        *,
        ca: bool,
        digital_signature: bool = False,
        eku: list[x509.ObjectIdentifier] | None = None,
        not_before: dt.datetime | None = None,
        not_after: dt.datetime | None = None,
    ) -> x509.Certificate:
        start = not_before or NOW - dt.timedelta(days=1)
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(not_after or NOW + dt.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .add_extension(
                _usage(ca=eku is None, digital_signature=digital_signature), critical=True
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        )
        if authority is not None:
            builder = builder.add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(authority.public_key()),
                critical=False,
            )
        if eku:
            builder = builder.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
        return builder.sign(signing_key, hashes.SHA256())
