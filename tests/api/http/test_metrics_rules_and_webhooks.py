"""The API's metrics of policy rules and webhook deliveries: real decisions of the default
policy, a real job table and a webhook receiver on loopback."""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from api.http._metrics import Metrics
from api.jobs._store import JobStore
from api.jobs._webhooks import WebhookDispatcher
from gen import GenerationRequest, SealedGenerationService, WithheldImage
from genseal.settings import Settings
from safety import Stage
from tests.api.jobs._jobs import finished

Labels = frozenset[tuple[str, str]]
SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()


def samples(metrics: Metrics) -> dict[tuple[str, Labels], float]:
    body, _ = metrics.render()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }


def value(metrics: Metrics, name: str, **labels: str) -> float:
    return samples(metrics).get((name, frozenset(labels.items())), 0.0)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> SealedGenerationService:
    home: Path = tmp_path_factory.mktemp("rules-home")
    return SealedGenerationService(Settings(home=home, policy_reload_seconds=0))


def test_rule_matches_count_each_decision_and_which_rule_decided(
    service: SealedGenerationService,
) -> None:
    metrics = Metrics()
    blocked = service.generate(GenerationRequest(prompt="hardcore porn", size=(256, 256)))
    rule = blocked.decision.rule
    assert blocked.status == "blocked" and rule is not None
    metrics.observe_generation(blocked, "generations")
    # Two outputs, each decided by that rule over another one that matched too.
    outranking = blocked.decision.model_copy(
        update={"stage": Stage.OUTPUT, "matched_rules": [rule, "review-people"]}
    )
    withheld = [WithheldImage(index=i, findings=[], decision=outranking) for i in (0, 1)]
    metrics.observe_generation(blocked.model_copy(update={"withheld": withheld}), "edits")
    metrics.observe_screen(service.screen(prompt="hardcore porn"))
    metrics.observe_screen(service.screen(prompt="a red fox in the snow"))  # no rule matched

    matches = "genseal_policy_rule_matches_total"
    prompt = {"stage": "prompt", "rule": rule, "deciding": "true"}
    assert value(metrics, matches, operation="generations", **prompt) == 1
    assert value(metrics, matches, operation="screen", **prompt) == 1
    edits = {"operation": "edits", "stage": "output"}
    assert value(metrics, matches, **edits, rule=rule, deciding="true") == 2
    assert value(metrics, matches, **edits, rule="review-people", deciding="false") == 2
    counted = sum(v for (name, _), v in samples(metrics).items() if name == matches)
    assert counted == 6


@contextmanager
def receiver(answers: list[int]) -> Iterator[str]:
    """A webhook endpoint on loopback answering ``answers`` in turn; yields its URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["content-length"]))
            self.send_response(answers.pop(0))
            self.end_headers()

        def log_message(self, *_: Any) -> None:
            pass

    http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{http.server_address[1]}/hooks/genseal"
    finally:
        http.shutdown()
        http.server_close()


def test_webhook_attempts_by_outcome_and_the_lag_from_the_jobs_end(tmp_path: Path) -> None:
    jobs = JobStore(f"sqlite:///{tmp_path / 'genseal.db'}")
    metrics = Metrics()
    with receiver([500, 204, 500, 500]) as url:
        dispatcher = WebhookDispatcher(
            jobs,
            lambda _tenant: SECRET,
            allow_private=True,
            ports=(),
            max_attempts=2,
            retry_seconds=0.05,
            observe=metrics.observe_webhook,
        )
        try:
            finished(jobs, url)
            time.sleep(0.3)  # the job ended a while before its webhook lands
            assert dispatcher.deliver_due() == 1  # 500: tried again later
            time.sleep(0.1)  # past the retry's back-off (0.05 s, ±20 %)
            assert dispatcher.deliver_due() == 1  # 204
            finished(jobs, url)
            assert dispatcher.deliver_due() == 1  # 500
            time.sleep(0.1)
            assert dispatcher.deliver_due() == 1  # 500 again, and no attempt left
        finally:
            dispatcher.stop()
            jobs.close()

    deliveries = "genseal_webhook_deliveries_total"
    assert value(metrics, deliveries, outcome="retrying") == 2
    assert value(metrics, deliveries, outcome="delivered") == 1
    assert value(metrics, deliveries, outcome="failed") == 1
    lag = "genseal_webhook_delivery_lag_seconds"
    assert value(metrics, f"{lag}_count") == 1, "only deliveries have a lag"
    assert 0.35 <= value(metrics, f"{lag}_sum") < 30
    assert value(metrics, f"{lag}_bucket", le="0.25") == 0
    assert value(metrics, f"{lag}_bucket", le="+Inf") == 1
