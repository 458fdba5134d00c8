"""A signer plugin as a platform would write one (``GENSEAL_SIGNER_PLUGIN=module:factory``):
the factory reads its own configuration and returns an object that signs with a key genseal
never sees. Here the "KMS" is a key made in this process under a test CA whose root it writes
where GENSEAL_TEST_KMS_DIR says, so genseal can be pointed at it with GENSEAL_SIGNING_ROOT."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from tests._pki import CertificateAuthority

_CA = CertificateAuthority(name="genseal test KMS root")


class KmsSigner:
    algorithm = "ES256"

    def __init__(self) -> None:
        chain, key = _CA.issue("p256", common_name="genseal test KMS signer")
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        self._key = key
        self.certificate_chain_pem: bytes | None = chain

    def sign(self, data: bytes) -> bytes:
        return self._key.sign(data, ec.ECDSA(hashes.SHA256()))


def make_signer() -> KmsSigner:
    directory = os.environ.get("GENSEAL_TEST_KMS_DIR")
    if directory:
        Path(directory).mkdir(parents=True, exist_ok=True)
        (Path(directory) / "root.pem").write_bytes(_CA.root_pem)
    return KmsSigner()


def broken() -> KmsSigner:
    raise RuntimeError("no KMS credentials in the environment")


def not_a_signer() -> object:
    return object()
