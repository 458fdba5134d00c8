"""Webhooks: signed deliveries of finished jobs, retried with back-off until they land.

Signatures follow Standard Webhooks (the scheme Replicate and Svix use), so receivers can use
an existing verifier: headers ``webhook-id``, ``webhook-timestamp`` and ``webhook-signature:
v1,<base64 HMAC-SHA256(secret, "{id}.{timestamp}.{body}")>``, with the secret
``whsec_<base64 key>`` that `genseal tenants create` prints.

Deliveries owed are kept on the job rows (see ``_jobs``), so a delivery owed when the process
stops is made after it starts again. Each is sent until a 2xx answer, at most
``webhook_max_attempts`` times, waiting ``webhook_retry_seconds`` × 2^(attempt-1) (capped at an
hour, with jitter) in between.

Each attempt can be told to an observer (``observe``: the outcome, and for a delivery the lag
since the job ended), which the API's metrics count.

URLs are checked when a job is submitted and again when it is delivered (DNS can change):
only http(s), and no loopback, private, link-local or reserved address unless
``webhook_allow_private`` is set — a webhook must not be a way into the API's own network.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import ipaddress
import random
import socket
import threading
from collections.abc import Callable
from typing import Literal, Protocol
from urllib.parse import urlsplit

import httpx
import structlog

from api.jobs._model import PendingWebhook
from genseal.errors import InputError

__all__ = [
    "WebhookDispatcher",
    "WebhookObserver",
    "WebhookOutcome",
    "sign_webhook",
    "validate_webhook_url",
]

log = structlog.get_logger("genseal.webhooks")

_MAX_DELAY_S = 3600.0
_BATCH = 20

#: delivered: a 2xx answer; retrying: failed, tried again later; failed: no attempt left.
WebhookOutcome = Literal["delivered", "retrying", "failed"]
#: Told each attempt's outcome and, for a delivery, the seconds since it became owed.
WebhookObserver = Callable[[WebhookOutcome, float | None], None]


class WebhookQueue(Protocol):
    """Where owed deliveries are kept (the job table: an outbox on each job row)."""

    def due_webhooks(self, limit: int) -> list[PendingWebhook]: ...

    def record_webhook(
        self,
        job_id: str,
        *,
        attempts: int,
        delivered: bool,
        error: str | None,
        retry_at: dt.datetime | None,
    ) -> None: ...


def sign_webhook(secret: str, message_id: str, timestamp: int, body: str) -> str:
    """The ``webhook-signature`` header value for one delivery."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{message_id}.{timestamp}.{body}".encode()
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def validate_webhook_url(url: str, *, allow_private: bool) -> str:
    """The URL if genseal may deliver to it, else InputError saying why."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError(f"webhook URL {url!r} must be an absolute http(s) URL")
    if parts.username or parts.password:
        raise InputError("webhook URL must not carry credentials")
    if allow_private:
        return url
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 443, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise InputError(f"webhook host {parts.hostname!r} does not resolve") from exc
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global or address.is_multicast:
            raise InputError(
                f"webhook host {parts.hostname!r} resolves to a non-public address ({address}); "
                "set GENSEAL_WEBHOOK_ALLOW_PRIVATE=true to allow it"
            )
    return url


class WebhookDispatcher:
    """Sends owed deliveries from one background thread."""

    def __init__(
        self,
        queue: WebhookQueue,
        secret_for: Callable[[str | None], str],
        *,
        allow_private: bool,
        max_attempts: int,
        retry_seconds: float,
        timeout_seconds: float = 10.0,
        transport: httpx.BaseTransport | None = None,
        observe: WebhookObserver | None = None,
    ) -> None:
        self._queue = queue
        self._observe = observe
        self._secret_for = secret_for
        self._allow_private = allow_private
        self._max_attempts = max_attempts
        self._retry_seconds = retry_seconds
        self._client = httpx.Client(
            timeout=timeout_seconds, transport=transport, follow_redirects=False
        )
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def wake(self) -> None:
        """A delivery became due (a job finished): look now rather than at the next tick."""
        self._wake.set()

    def start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="genseal-webhooks", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._client.close()

    def deliver_due(self) -> int:
        """Send every delivery that is due now; how many were attempted."""
        due = self._queue.due_webhooks(_BATCH)
        for webhook in due:
            self._attempt(webhook)
        return len(due)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                attempted = self.deliver_due()
            except Exception as exc:  # the loop must outlive a database hiccup
                log.warning("webhook loop failed", error=str(exc))
                attempted = 0
            if attempted < _BATCH:
                self._wake.wait(timeout=min(self._retry_seconds, 1.0))
                self._wake.clear()

    def _attempt(self, webhook: PendingWebhook) -> None:
        timestamp = int(dt.datetime.now(dt.UTC).timestamp())
        # One id per message across its retries: receivers deduplicate on it.
        message_id = "msg_" + webhook.job_id.removeprefix("job_")
        error: str | None = None
        try:
            validate_webhook_url(webhook.url, allow_private=self._allow_private)
            secret = self._secret_for(webhook.tenant)
            response = self._client.post(
                webhook.url,
                content=webhook.body.encode(),
                headers={
                    "content-type": "application/json",
                    "user-agent": "genseal-webhooks",
                    "webhook-id": message_id,
                    "webhook-timestamp": str(timestamp),
                    "webhook-signature": sign_webhook(secret, message_id, timestamp, webhook.body),
                },
            )
            if not 200 <= response.status_code < 300:
                error = f"HTTP {response.status_code}"
        except (httpx.HTTPError, InputError) as exc:
            error = f"{type(exc).__name__}: {exc}"
        attempts = webhook.attempts + 1
        retry_at: dt.datetime | None = None
        if error is not None and attempts < self._max_attempts:
            delay = min(self._retry_seconds * 2 ** (attempts - 1), _MAX_DELAY_S)
            delay *= random.uniform(0.8, 1.2)  # spread the retries of many jobs apart
            retry_at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=delay)
        log.info("webhook attempt", job_id=webhook.job_id, attempt=attempts, error=error)
        self._queue.record_webhook(
            webhook.job_id,
            attempts=attempts,
            delivered=error is None,
            error=error,
            retry_at=retry_at,
        )
        if self._observe is not None:
            self._observe(*_outcome(webhook, error, retry_at))


def _outcome(
    webhook: PendingWebhook, error: str | None, retry_at: dt.datetime | None
) -> tuple[WebhookOutcome, float | None]:
    if error is not None:
        return ("failed" if retry_at is None else "retrying"), None
    if webhook.owed_since is None:
        return "delivered", None
    lag = (dt.datetime.now(dt.UTC) - webhook.owed_since).total_seconds()
    # The job's end was stamped by the worker's clock, the delivery by this one's.
    return "delivered", max(lag, 0.0)
