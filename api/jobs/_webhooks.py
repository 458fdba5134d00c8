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

URLs are checked when a job is submitted and again at every attempt (DNS can change), and an
attempt connects to the address it checked (``_webhook_target``, ``_webhook_http``). Deliveries
run in one lane per tenant on a few threads, each attempt within a deadline and reading at most
a few KB of the answer, so one slow or hostile receiver delays no other tenant.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import random
import ssl
import threading
from collections.abc import Callable, Collection
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Literal, Protocol

import structlog

from api.jobs._model import PendingWebhook
from api.jobs._webhook_http import DeliveryFailure, post_webhook
from api.jobs._webhook_target import resolve_target
from genseal.errors import InputError

__all__ = [
    "DEFAULT_PORTS",
    "WebhookDispatcher",
    "WebhookObserver",
    "WebhookOutcome",
    "sign_webhook",
    "validate_webhook_url",
]

log = structlog.get_logger("genseal.webhooks")

_MAX_DELAY_S = 3600.0
#: Ports a webhook URL may name unless GENSEAL_WEBHOOK_PORTS says otherwise.
DEFAULT_PORTS: frozenset[int] = frozenset({80, 443})

#: delivered: a 2xx answer; retrying: failed, tried again later; failed: no attempt left.
WebhookOutcome = Literal["delivered", "retrying", "failed"]
#: Told each attempt's outcome and, for a delivery, the seconds since it became owed.
WebhookObserver = Callable[[WebhookOutcome, float | None], None]


class WebhookQueue(Protocol):
    """Where owed deliveries are kept (the job table: an outbox on each job row)."""

    def due_webhooks(
        self, limit: int, *, exclude_scopes: Collection[str] = (), claim_seconds: float = 60.0
    ) -> list[PendingWebhook]: ...

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


def validate_webhook_url(
    url: str, *, allow_private: bool, ports: Collection[int] = DEFAULT_PORTS
) -> str:
    """The URL if genseal may deliver to it, else InputError saying why (see
    ``_webhook_target``)."""
    resolve_target(url, allow_private=allow_private, ports=ports)
    return url


class WebhookDispatcher:
    """Sends owed deliveries on a few threads, one lane per tenant.

    A lane is a tenant's deliveries, one at a time; at most ``concurrency`` lanes run at once,
    and a tenant whose lane is busy has nothing more claimed until it is free. So a receiver
    that stalls delays only its own tenant's deliveries, each attempt ends by
    ``deadline_seconds`` whatever the receiver does, and at most ``body_limit`` bytes of an
    answer are read.
    """

    def __init__(
        self,
        queue: WebhookQueue,
        secret_for: Callable[[str | None], str],
        *,
        allow_private: bool,
        max_attempts: int,
        retry_seconds: float,
        ports: Collection[int] = DEFAULT_PORTS,
        deadline_seconds: float = 15.0,
        concurrency: int = 4,
        body_limit: int = 4096,
        ssl_context: ssl.SSLContext | None = None,
        observe: WebhookObserver | None = None,
    ) -> None:
        self._queue = queue
        self._observe = observe
        self._secret_for = secret_for
        self._allow_private = allow_private
        self._ports = frozenset(ports)
        self._max_attempts = max_attempts
        self._retry_seconds = retry_seconds
        self._deadline_seconds = deadline_seconds
        self._concurrency = concurrency
        self._body_limit = body_limit
        # Made once: the default context reads the system's CA bundle from disk.
        self._ssl_context = ssl_context or ssl.create_default_context()
        self._pool = ThreadPoolExecutor(concurrency, thread_name_prefix="genseal-webhook")
        self._busy: set[str] = set()
        self._lock = threading.Lock()
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
        # An attempt in flight ends by its deadline; what it did not record is claimed again
        # once its claim runs out.
        self._pool.shutdown(wait=False, cancel_futures=True)

    def deliver_due(self) -> int:
        """Start every delivery due now that a free lane can take, wait for them to end, and
        return how many were attempted."""
        return sum(future.result() for future in self._start_due())

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._start_due()
            except Exception as exc:  # the loop must outlive a database hiccup
                log.warning("webhook loop failed", error=str(exc))
            self._wake.wait(timeout=min(self._retry_seconds, 1.0))
            self._wake.clear()

    def _start_due(self) -> list[Future[int]]:
        with self._lock:
            free = self._concurrency - len(self._busy)
            busy = set(self._busy)
        if free <= 0:
            return []
        due = self._queue.due_webhooks(
            free,
            exclude_scopes=busy,
            # A lane's rows run one after another: each is claimed until the last may be done.
            claim_seconds=self._deadline_seconds * free + 30.0,
        )
        lanes: dict[str, list[PendingWebhook]] = {}
        for webhook in due:
            lanes.setdefault(webhook.tenant or "", []).append(webhook)
        started = []
        with self._lock:
            self._busy.update(lanes)
        for scope, webhooks in lanes.items():
            started.append(self._pool.submit(self._run_lane, scope, webhooks))
        return started

    def _run_lane(self, scope: str, webhooks: list[PendingWebhook]) -> int:
        try:
            for webhook in webhooks:
                self._attempt(webhook)
            return len(webhooks)
        finally:
            with self._lock:
                self._busy.discard(scope)
            self._wake.set()  # the lane is free: its tenant's next delivery may go

    def _attempt(self, webhook: PendingWebhook) -> None:
        timestamp = int(dt.datetime.now(dt.UTC).timestamp())
        # One id per message across its retries: receivers deduplicate on it.
        message_id = "msg_" + webhook.job_id.removeprefix("job_")
        error: str | None = None
        detail: str | None = None
        try:
            target = resolve_target(
                webhook.url, allow_private=self._allow_private, ports=self._ports
            )
            secret = self._secret_for(webhook.tenant)
            status = post_webhook(
                target,
                {
                    "content-type": "application/json",
                    "user-agent": "genseal-webhooks",
                    "webhook-id": message_id,
                    "webhook-timestamp": str(timestamp),
                    "webhook-signature": sign_webhook(secret, message_id, timestamp, webhook.body),
                },
                webhook.body.encode(),
                deadline_seconds=self._deadline_seconds,
                body_limit=self._body_limit,
                ssl_context=self._ssl_context,
            )
            if not 200 <= status < 300:
                error = f"HTTP {status}"
        except InputError as exc:
            error, detail = "delivery failed (refused_target)", str(exc)
        except DeliveryFailure as exc:
            # The tenant reads the code only: the system's message would tell which ports of
            # a host answer.
            error, detail = f"delivery failed ({exc.code})", exc.detail
        attempts = webhook.attempts + 1
        retry_at: dt.datetime | None = None
        if error is not None and attempts < self._max_attempts:
            delay = min(self._retry_seconds * 2 ** (attempts - 1), _MAX_DELAY_S)
            delay *= random.uniform(0.8, 1.2)  # spread the retries of many jobs apart
            retry_at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=delay)
        log.info(
            "webhook attempt", job_id=webhook.job_id, attempt=attempts, error=error, detail=detail
        )
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
