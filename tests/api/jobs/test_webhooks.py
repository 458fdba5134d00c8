"""Webhook delivery against real receivers on loopback: a stalling receiver delays only its own
tenant, every attempt ends by its deadline, a huge answer is not read, the address checked is
the address connected to, and the tenant sees a code rather than the system's error."""

from __future__ import annotations

import base64
import datetime as dt
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from api.jobs._store import JobStore
from api.jobs._webhooks import WebhookDispatcher
from tests.api.jobs._jobs import finished

SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()


@contextmanager
def raw_receiver(
    answer: Callable[[socket.socket], None], *, wrap: ssl.SSLContext | None = None
) -> Iterator[tuple[int, list[float]]]:
    """A TCP server on 127.0.0.1 (TLS with ``wrap``) that reads one request per connection,
    then lets ``answer`` write what it likes; yields its port and the times requests arrived."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    arrived: list[float] = []
    stop = threading.Event()

    def serve(connection: socket.socket) -> None:
        with suppress(OSError):
            connection.settimeout(10)
            if wrap is not None:
                connection = wrap.wrap_socket(connection, server_side=True)
        with connection, suppress(OSError):
            request = b""
            while b"\r\n\r\n" not in request:
                data = connection.recv(65536)
                if not data:  # the client hung up (a refused TLS handshake, say)
                    return
                request += data
            head, _, body = request.partition(b"\r\n\r\n")
            length = int(
                next(
                    line.split(b":")[1]
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length")
                )
            )
            while len(body) < length:
                body += connection.recv(65536)
            arrived.append(time.monotonic())
            answer(connection)

    def accept() -> None:
        while not stop.is_set():
            with suppress(TimeoutError):
                connection, _ = server.accept()
                threading.Thread(target=serve, args=(connection,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1], arrived
    finally:
        stop.set()
        thread.join()
        server.close()


def ok(connection: socket.socket) -> None:
    connection.sendall(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")


def trickle_headers(connection: socket.socket) -> None:
    connection.sendall(b"HTTP/1.1 200 OK\r\n")
    for _ in range(60):  # a header byte every 0.2 s: no read ever waits long
        connection.sendall(b"x")
        time.sleep(0.2)


def huge_body(connection: socket.socket) -> None:
    size = 300 * 1024 * 1024
    connection.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: {size}\r\n\r\n".encode())
    chunk = b"\0" * 65536
    for _ in range(size // len(chunk)):
        connection.sendall(chunk)  # raises once the client has hung up


@pytest.fixture
def jobs(tmp_path: Path) -> Iterator[JobStore]:
    store = JobStore(f"sqlite:///{tmp_path / 'genseal.db'}")
    yield store
    store.close()


def dispatcher(jobs: JobStore, **overrides: Any) -> WebhookDispatcher:
    options: dict[str, Any] = {
        "allow_private": True,
        "ports": (),
        "max_attempts": 1,
        "retry_seconds": 0.05,
        "deadline_seconds": 1.5,
    }
    return WebhookDispatcher(jobs, lambda _tenant: SECRET, **{**options, **overrides})


def webhook_of(jobs: JobStore, job_id: str, tenant: str | None = None) -> dict[str, Any]:
    webhook = jobs.get(job_id, tenant).webhook
    assert webhook is not None
    return dict(webhook)


def wait_for(predicate: Callable[[], bool], timeout: float = 10) -> float:
    start = time.monotonic()
    while not predicate():
        assert time.monotonic() - start < timeout, "timed out"
        time.sleep(0.02)
    return time.monotonic() - start


def test_a_stalling_receiver_delays_only_its_own_tenant_and_is_cut_off_at_the_deadline(
    jobs: JobStore,
) -> None:
    with raw_receiver(trickle_headers) as (slow, _), raw_receiver(ok) as (fast, arrivals):
        stalled = finished(jobs, f"http://127.0.0.1:{slow}/hook", tenant="slowpoke")
        others = [finished(jobs, f"http://127.0.0.1:{fast}/hook", tenant="acme") for _ in range(3)]
        others.append(finished(jobs, f"http://127.0.0.1:{fast}/hook", tenant="globex"))
        sender = dispatcher(jobs)
        started = time.monotonic()
        sender.start()
        try:
            # acme's three go one after another in acme's lane, globex's beside them; none
            # waits for the stalled receiver.
            owners = list(zip(others, ["acme"] * 3 + ["globex"], strict=True))
            wait_for(
                lambda: all(webhook_of(jobs, j, t)["status"] == "delivered" for j, t in owners),
                timeout=5,
            )
            assert len(arrivals) == 4 and max(arrivals) - started < 1.0
            wait_for(lambda: webhook_of(jobs, stalled, "slowpoke")["status"] != "owed")
            took = time.monotonic() - started
        finally:
            sender.stop()
    assert 1.4 < took < 4.0  # the deadline (1.5 s), not the receiver, ended the attempt
    assert webhook_of(jobs, stalled, "slowpoke")["last_error"] == "delivery failed (timed_out)"


def test_a_huge_answer_is_not_read(jobs: JobStore) -> None:
    with raw_receiver(huge_body) as (port, _):
        job_id = finished(jobs, f"http://127.0.0.1:{port}/hook")
        sender = dispatcher(jobs, deadline_seconds=10)
        try:
            start = time.monotonic()
            assert sender.deliver_due() == 1
            assert time.monotonic() - start < 2  # 300 MB would take far longer
        finally:
            sender.stop()
    assert webhook_of(jobs, job_id)["status"] == "delivered"


def test_the_address_checked_is_the_address_connected_to(
    jobs: JobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = socket.getaddrinfo
    answers = iter(["127.0.0.1", "127.0.0.2"])  # a rebinding DNS: another answer each time
    calls: list[str] = []

    def rebinding(host: str, port: int, *args: Any, **kwargs: Any) -> Any:
        if host != "hooks.rebind.test":
            return real(host, port, *args, **kwargs)
        calls.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (next(answers), port))]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    with raw_receiver(ok) as (port, arrivals):  # listens on 127.0.0.1 only
        job_id = finished(jobs, f"http://hooks.rebind.test:{port}/hook")
        sender = dispatcher(jobs)
        try:
            assert sender.deliver_due() == 1
        finally:
            sender.stop()
    assert len(arrivals) == 1 and calls == ["hooks.rebind.test"]
    assert webhook_of(jobs, job_id)["status"] == "delivered"


def test_the_tenant_sees_a_code_not_the_systems_error(jobs: JobStore) -> None:
    with socket.create_server(("127.0.0.1", 0)) as closed:
        port = closed.getsockname()[1]
    job_id = finished(jobs, f"http://127.0.0.1:{port}/hook")
    sender = dispatcher(jobs)
    try:
        assert sender.deliver_due() == 1
    finally:
        sender.stop()
    webhook = webhook_of(jobs, job_id)
    assert webhook["status"] == "failed"
    assert webhook["last_error"] == "delivery failed (connect_failed)"


def test_a_port_outside_the_allowed_ones_is_refused_at_delivery(jobs: JobStore) -> None:
    with raw_receiver(ok) as (port, arrivals):
        job_id = finished(jobs, f"http://127.0.0.1:{port}/hook")
        sender = dispatcher(jobs, ports=(80, 443))
        try:
            assert sender.deliver_due() == 1
        finally:
            sender.stop()
    assert arrivals == []
    assert webhook_of(jobs, job_id)["last_error"] == "delivery failed (refused_target)"


def tls_contexts(tmp_path: Path, served_name: str) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server context with a certificate for ``served_name`` from a CA of the test's own, and
    a client context that trusts only that CA (verification on, as in production)."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "webhook test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, served_name)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(served_name)]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "server.pem", tmp_path / "server.key"
    cert_file.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert_file, key_file)
    client = ssl.create_default_context(cadata=ca.public_bytes(serialization.Encoding.PEM).decode())
    return server, client


@contextmanager
def tls_receiver(context: ssl.SSLContext) -> Iterator[tuple[int, list[str | None]]]:
    """An HTTPS endpoint on 127.0.0.1 answering 204; yields its port and the SNI names seen."""
    seen: list[str | None] = []
    context.sni_callback = lambda _sock, name, _ctx: seen.append(name)  # type: ignore[assignment]

    def answer(connection: socket.socket) -> None:
        ok(connection)

    with raw_receiver(answer, wrap=context) as (port, _):
        yield port, seen


@pytest.mark.parametrize("served", ["hooks.tls.test", "someone-else.test"])
def test_https_verifies_the_certificate_for_the_host_and_sends_it_as_sni(
    jobs: JobStore, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, served: str
) -> None:
    real = socket.getaddrinfo

    def resolve(host: str, port: int, *args: Any, **kwargs: Any) -> Any:
        if host == "hooks.tls.test":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    server, client = tls_contexts(tmp_path, served)
    with tls_receiver(server) as (port, sni):
        job_id = finished(jobs, f"https://hooks.tls.test:{port}/hook")
        sender = dispatcher(jobs, ssl_context=client)
        try:
            assert sender.deliver_due() == 1
        finally:
            sender.stop()
    assert sni == ["hooks.tls.test"]  # the name, though the connection went to 127.0.0.1
    webhook = webhook_of(jobs, job_id)
    if served == "hooks.tls.test":
        assert webhook["status"] == "delivered", webhook
    else:  # a certificate for another name: no delivery
        assert webhook["last_error"] == "delivery failed (tls_failed)", webhook
