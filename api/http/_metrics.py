"""Prometheus metrics of the HTTP API and of what the service decided.

One ``CollectorRegistry`` per ``Metrics`` (so per app): several apps in one process (tests,
embedded servers) must not collide in prometheus-client's global registry, and each app's
``/metrics`` must show only its own traffic.

HTTP requests are labelled by route *template* (``/v1/manifests/{manifest_id}``), never by raw
path: one series per id would grow without bound. Unmatched paths share ``route="unmatched"``
and unknown methods share ``method="OTHER"`` for the same reason.

What the service decides (stages, decisions, policy rules, findings, images, jobs, the signer's
expiry) is defined in ``api._metrics.ServiceMetrics``, which the Celery workers count with too;
``Metrics`` adds what only the API does: HTTP, screening without generating, verification, the
queue depth, webhook deliveries and the bias monitor.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector
from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api._metrics import STAGE_BUCKETS, ServiceMetrics
from gen import ScreenResult
from provenance import ProvenanceReport
from safety import BiasSummary

__all__ = [
    "BIAS_WINDOW_DAYS",
    "HTTP_BUCKETS",
    "STAGE_BUCKETS",
    "WEBHOOK_LAG_BUCKETS",
    "Metrics",
    "MetricsMiddleware",
    "route_template",
]

# Whole requests: from a health probe (sub-millisecond) to a batch of images.
HTTP_BUCKETS = (
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
)  # fmt: skip
# Webhook delivery lag: from the job's end to the 2xx answer, retries included; a delivery
# retried with back-off lands minutes or hours later.
WEBHOOK_LAG_BUCKETS = (
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 4 * 3600.0,
)  # fmt: skip

# Bias gauges are recomputed from the database at most this often, however often Prometheus
# scrapes: a few grouped queries per opted-in tenant.
BIAS_REFRESH_SECONDS = 60.0
BIAS_WINDOW_DAYS = 30

UNMATCHED = "unmatched"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class Metrics(ServiceMetrics):
    """The counters, histograms and gauges of one app, in a registry of their own."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        super().__init__(registry)
        r = self.registry
        self.http_requests = Counter(
            "genseal_http_requests",
            "HTTP requests answered, by method, route template and status code.",
            ["method", "route", "status"],
            registry=r,
        )
        self.http_duration = Histogram(
            "genseal_http_request_duration_seconds",
            "Time from request to the last byte of the response, by method and route template.",
            ["method", "route"],
            buckets=HTTP_BUCKETS,
            registry=r,
        )
        self.screens = Counter(
            "genseal_screens",
            "Screenings without generation (/v1/screen), by the policy action they would get.",
            ["action"],
            registry=r,
        )
        self.verifications = Counter(
            "genseal_verifications",
            "Provenance verifications, by C2PA state and whether the manifest store recovered "
            "the image's sealed manifest.",
            ["state", "recovered"],
            registry=r,
        )
        self.jobs_queued = Gauge("genseal_jobs_queued", "Jobs waiting in the queue.", registry=r)
        self.webhook_deliveries = Counter(
            "genseal_webhook_deliveries",
            "Webhook delivery attempts, by outcome: delivered (a 2xx answer), retrying (failed, "
            "tried again later), failed (failed, no attempt left).",
            ["outcome"],
            registry=r,
        )
        self.webhook_lag = Histogram(
            "genseal_webhook_delivery_lag_seconds",
            "From the job's end (when its webhook became due) to a 2xx answer, retries included.",
            buckets=WEBHOOK_LAG_BUCKETS,
            registry=r,
        )
        self.signer_expiry.set(math.nan)

    # -- what the service did ------------------------------------------------------------------

    def observe_screen(self, result: ScreenResult) -> None:
        self.screens.labels(result.decision.action.value).inc()
        self.count_rule_matches("screen", [result.decision])
        self.count_findings(result.findings)

    def observe_verify(self, report: ProvenanceReport) -> None:
        recovered = "true" if report.recovery.found else "false"
        self.verifications.labels(report.c2pa.state, recovered).inc()

    def observe_webhook(self, outcome: str, lag_seconds: float | None) -> None:
        """Count one delivery attempt; ``lag_seconds`` for a delivered one (see
        ``WebhookDispatcher``'s ``observe``)."""
        self.webhook_deliveries.labels(outcome).inc()
        if lag_seconds is not None:
            self.webhook_lag.observe(lag_seconds)

    def set_queue_depth(self, n: int) -> None:
        self.jobs_queued.set(n)

    def track_queue_depth(self, read: Callable[[], int]) -> None:
        """Read the queue depth at every scrape instead (e.g. ``lambda: jobs.count("queued")``):
        a count kept up by hand drifts when another process takes or adds jobs."""
        self.jobs_queued.set_function(_guarded(read))

    def track_signer_expiry(self, read: Callable[[], float | None]) -> None:
        """Read the signing certificate's expiry (Unix time) at every scrape, so a renewed or
        replaced identity shows without a restart."""
        self.signer_expiry.set_function(_guarded(read))

    def track_bias(
        self,
        summaries: Callable[[], Sequence[BiasSummary]],
        failures: Callable[[], int],
        *,
        refresh_seconds: float = BIAS_REFRESH_SECONDS,
    ) -> None:
        """Expose the bias monitor at scrape time: the share of each perceived category and
        the drift from the baseline per opted-in tenant (``summaries``, refreshed at most every
        ``refresh_seconds``), and how often monitoring a release failed (``failures``)."""
        self.registry.register(_BiasCollector(summaries, failures, refresh_seconds))

    def render(self) -> tuple[bytes, str]:
        """The text exposition of every metric, and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    # -- HTTP ----------------------------------------------------------------------------------

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        method = method if method in _METHODS else "OTHER"
        self.http_requests.labels(method, route, str(status)).inc()
        self.http_duration.labels(method, route).observe(seconds)


class MetricsMiddleware:
    """Pure ASGI: counts each HTTP request once its response is complete.

    Pure ASGI rather than ``BaseHTTPMiddleware`` so streamed bodies pass through untouched and
    the duration covers the last byte. ``app.add_middleware(MetricsMiddleware, metrics=m)``.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        root_path = str(scope.get("root_path", ""))
        status = 500  # what the server answers when the app raises before starting a response

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            # Routing fills the (shared) scope on the way in, so after the app returns it names
            # the route that answered.
            self.metrics.observe_request(
                str(scope.get("method", "")),
                route_template(scope, root_path),
                status,
                time.perf_counter() - start,
            )


def route_template(scope: Scope, root_path: str = "") -> str:
    """The path template of the route that handled ``scope`` (after routing), or "unmatched".

    ``root_path`` is the scope's root path as the middleware saw it; mounts extend it, and the
    extension is part of the template. A FastAPI router included with a prefix leaves its own
    route (without the prefix) in ``scope["route"]``; FastAPI records the prefixed template of
    the route it selected beside it, which is used when it belongs to that route.
    """
    route = scope.get("route")
    if route is None:
        return UNMATCHED
    local: object = "/{path}"  # a mount's own app without routes, e.g. static files
    if not isinstance(route, Mount):
        local = _included_template(scope, route) or getattr(route, "path_format", None)
    if not isinstance(local, str):
        return UNMATCHED
    mounted = str(scope.get("root_path", ""))
    prefix = mounted[len(root_path) :] if mounted.startswith(root_path) else ""
    return prefix + local


def _included_template(scope: Scope, route: Any) -> str | None:
    fastapi_scope = scope.get("fastapi")
    if not isinstance(fastapi_scope, dict):
        return None
    context = fastapi_scope.get("effective_route_context")
    if context is None or getattr(context, "original_route", None) is not route:
        return None
    template = getattr(context, "path_format", None)
    return template if isinstance(template, str) else None


class _BiasCollector(Collector):
    def __init__(
        self,
        summaries: Callable[[], Sequence[BiasSummary]],
        failures: Callable[[], int],
        refresh_seconds: float,
    ) -> None:
        self._summaries = summaries
        self._failures = failures
        self._refresh_seconds = refresh_seconds
        self._cached: tuple[float, Sequence[BiasSummary]] | None = None
        self._lock = threading.Lock()

    def describe(self) -> Iterator[Metric]:
        # Without describe() the registry would collect (query the database) on registration.
        yield from self._families([], 0)

    def collect(self) -> Iterator[Metric]:
        try:
            failures = self._failures()
        except Exception:
            failures = 0
        yield from self._families(self._read(), failures)

    def _read(self) -> Sequence[BiasSummary]:
        with self._lock:
            now = time.monotonic()
            if self._cached is None or now - self._cached[0] >= self._refresh_seconds:
                try:
                    self._cached = (now, self._summaries())
                except Exception as exc:  # a failed read must not fail the whole scrape
                    structlog.get_logger("genseal.metrics").warning(
                        "cannot read the bias summaries", error=str(exc)
                    )
                    self._cached = (now, [])
            return self._cached[1]

    @staticmethod
    def _families(summaries: Sequence[BiasSummary], failures: int) -> Iterator[Metric]:
        share = GaugeMetricFamily(
            "genseal_bias_share",
            f"Share of a tenant's released images (last {BIAS_WINDOW_DAYS} days, UTC) whose "
            "subject is perceived in a category, per attribute (gender, age, monk, ita). "
            "Tenant '-': requests without a tenant.",
            labels=["tenant", "attribute", "category"],
        )
        drift = GaugeMetricFamily(
            "genseal_bias_drift",
            "Total variation distance of those shares from the bias baseline "
            "(GENSEAL_BIAS_BASELINE), 0 to 1; absent without a baseline or measured images.",
            labels=["tenant", "attribute"],
        )
        flagged = GaugeMetricFamily(
            "genseal_bias_drift_flagged",
            "1 when the drift is flagged (TVD over GENSEAL_BIAS_DRIFT_TVD, chi-square p < 0.01, "
            "at least GENSEAL_BIAS_MIN_IMAGES measured), else 0.",
            labels=["tenant", "attribute"],
        )
        for summary in summaries:
            tenant = summary.tenant or "-"
            for attribute, found in summary.attributes.items():
                for category, value in found.proportions.items():
                    share.add_metric([tenant, attribute, category], value)
                if found.drift is not None and found.drift.tvd is not None:
                    drift.add_metric([tenant, attribute], found.drift.tvd)
                    flagged.add_metric([tenant, attribute], float(found.drift.flagged))
        yield share
        yield drift
        yield flagged
        yield CounterMetricFamily(
            "genseal_bias_monitor_failures",
            "Released images the bias monitor could not count (estimation or database failed); "
            "the release itself went ahead.",
            value=failures,
        )


def _guarded(read: Callable[[], float | None]) -> Callable[[], float]:
    # A gauge read at scrape time must not fail the scrape: every other metric would go with it.
    def value() -> float:
        try:
            result = read()
        except Exception:
            return math.nan
        return math.nan if result is None else float(result)

    return value
