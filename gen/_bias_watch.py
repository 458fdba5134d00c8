"""Bias monitoring of releases: the perceived attributes of an opted-in tenant's released
images are counted. It only observes: a failure is logged and counted, never raised."""

from __future__ import annotations

import threading
from collections.abc import Callable

import structlog
from PIL import Image

from safety import AttributeEstimator, BiasMonitor

__all__ = ["BiasWatch"]

log = structlog.get_logger("genseal.service")


class BiasWatch:
    """Counts released images for the bias monitor; the estimator is made at the first use."""

    def __init__(self, monitor: BiasMonitor, estimator: Callable[[], AttributeEstimator]) -> None:
        self._monitor = monitor
        self._make_estimator = estimator
        self._estimator: AttributeEstimator | None = None
        self._lock = threading.Lock()
        self.failures = 0

    @property
    def estimator_loaded(self) -> bool:
        return self._estimator is not None

    def observe(self, tenant: str | None, image: Image.Image) -> None:
        """Count a released image's perceived attributes when its tenant opted in."""
        try:
            if not self._monitor.enabled(tenant):
                return
            with self._lock:
                if self._estimator is None:
                    self._estimator = self._make_estimator()
                estimator = self._estimator
            self._monitor.record(tenant, estimator.estimate(image))
        except Exception as exc:
            with self._lock:
                self.failures += 1
            log.warning("bias monitoring failed", tenant=tenant, error=str(exc))
