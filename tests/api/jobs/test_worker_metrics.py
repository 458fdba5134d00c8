"""Worker metrics for real: jobs run by ``genseal worker``'s Celery task with values in
multiprocess files, the exposition the worker's main process serves, scraped over HTTP.

The task runs in this process (``Task.apply``, as Celery runs a task it was handed) on a
``WorkerProcess`` built the way each prefork child builds its own; forked children stand in for
the pool's processes coming and going.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from celery import Task
from prometheus_client.parser import text_string_to_metric_families

from api._metrics import STAGE_BUCKETS, signer_not_after
from api.http._metrics import Metrics
from api.jobs._celery_app import TASK
from api.jobs._celery_worker import WorkerProcess, build_worker_app
from api.jobs._metrics import (
    WorkerMetrics,
    serve_worker_metrics,
    worker_process_stopped,
)
from gen import SealedGenerationService
from genseal.errors import ConfigError
from genseal.settings import Settings
from tests._media import photo

Labels = frozenset[tuple[str, str]]
Samples = dict[tuple[str, Labels], float]

# The API's definitions, read before any test makes metric values file-backed: an API registry
# made inside the exposition would write its values among the worker's.
API_FAMILIES = {
    family.name: (family.type, family.documentation) for family in Metrics().registry.collect()
}


def scrape(url: str) -> Samples:
    """Every sample the worker serves, keyed by sample name and label set."""
    response = httpx.get(url, timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture(scope="module")
def exposition(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """The worker's /metrics on a free loopback port, its values in a directory of the test's."""
    directory = tmp_path_factory.mktemp("worker-metrics")
    with serve_worker_metrics(0, host="127.0.0.1", directory=directory) as url:
        yield url, directory


@dataclass
class Worker:
    process: WorkerProcess
    task: Task

    def run(self, kind: str, request: dict[str, Any], blob: bytes | None = None) -> str:
        """Queue a job in the job table and run it as the worker's task would; its id."""
        job_id, _ = self.process.jobs.submit(
            kind=kind,  # type: ignore[arg-type]
            tenant=None,
            request=request,
            input_blob=blob,
            request_sha256=os.urandom(8).hex(),
            base_url="http://testserver",
            asynchronous=True,
        )
        outcome = self.task.apply(args=[job_id])
        assert outcome.successful(), outcome.traceback
        return job_id


@pytest.fixture(scope="module")
def worker(
    exposition: tuple[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Worker]:
    settings = Settings(home=tmp_path_factory.mktemp("worker-home"), policy_reload_seconds=0)
    service = SealedGenerationService(settings)
    # Inside the exposition, as a prefork child builds its process after the fork.
    process = WorkerProcess.from_service(service)
    app = build_worker_app(settings, [settings.model], process=process)
    try:
        yield Worker(process, app.tasks[TASK])
    finally:
        process.jobs.close()
        process.registry.close()


def test_jobs_run_by_the_worker_task_are_served_with_their_labels(
    exposition: tuple[str, Path], worker: Worker
) -> None:
    url, _ = exposition
    before = scrape(url)
    worker.run("generations", {"prompt": "hardcore porn", "size": "256x256"})
    worker.run("seal", {"prompt": "a cup of coffee", "image_name": "coffee.png"}, photo("coffee"))
    after = scrape(url)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    jobs = "genseal_jobs_total"
    assert delta(jobs, kind="generations", status="blocked") == 1
    assert delta(jobs, kind="seal", status="succeeded") == 1
    decisions = "genseal_decisions_total"
    assert delta(decisions, operation="generations", status="blocked") == 1
    assert delta(decisions, operation="seal", status="released") == 1
    rule = {"operation": "generations", "stage": "prompt", "rule": "block-sexual-prompt"}
    assert delta("genseal_policy_rule_matches_total", **rule, deciding="true") == 1
    assert delta("genseal_images_total", outcome="released") == 1
    assert delta("genseal_findings_total", category="sexual", state="flagged") >= 1

    stages = "genseal_stage_duration_seconds"
    for stage in ("screen_input", "screen", "seal"):
        assert delta(f"{stages}_count", stage=stage) == 1, stage
        assert delta(f"{stages}_bucket", stage=stage, le="+Inf") == 1, stage
    assert delta(f"{stages}_sum", stage="seal") > 0
    served = {
        float(dict(labels)["le"])
        for name, labels in after
        if name == f"{stages}_bucket" and dict(labels)["stage"] == "seal"
    }
    assert served == {*STAGE_BUCKETS, float("inf")}, "the API's buckets, not the default ones"

    assert value(after, "genseal_worker_processes") == 1
    expiry = signer_not_after(worker.process.service.identity)
    assert expiry is not None
    assert value(after, "genseal_signer_expiry_timestamp_seconds") == expiry.timestamp()


def test_the_worker_serves_the_apis_definitions(
    exposition: tuple[str, Path], worker: Worker
) -> None:
    """Same names, types and help texts as the API's registry: one definition each."""
    url, _ = exposition
    # Labelled series exist once observed: a job of each kind, whatever ran before this test.
    worker.run("generations", {"prompt": "hardcore porn", "size": "256x256"})
    worker.run("seal", {"prompt": "a cup of coffee", "image_name": "coffee.png"}, photo("coffee"))
    served = {
        family.name: (family.type, family.documentation)
        for family in text_string_to_metric_families(httpx.get(url, timeout=10).text)
    }
    shared = {
        "genseal_stage_duration_seconds",
        "genseal_decisions",
        "genseal_policy_rule_matches",
        "genseal_findings",
        "genseal_images",
        "genseal_jobs",
        "genseal_signer_expiry_timestamp_seconds",
    }
    assert shared <= served.keys() & API_FAMILIES.keys()
    for name in served.keys() & API_FAMILIES.keys():
        assert served[name] == API_FAMILIES[name], name
    assert served.keys() - API_FAMILIES.keys() == {"genseal_worker_processes"}


def _child(ready: Any, stop: Any, say_goodbye: bool) -> None:
    metrics = WorkerMetrics(signer_expiry=4e9)
    metrics.observe_job("edits", "failed")
    ready.set()
    stop.wait(30)
    if say_goodbye:
        worker_process_stopped()


def test_children_add_up_and_only_live_ones_count_as_up(
    exposition: tuple[str, Path], worker: Worker
) -> None:
    url, _ = exposition
    before = scrape(url)
    up = value(before, "genseal_worker_processes")
    assert up >= 1  # this process, as the worker fixture built it
    fork = multiprocessing.get_context("fork")
    # An event each: a child killed while waiting on a shared one would block its set().
    stops = [fork.Event(), fork.Event()]
    children = []
    for stop, say_goodbye in zip(stops, (True, False), strict=True):
        ready = fork.Event()
        child = fork.Process(target=_child, args=(ready, stop, say_goodbye), daemon=True)
        child.start()
        assert ready.wait(30), "the child did not start"
        children.append(child)
    during = scrape(url)
    assert value(during, "genseal_worker_processes") == up + 2
    failed = {"kind": "edits", "status": "failed"}
    assert value(during, "genseal_jobs_total", **failed) == (
        value(before, "genseal_jobs_total", **failed) + 2
    )

    polite, killed = children
    assert killed.pid is not None
    os.kill(killed.pid, signal.SIGKILL)  # no shutdown hook: as the OOM killer would
    killed.join(30)
    stops[0].set()
    polite.join(30)
    after = scrape(url)
    assert value(after, "genseal_worker_processes") == up
    assert value(after, "genseal_jobs_total", **failed) == value(
        during, "genseal_jobs_total", **failed
    ), "the counts of exited processes stay"


def test_a_port_another_worker_holds_is_refused_saying_which_setting_to_change(
    exposition: tuple[str, Path], tmp_path: Path
) -> None:
    url, _ = exposition
    held = int(httpx.URL(url).port or 0)
    second = serve_worker_metrics(held, host="127.0.0.1", directory=tmp_path)
    with pytest.raises(ConfigError, match=f"127.0.0.1:{held}") as refused, second:
        pass
    assert refused.value.hint is not None and "GENSEAL_WORKER_METRICS_PORT" in refused.value.hint
    assert httpx.get(url, timeout=10).status_code == 200, "the first one serves on"
