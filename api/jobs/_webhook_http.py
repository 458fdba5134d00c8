"""One webhook POST: to the address that was checked, within one deadline, reading little.

httpcore (the engine under httpx) takes a network backend; this one connects to the address
``resolve_target`` checked instead of resolving the host again, and bounds every read and write
by what is left of the attempt's deadline. The URL keeps its host, so TLS verifies the
certificate for that name and sends it as SNI, and the Host header is the tenant's.

What this stops: a receiver that answers its headers and then trickles a byte every few seconds
(per-read timeouts never fire; the deadline does), an answer of hundreds of megabytes (at most
``body_limit`` bytes are read, then the connection is dropped), and DNS rebinding (no second
lookup). Errors come back as short codes, not the operating system's message: a tenant reading
them must not learn which ports of a host are open.
"""

from __future__ import annotations

import contextlib
import ssl
import time
from collections.abc import Iterable
from typing import Any, Literal

import httpcore

from api.jobs._webhook_target import WebhookTarget

__all__ = ["DeliveryFailure", "FailureCode", "post_webhook"]

#: What a failed attempt is called where the tenant can read it.
FailureCode = Literal[
    "refused_target", "connect_failed", "tls_failed", "timed_out", "protocol_error"
]


class DeliveryFailure(Exception):
    """An attempt that got no HTTP answer; ``code`` is safe to show the tenant, ``detail`` is
    for the operator's logs."""

    def __init__(self, code: FailureCode, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


def post_webhook(
    target: WebhookTarget,
    headers: dict[str, str],
    body: bytes,
    *,
    deadline_seconds: float,
    body_limit: int,
    ssl_context: ssl.SSLContext | None = None,
) -> int:
    """POST ``body`` to ``target`` and return the answer's status code; DeliveryFailure when no
    answer came within ``deadline_seconds`` (connecting, TLS, sending and reading included)."""
    deadline = time.monotonic() + deadline_seconds
    backend = _PinnedBackend(target.addresses[0], deadline)
    with httpcore.ConnectionPool(
        ssl_context=ssl_context or ssl.create_default_context(),
        network_backend=backend,
        max_connections=1,
        keepalive_expiry=0,
    ) as pool:
        try:
            with pool.stream(
                "POST",
                target.url,
                headers=[(k.encode(), v.encode()) for k, v in headers.items()],
                content=body,
                extensions={"timeout": _timeouts(deadline)},
            ) as response:
                status = int(response.status)
                # The receiver has answered: its body, slow or broken, changes nothing.
                with contextlib.suppress(httpcore.TimeoutException, httpcore.NetworkError):
                    _read_at_most(response.iter_stream(), body_limit)
                return status
        except httpcore.TimeoutException as exc:
            raise DeliveryFailure("timed_out", str(exc) or "deadline passed") from exc
        except httpcore.ConnectError as exc:
            code: FailureCode = "tls_failed" if _is_tls(exc) else "connect_failed"
            raise DeliveryFailure(code, str(exc)) from exc
        except (httpcore.ProtocolError, httpcore.NetworkError) as exc:
            if time.monotonic() >= deadline:
                raise DeliveryFailure("timed_out", "deadline passed") from exc
            raise DeliveryFailure("protocol_error", str(exc)) from exc


def _read_at_most(chunks: Iterable[bytes], limit: int) -> None:
    # The answer is not needed, only its status: read a little so a well-behaved receiver is
    # not cut off mid-write, never more.
    seen = 0
    for chunk in chunks:
        seen += len(chunk)
        if seen >= limit:
            return


def _timeouts(deadline: float) -> dict[str, float]:
    left = max(deadline - time.monotonic(), 0.001)
    return {"connect": left, "read": left, "write": left, "pool": left}


def _is_tls(exc: BaseException) -> bool:
    cause = exc.__cause__ or exc.__context__
    return isinstance(cause, ssl.SSLError) or "SSL" in str(exc) or "certificate" in str(exc)


class _PinnedBackend(httpcore.NetworkBackend):
    """Connects every request to ``address`` (the host was checked as resolving to it)."""

    def __init__(self, address: str, deadline: float) -> None:
        self._address = address
        self._deadline = deadline
        self._system = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        stream = self._system.connect_tcp(
            self._address, port, _bounded(timeout, self._deadline), local_address, socket_options
        )
        return _DeadlineStream(stream, self._deadline)

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:  # pragma: no cover - webhooks are TCP
        raise httpcore.ConnectError("webhooks are delivered over TCP only")

    def sleep(self, seconds: float) -> None:  # pragma: no cover - no retries in the pool
        time.sleep(seconds)


class _DeadlineStream(httpcore.NetworkStream):
    """A stream whose every operation ends by the attempt's deadline."""

    def __init__(self, stream: httpcore.NetworkStream, deadline: float) -> None:
        self._stream = stream
        self._deadline = deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _bounded(timeout, self._deadline))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _bounded(timeout, self._deadline))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        upgraded = self._stream.start_tls(
            ssl_context, server_hostname, _bounded(timeout, self._deadline)
        )
        return _DeadlineStream(upgraded, self._deadline)

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


def _bounded(timeout: float | None, deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise httpcore.ReadTimeout("the delivery's deadline passed")
    return left if timeout is None else min(timeout, left)
