"""A small RFC 3161 time-stamp authority on loopback, for tests that sign with a time-stamp.

    with LocalTsa() as tsa:
        signer = C2paSigner(identity, tsa_url=tsa.url)
        ...
        reader = C2paReader(identity.root_cert_pem + tsa.root_pem)

It answers ``POST`` ``application/timestamp-query`` with ``application/timestamp-reply``: a
``TimeStampResp`` whose token is a CMS SignedData over a ``TSTInfo`` (the request's message
imprint and nonce echoed, ``genTime`` from ``clock``), signed by a TSA certificate with the
critical ExtendedKeyUsage id-kp-timeStamping that RFC 3161 section 2.3 requires, issued by a
root of its own (``root_pem``, the anchor a verifier must be given). The signed attributes
are content-type, message-digest and ESS signing-certificate-v2 (RFC 5816). ``fail()`` makes
it answer HTTP 500, ``garbage()`` a 200 with bytes that are no TimeStampResp.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import ClassVar, Literal, Self

from asn1crypto import algos, cms, core, tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["LocalTsa"]

QUERY_TYPE = "application/timestamp-query"
REPLY_TYPE = "application/timestamp-reply"
TEST_POLICY = "1.3.6.1.4.1.4146.1.2.3"  # any OID serves; a TSA names the policy it stamps under
_IMPRINT_DIGESTS = frozenset({"sha256", "sha384", "sha512"})
Mode = Literal["ok", "error", "garbage"]


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class LocalTsa:
    """An RFC 3161 TSA serving on ``127.0.0.1`` from a daemon thread while it is open."""

    def __init__(
        self,
        *,
        clock: Callable[[], dt.datetime] = _utc_now,
        accuracy_seconds: int | None = 1,
        policy: str = TEST_POLICY,
        time_stamping_eku: bool = True,
    ) -> None:
        self.clock = clock
        self.accuracy_seconds = accuracy_seconds
        self.policy = policy
        self.mode: Mode = "ok"
        self.requests = 0  # every POST received, answered well or not
        self.last_request: tsp.TimeStampReq | None = None
        self._serial = 0
        self._lock = threading.Lock()
        self._root_key = ec.generate_private_key(ec.SECP256R1())
        self.root_cert = _certificate("genseal test TSA root", self._root_key, None, None, None)
        self._key = ec.generate_private_key(ec.SECP256R1())
        eku = [ExtendedKeyUsageOID.TIME_STAMPING] if time_stamping_eku else None
        self.cert = _certificate("genseal test TSA", self._key, self.root_cert, self._root_key, eku)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def root_pem(self) -> bytes:
        """The TSA root certificate, to add to a verifier's trust anchors."""
        return self.root_cert.public_bytes(serialization.Encoding.PEM)

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the TSA is not running; use `with LocalTsa() as tsa:`")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/tsa"

    def fail(self) -> None:
        """Answer every request with HTTP 500 from now on."""
        self.mode = "error"

    def garbage(self) -> None:
        """Answer every request with HTTP 200 and bytes that are no TimeStampResp."""
        self.mode = "garbage"

    def recover(self) -> None:
        self.mode = "ok"

    def start(self) -> Self:
        tsa = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, content_type, reply = tsa.answer(self.headers.get_content_type(), body)
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: object) -> None:
                pass  # quiet: the test output is not the place for an access log

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        # A short poll interval so that close() (shutdown) returns at once, not after 0.5 s.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def answer(self, content_type: str, body: bytes) -> tuple[int, str, bytes]:
        """(HTTP status, content type, body) for one request; the HTTP handler's whole job."""
        with self._lock:
            self.requests += 1
            self._serial += 1
            serial = self._serial
        if self.mode == "error":
            return 500, "text/plain", b"time-stamping is unavailable"
        if self.mode == "garbage":
            return 200, REPLY_TYPE, b"\x30\x03not a time-stamp reply"
        if content_type != QUERY_TYPE:
            return 415, "text/plain", f"expected {QUERY_TYPE}".encode()
        try:
            request = tsp.TimeStampReq.load(body)
            _ = request.native  # parse it all now: asn1crypto decodes lazily
        except ValueError:
            return 200, REPLY_TYPE, _rejection("bad_data_format")
        self.last_request = request
        if request["message_imprint"]["hash_algorithm"]["algorithm"].native not in _IMPRINT_DIGESTS:
            return 200, REPLY_TYPE, _rejection("bad_alg")
        return 200, REPLY_TYPE, self._grant(request, serial)

    def _grant(self, request: tsp.TimeStampReq, serial: int) -> bytes:
        info: dict[str, object] = {
            "version": "v1",
            "policy": self.policy,
            "message_imprint": request["message_imprint"],
            "serial_number": serial,
            # Whole seconds: some DER parsers accept no fraction in a GeneralizedTime.
            "gen_time": self.clock().astimezone(dt.UTC).replace(microsecond=0),
        }
        if self.accuracy_seconds is not None:
            info["accuracy"] = {"seconds": self.accuracy_seconds}
        if request["nonce"].native is not None:
            info["nonce"] = request["nonce"]
        tst_info = tsp.TSTInfo(info).dump()
        # Built from DER each time: asn1crypto re-encodes a parsed value it was handed (slow).
        cert_der = self.cert.public_bytes(serialization.Encoding.DER)
        issuer = asn1_x509.Name.load(self.cert.issuer.public_bytes())
        serial_number = self.cert.serial_number
        signed_attrs = cms.CMSAttributes(
            [
                {"type": "content_type", "values": ["tst_info"]},
                {"type": "message_digest", "values": [hashlib.sha256(tst_info).digest()]},
                {
                    "type": "signing_certificate_v2",
                    "values": [_signing_certificate(cert_der, issuer, serial_number)],
                },
            ]
        )
        # The signature covers the DER of the attributes as a SET OF (RFC 5652 section 5.4).
        signature = self._key.sign(signed_attrs.dump(), ec.ECDSA(hashes.SHA256()))
        issuer_and_serial = cms.IssuerAndSerialNumber(
            {"issuer": issuer, "serial_number": serial_number}
        )
        signer_info = cms.SignerInfo(
            {
                "version": "v1",
                "sid": cms.SignerIdentifier({"issuer_and_serial_number": issuer_and_serial}),
                "digest_algorithm": algos.DigestAlgorithm({"algorithm": "sha256"}),
                "signed_attrs": signed_attrs,
                "signature_algorithm": algos.SignedDigestAlgorithm({"algorithm": "sha256_ecdsa"}),
                "signature": signature,
            }
        )
        signed_data: dict[str, object] = {
            "version": "v3",
            "digest_algorithms": [algos.DigestAlgorithm({"algorithm": "sha256"})],
            "encap_content_info": {
                "content_type": "tst_info",
                "content": core.ParsableOctetString(tst_info),
            },
            "signer_infos": [signer_info],
        }
        if request["cert_req"].native:
            signed_data["certificates"] = [asn1_x509.Certificate.load(cert_der)]
        token = cms.ContentInfo({"content_type": "signed_data", "content": signed_data})
        reply = tsp.TimeStampResp({"status": {"status": "granted"}, "time_stamp_token": token})
        return bytes(reply.dump())


def _signing_certificate(
    cert_der: bytes, issuer: asn1_x509.Name, serial_number: int
) -> tsp.SigningCertificateV2:
    """The ESS signing-certificate-v2 value naming the TSA certificate by hash and issuer."""
    ess_cert_id = {
        "hash_algorithm": {"algorithm": "sha256"},
        "cert_hash": hashlib.sha256(cert_der).digest(),
        "issuer_serial": {
            "issuer": [asn1_x509.GeneralName({"directory_name": issuer})],
            "serial_number": serial_number,
        },
    }
    value = tsp.SigningCertificateV2({"certs": [ess_cert_id]})
    # Handed over encoded: built in place inside the attribute, asn1crypto takes ~8 ms over it.
    return tsp.SigningCertificateV2.load(value.dump())


class _Rejection(core.Sequence):  # type: ignore[misc]
    """A TimeStampResp without a token (asn1crypto's own type wrongly makes the token required)."""

    _fields: ClassVar[list[tuple[str, type]]] = [("status", tsp.PKIStatusInfo)]


def _rejection(reason: str) -> bytes:
    return bytes(_Rejection({"status": {"status": "rejection", "fail_info": {reason}}}).dump())


def _certificate(
    common_name: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Certificate | None,
    issuer_key: ec.EllipticCurvePrivateKey | None,
    eku: list[x509.ObjectIdentifier] | None,
) -> x509.Certificate:
    """The self-signed root when ``issuer`` is None, else the TSA's end-entity certificate."""
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "genseal tests"),
        ]
    )
    is_ca = issuer is None
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject if issuer is None else issuer.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=0 if is_ca else None), True)
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
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
    )
    if issuer is not None:
        issuer_public = issuer.public_key()
        assert isinstance(issuer_public, ec.EllipticCurvePublicKey)
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_public), critical=False
        )
    if eku is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage(eku), critical=True)
    return builder.sign(issuer_key or key, hashes.SHA256())
