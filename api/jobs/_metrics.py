"""Prometheus metrics of ``genseal worker``: what its prefork processes do, served by its main
process on ``GENSEAL_WORKER_METRICS_PORT``.

Why this design. Celery's prefork pool runs jobs in children that the main process forks (and
forks again when one dies); the main process runs none. A port per child would make Prometheus
chase processes that come and go, and a child's counts would die with it. prometheus-client's
multiprocess mode fits instead: each child writes its values to memory-mapped files of its own
(one per process and metric type) in a directory of the worker's, and the main process serves
``/metrics`` by merging the files at each scrape (``MultiProcessCollector``). Counters and
histograms add up over every process that ran, children that have exited included, so a
replaced child loses nothing; ``genseal_worker_processes`` (summed over live processes) counts
the children up now, and the signer's expiry (the minimum over live processes) is the earliest
of theirs. A child that exits says so (``mark_process_dead`` on ``worker_process_shutdown``);
one killed outright cannot, so each scrape also drops the live gauges of processes that no
longer exist.

The metrics are ``api._metrics.ServiceMetrics``, the definitions the API counts with, plus
``genseal_worker_processes``. Webhooks are delivered by the API replicas, not by workers, so
their metrics are the API's.

prometheus-client chooses between in-memory and file-backed values once, when it is imported,
from ``PROMETHEUS_MULTIPROC_DIR``; the worker reads its port from the settings after that, so
``serve_worker_metrics`` sets the variable and has the library choose again. It does so before
the pool forks, and the main process makes no metric itself: children make theirs after the
fork, each writing files named by its pid. The directory is new for each run (temporary,
removed at exit): counters start from zero when a worker starts, as Prometheus expects of a
restarted target.

Off by default (port 0): a machine often runs several workers (one per GPU), and each needs a
port of its own.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry, Gauge, start_http_server, values
from prometheus_client.core import Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector

from api._metrics import ServiceMetrics
from genseal.errors import ConfigError

__all__ = ["WorkerMetrics", "serve_worker_metrics", "worker_process_stopped"]

_DIRECTORY = "PROMETHEUS_MULTIPROC_DIR"


class WorkerMetrics(ServiceMetrics):
    """What one worker process counts: ``ServiceMetrics``, and itself as a live process.

    Make it once per process, after the fork and once its models are loaded: the process
    counts as up from then on. Two instances in one process that is serving multiprocess
    metrics would write the same file entries and overwrite each other's counts.
    """

    def __init__(
        self, *, signer_expiry: float | None, registry: CollectorRegistry | None = None
    ) -> None:
        super().__init__(registry)
        self.processes = Gauge(
            "genseal_worker_processes",
            "Worker processes that have loaded their models and take jobs (a genseal worker's "
            "prefork children).",
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        self.signer_expiry.set(math.nan if signer_expiry is None else signer_expiry)
        self.processes.set(1)


@contextlib.contextmanager
def serve_worker_metrics(
    port: int, *, host: str = "0.0.0.0", directory: Path | None = None
) -> Iterator[str]:
    """Serve the metrics of this process and the processes it forks on ``host:port`` (port 0:
    a free one) while inside; yields the URL to scrape.

    Enter it before the pool forks: metrics made inside it, here or in a fork, keep their
    values in ``directory`` (default: a new temporary one, removed afterwards). ConfigError
    when the port cannot be had (another worker on the machine holds it).
    """
    owned = directory is None
    path = directory if directory is not None else Path(tempfile.mkdtemp(prefix="genseal-metrics-"))
    try:
        with _file_backed_values(path):
            registry = CollectorRegistry()
            registry.register(_WorkerFiles(path))
            try:
                server, thread = start_http_server(port, addr=host, registry=registry)
            except OSError as exc:
                raise ConfigError(
                    f"cannot serve worker metrics on {host}:{port}: {exc.strerror or exc}",
                    hint="give each worker on a machine a port of its own "
                    "(GENSEAL_WORKER_METRICS_PORT, or --metrics-port)",
                ) from exc
            try:
                shown = "127.0.0.1" if host in ("", "0.0.0.0") else host
                yield f"http://{shown}:{server.server_port}/metrics"
            finally:
                server.shutdown()
                server.server_close()
                thread.join(5)
    finally:
        if owned:
            shutil.rmtree(path, ignore_errors=True)


def worker_process_stopped() -> None:
    """This process stops taking jobs: it no longer counts as up (its counts stay)."""
    directory = os.environ.get(_DIRECTORY)
    if directory:
        mark_process_dead(os.getpid(), directory)


@contextlib.contextmanager
def _file_backed_values(directory: Path) -> Iterator[None]:
    """Metric values made inside (here or in forks) live in files under ``directory``."""
    previous_directory = os.environ.get(_DIRECTORY)
    previous_class = values.ValueClass
    os.environ[_DIRECTORY] = str(directory)
    # The choice prometheus-client made at import, made again now that the directory is set.
    values.ValueClass = values.get_value_class()
    try:
        yield
    finally:
        values.ValueClass = previous_class
        if previous_directory is None:
            os.environ.pop(_DIRECTORY, None)
        else:
            os.environ[_DIRECTORY] = previous_directory


class _WorkerFiles(Collector):
    """Every process's files merged, without the live gauges of processes that are gone."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._files = MultiProcessCollector(None, path=str(directory))

    def collect(self) -> Iterable[Metric]:
        for path in self._directory.glob("gauge_live*_*.db"):
            pid = path.stem.rsplit("_", 1)[-1]
            if pid.isdigit() and not _running(int(pid)):
                # Killed without a word (SIGKILL, OOM): its live gauges would count it forever.
                # Two scrapes at once may both find it; the second finds the files gone.
                with contextlib.suppress(FileNotFoundError):
                    mark_process_dead(int(pid), str(self._directory))
        metrics: Iterable[Metric] = self._files.collect()
        return metrics


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process holds the id now: ours is gone
        return False
    return True
