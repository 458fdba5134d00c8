"""Readiness (``/readyz``) and the Prometheus endpoint (``/metrics``).

``/healthz`` says the process answers; ``/readyz`` says it can do its job now: the default model
is loaded, the screener's classifiers answer, the signing certificate is usable at this moment,
the manifest store answers a query and a policy is active. Load balancers and orchestrators
route traffic on it, so it is cheap (no generation, no signature) and never blocks on the
warm-up, which runs once in a background thread.

``install_observability(app, service)`` wires everything into an app built by ``create_app``.
"""

from __future__ import annotations

import datetime as dt
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse, Response
from PIL import Image
from pydantic import BaseModel, Field
from sqlalchemy.engine import make_url

from api._metrics import signer_not_after
from api.http._metrics import Metrics, MetricsMiddleware
from gen import SealedGenerationService
from provenance import identity_problems
from safety import CheckState, Screener, Stage

__all__ = [
    "CheckName",
    "Readiness",
    "ReadinessCheck",
    "ReadinessReport",
    "install_observability",
    "observability_router",
]

CheckName = Literal["model", "workers", "checks", "signer", "store", "policy", "disk"]

_WARM_UP_PROMPT = "a ceramic figurine of a red fox on a desk"
_WARM_UP_SIZE = (64, 64)
# Details come from exception messages of third-party code: bounded, so a probe stays small.
_MAX_DETAIL = 400


class ReadinessCheck(BaseModel):
    """One thing the service needs in order to serve."""

    name: CheckName = Field(
        description="model: the default model is loaded; checks: the safety classifiers "
        "answer; signer: the signing certificate chain is usable now; store: the manifest "
        "store answers a query; policy: a policy is active; disk: the home and database "
        "volumes have GENSEAL_MIN_FREE_DISK_MB free."
    )
    ok: bool = Field(description="Whether this part is ready.")
    detail: str = Field(
        description="What was found: the model id, until when the signing certificate is "
        "valid, or what is wrong (never key material)."
    )


class ReadinessReport(BaseModel):
    """Whether this instance should receive traffic, and why (or why not)."""

    ready: bool = Field(description="True when every check is ok.")
    checks: list[ReadinessCheck] = Field(description="Every check, in a fixed order.")


class _Pending:
    pass


_PENDING = _Pending()


class Readiness:
    """Warms the service up, then answers readiness from the warm-up's outcome and from cheap
    live checks (signer, store, policy) that can change while the process runs.

    Thread-safe. ``start()`` runs ``warm_up()`` in a daemon thread; ``check()`` never waits for
    it. A failed warm-up step is retried (at most every ``retry_seconds``, on a check), because
    what failed may heal: weights copied in, a classifier that failed to load transiently.
    """

    def __init__(
        self,
        service: SealedGenerationService,
        *,
        retry_seconds: float = 30.0,
        workers: Callable[[str], None] | None = None,
    ) -> None:
        self.service = service
        self.retry_seconds = retry_seconds
        # With external workers (the celery job backend) the model loads there, not here:
        # readiness asks instead whether a live worker serves the default model.
        self._workers = workers
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._attempted = 0.0
        self._model: ReadinessCheck | _Pending = _PENDING
        self._screener: ReadinessCheck | _Pending = _PENDING
        self._warm_screener: object | None = None

    def start(self) -> None:
        """Start the warm-up in the background, unless it runs, or has nothing left to do."""
        with self._lock:
            if self._thread is not None and (self._thread.is_alive() or not self._needs_warm_up()):
                return
            self._attempted = time.monotonic()
            self._thread = threading.Thread(
                target=self.warm_up, name="genseal-warm-up", daemon=True
            )
            self._thread.start()

    def _needs_warm_up(self) -> bool:
        if self.service.screener is not self._warm_screener:
            # A policy reload built a new screener, whose classifier loads on first use.
            return True
        failed = not _ok(self._model) or not _ok(self._screener)
        return failed and time.monotonic() - self._attempted >= self.retry_seconds

    def warm_up(self) -> None:
        """Load the default model and run the screener once on a sample, recording the outcome.

        Failures are recorded, not raised: a model that cannot load must show in ``/readyz``
        with its reason while the rest of the API (verify, manifests) keeps answering. Steps
        that already succeeded are not repeated.
        """
        with self._lock:
            model_ok = _ok(self._model) or self._workers is not None
        if not model_ok:
            model = self._load_model()
            with self._lock:
                self._model = model
        screener = self.service.screener
        with self._lock:
            screener_ok = _ok(self._screener) and screener is self._warm_screener
        if not screener_ok:
            result = self._screen_sample(screener)
            with self._lock:
                # Until now the previous outcome stood: a policy reload must not take the
                # instance out of rotation while its new screener warms up.
                self._screener, self._warm_screener = result, screener

    def check(self) -> ReadinessReport:
        """The state of every part now. Blocking (a database round trip): call off the loop."""
        self.start()
        with self._lock:
            model, screener = self._model, self._screener
        checks = [
            self._served()
            if self._workers is not None
            else _pending("model", f"loading {self.service.settings.model}")
            if isinstance(model, _Pending)
            else model,
            _pending("checks", "warming up the safety classifiers")
            if isinstance(screener, _Pending)
            else screener,
            self._signer(),
            self._store(),
            self._policy(),
            self._disk(),
        ]
        return ReadinessReport(ready=all(c.ok for c in checks), checks=checks)

    # -- the checks ----------------------------------------------------------------------------

    def _served(self) -> ReadinessCheck:
        spec = self.service.settings.model
        assert self._workers is not None
        try:
            self._workers(spec)
        except Exception as exc:
            return _failed("workers", f"no worker runs {spec}", exc)
        return ReadinessCheck(name="workers", ok=True, detail=f"a live worker serves {spec}")

    def _load_model(self) -> ReadinessCheck:
        spec = self.service.settings.model
        start = time.perf_counter()
        try:
            backend = self.service.backend(spec)
        except Exception as exc:
            return _failed("model", f"cannot load {spec}", exc)
        seconds = time.perf_counter() - start
        return ReadinessCheck(
            name="model",
            ok=True,
            detail=f"{backend.model_id} ({backend.model_version}) loaded on {backend.device} "
            f"in {seconds:.1f} s",
        )

    @staticmethod
    def _screen_sample(screener: Screener) -> ReadinessCheck:
        start = time.perf_counter()
        try:
            findings = screener.screen_prompt(_WARM_UP_PROMPT)
            findings += screener.screen_images(
                [Image.new("RGB", _WARM_UP_SIZE, (128, 96, 64))], Stage.OUTPUT
            )
        except Exception as exc:
            return _failed("checks", "the screener failed on a sample", exc)
        # A category with no model here is not_checked by design; a check that fails is an
        # error, and the policies block on errors: every request would be refused.
        unchecked = [f for f in findings if f.state is CheckState.ERROR]
        if unchecked:
            reasons = "; ".join(sorted({f"{f.check}: {f.reason}" for f in unchecked}))
            return ReadinessCheck(
                name="checks", ok=False, detail=_bounded(f"checks that cannot run: {reasons}")
            )
        names = sorted({f.check for f in findings})
        ms = (time.perf_counter() - start) * 1000
        return ReadinessCheck(
            name="checks",
            ok=True,
            detail=f"{', '.join(names)} answered a sample in {ms:.0f} ms",
        )

    def _signer(self) -> ReadinessCheck:
        identity = self.service.identity
        try:
            problems = identity_problems(identity)
        except Exception as exc:
            return _failed("signer", "cannot check the signing identity", exc)
        if problems:
            return ReadinessCheck(name="signer", ok=False, detail=_bounded("; ".join(problems)))
        until = signer_not_after(identity)
        when = f" until {until:%Y-%m-%dT%H:%M:%SZ}" if until is not None else ""
        return ReadinessCheck(name="signer", ok=True, detail=f"signing certificate valid{when}")

    def _store(self) -> ReadinessCheck:
        start = time.perf_counter()
        try:
            self.service.store.audit_entries(limit=1)
        except Exception as exc:
            return _failed("store", "the manifest store does not answer", exc)
        ms = (time.perf_counter() - start) * 1000
        return ReadinessCheck(name="store", ok=True, detail=f"answered in {ms:.1f} ms")

    def _disk(self) -> ReadinessCheck:
        settings = self.service.settings
        volumes = {"home": settings.home}
        database = make_url(settings.store_url)
        if database.get_backend_name() == "sqlite" and database.database not in (
            None,
            "",
            ":memory:",
        ):
            volumes["database"] = Path(str(database.database)).parent
        need = settings.min_free_disk_mb
        lowest = None
        for name, path in volumes.items():
            while not path.exists() and path != path.parent:
                path = path.parent  # not made yet: the volume it will be made on
            try:
                free = shutil.disk_usage(path).free // (1024 * 1024)
            except OSError as exc:
                return _failed("disk", f"cannot read the free space of the {name} volume", exc)
            if lowest is None or free < lowest[1]:
                lowest = (name, free)
        assert lowest is not None
        name, free = lowest
        # Named by role, not path: readiness is public.
        if free < need:
            return ReadinessCheck(
                name="disk",
                ok=False,
                detail=f"{free} MB free on the {name} volume, under the {need} MB required",
            )
        return ReadinessCheck(name="disk", ok=True, detail=f"{free} MB free on the {name} volume")

    def _policy(self) -> ReadinessCheck:
        try:
            policy = self.service.policy
            reload_error = self.service.policy_reloader.last_error
        except Exception as exc:
            return _failed("policy", "no active policy", exc)
        active = f"{policy.id}@{policy.version} ({policy.sha256[:12]})"
        if reload_error:
            # The previous policy stays active and enforced, so the instance still serves
            # correctly; taking every replica out over a bad edit would turn a typo into an
            # outage. Why is in the server log and in GET /v1/policy for the operator: the
            # reason names files and tenants, and readiness is public.
            return ReadinessCheck(
                name="policy",
                ok=True,
                detail=f"{active} active; the last reload was rejected (the server log says why)",
            )
        return ReadinessCheck(name="policy", ok=True, detail=f"{active} active")


def _ok(result: ReadinessCheck | _Pending) -> bool:
    return isinstance(result, ReadinessCheck) and result.ok


def _pending(name: CheckName, detail: str) -> ReadinessCheck:
    return ReadinessCheck(name=name, ok=False, detail=f"pending: {detail}")


def _failed(name: CheckName, what: str, exc: Exception) -> ReadinessCheck:
    # The first line: drivers append hints (SQLAlchemy's "Background on this error at …").
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return ReadinessCheck(name=name, ok=False, detail=_bounded(f"{what}: {first}"))


def _bounded(text: str) -> str:
    return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 1] + "…"


def observability_router(
    service: SealedGenerationService, metrics: Metrics, readiness: Readiness
) -> APIRouter:
    """``GET /metrics`` and ``GET /readyz``. Neither takes an API key: scrapers and probes
    have none, and neither reveals more than ``/healthz`` does."""
    router = APIRouter(tags=["service"])

    @router.get(
        "/metrics",
        response_class=Response,
        include_in_schema=True,
        summary="Prometheus metrics (text exposition format)",
        responses={
            200: {
                "description": "Requests by route template and status, stage latencies, "
                "decisions, findings, images, verifications and jobs.",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            }
        },
    )
    def get_metrics() -> Response:
        body, content_type = metrics.render()
        return Response(content=body, media_type=content_type)

    @router.get(
        "/readyz",
        response_model=ReadinessReport,
        summary="Readiness: model loaded, checks warm, signer valid, store and policy up",
        responses={
            200: {"description": "Ready: every check is ok."},
            503: {
                "model": ReadinessReport,
                "description": "Not ready (warming up, or a check failed); the body says which.",
            },
        },
    )
    def get_readyz() -> JSONResponse:
        # check() also starts the warm-up, for servers that skip the lifespan (a TestClient
        # outside `with`): a probe must never wait on a warm-up nobody started.
        report = readiness.check()
        return JSONResponse(
            status_code=200 if report.ready else 503, content=report.model_dump(mode="json")
        )

    return router


def install_observability(
    app: FastAPI,
    service: SealedGenerationService,
    *,
    metrics: Metrics | None = None,
    workers: Callable[[str], None] | None = None,
) -> tuple[Metrics, Readiness]:
    """Add the metrics middleware, ``/metrics`` and ``/readyz`` to ``app``; warm up at start.

    Call it before the app starts serving (Starlette refuses middleware afterwards), e.g. right
    after building the app. Pass ``metrics`` when parts built earlier already report to it,
    and ``workers`` (raises when no worker serves a model) when jobs run in other processes.
    The warm-up thread starts when the app's lifespan starts (or at the latest on the first
    ``/readyz``), not here: building an app (tests, ``--help``) must not load a model.
    """
    metrics = metrics if metrics is not None else Metrics()
    readiness = Readiness(service, workers=workers)
    metrics.track_signer_expiry(lambda: _timestamp(signer_not_after(service.identity)))
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.include_router(observability_router(service, metrics, readiness))

    inner = app.router.lifespan_context

    def lifespan(app_: Any) -> Any:
        readiness.start()
        return inner(app_)

    app.router.lifespan_context = lifespan
    return metrics, readiness


def _timestamp(moment: dt.datetime | None) -> float | None:
    return None if moment is None else float(moment.timestamp())
