"""The Grafana dashboard (deploy/grafana/genseal-dashboard.json) against the metrics the code
exports: a panel over a renamed metric or a dropped label fails here, not on a wall screen.

Every PromQL ``expr`` is parsed with promql-parser (Python bindings of the Rust
``promql-parser`` crate, a real PromQL parser compatible with Prometheus 2.45) once Grafana's
interval variables are replaced by a duration. Each metric an expression selects must be a
sample name the code serves: the API's registry (``Metrics``) or a worker's exposition
(``WorkerMetrics`` in multiprocess files, served as ``genseal worker`` serves it), each after
one observation of everything, so that labelled series exist. Sample names are those served,
with the suffixes prometheus-client adds (``_total``, ``_bucket``, ``_count``, ``_sum``);
``_created`` samples are refused: only a single-process registry serves them, so a panel over
them would be empty for workers. Every label in a matcher or in ``by``/``without``/``on``/
``ignoring`` must be on each metric selected beneath it; ``job`` and ``instance`` are added by
Prometheus when it scrapes.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import promql_parser
import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from api.http._metrics import Metrics
from api.jobs._metrics import WorkerMetrics, serve_worker_metrics
from gen import (
    GenerationRequest,
    GenerationResult,
    HeldImage,
    SealedGenerationService,
    WithheldImage,
)
from genseal.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "genseal-dashboard.json"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
# Labels Prometheus attaches to every series of a scrape target.
TARGET_LABELS = frozenset({"job", "instance"})
# Grafana's range variables, which PromQL cannot parse, and a duration to stand for each.
GRAFANA_RANGES = re.compile(r"\$\{?__(rate_interval|interval|range)\}?")

Exported = Mapping[str, frozenset[str]]


def _served(text: str) -> dict[str, frozenset[str]]:
    """Sample name -> its label names, from a text exposition."""
    served: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            served.setdefault(sample.name, set()).update(sample.labels)
    return {name: frozenset(labels) for name, labels in served.items()}


def _with_outputs(result: GenerationResult) -> GenerationResult:
    """A decided result with a withheld and a held output, so images series exist."""
    decision = result.decision
    return result.model_copy(
        update={
            "withheld": [WithheldImage(index=0, findings=[], decision=decision)],
            "held": [HeldImage(index=1, review_id="rev_1", findings=[], decision=decision)],
        }
    )


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Exported:
    """Every sample name the API's registry and a worker's exposition serve, with its labels."""
    home = tmp_path_factory.mktemp("dashboard-home")
    service = SealedGenerationService(Settings(home=home, policy_reload_seconds=0))
    blocked = service.generate(GenerationRequest(prompt="hardcore porn", size=(256, 256)))
    assert blocked.status == "blocked" and blocked.decision.rule is not None
    result = _with_outputs(blocked)

    api = Metrics()
    api.observe_generation(result, "generations")
    api.observe_screen(service.screen(prompt="hardcore porn"))
    api.observe_job("generations", "succeeded")
    api.observe_webhook("delivered", 0.5)
    api.observe_request("GET", "/v1/jobs/{job_id}", 200, 0.01)
    api.set_queue_depth(0)
    from_api = _served(generate_latest(api.registry).decode())

    directory = tmp_path_factory.mktemp("worker-metrics")
    with serve_worker_metrics(0, host="127.0.0.1", directory=directory) as url:
        worker = WorkerMetrics(signer_expiry=time.time() + 86400)
        worker.observe_generation(result, "generations")
        worker.observe_job("generations", "blocked")
        from_worker = _served(httpx.get(url, timeout=10).text)

    for name in from_api.keys() & from_worker.keys():
        assert from_api[name] == from_worker[name], f"{name}: labels differ by process kind"
    return {
        name: labels
        for name, labels in {**from_api, **from_worker}.items()
        if not name.endswith("_created")
    }


def _dashboard() -> dict[str, Any]:
    loaded = json.loads(DASHBOARD.read_text())
    assert isinstance(loaded, dict)
    return loaded


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every panel, those inside collapsed rows included."""
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def _expressions() -> list[tuple[str, str]]:
    return [
        (panel["title"], target["expr"])
        for panel in _panels(_dashboard()["panels"])
        for target in panel.get("targets", [])
    ]


def _selectors(node: promql_parser.Expr) -> list[promql_parser.VectorSelector]:
    found: list[promql_parser.VectorSelector] = []

    def visit(child: promql_parser.Expr) -> None:
        if isinstance(child, promql_parser.VectorSelector):
            found.append(child)

    promql_parser.walk(node, visit)
    return found


def problems(expr: str, exported: Exported) -> list[str]:
    """What in ``expr`` the code does not export: metric names, and labels on them."""
    tree = promql_parser.parse(GRAFANA_RANGES.sub("5m", expr))
    found: list[str] = []

    def labels_of(selector: promql_parser.VectorSelector) -> frozenset[str] | None:
        name = selector.name
        return None if name is None or name not in exported else exported[name] | TARGET_LABELS

    def require(labels: list[str], under: list[promql_parser.Expr], clause: str) -> None:
        for selector in (s for node in under for s in _selectors(node)):
            known = labels_of(selector)
            missing = [label for label in labels if known is not None and label not in known]
            if missing:
                found.append(f"{clause} {missing} is not a label of {selector.name}")

    def visit(node: promql_parser.Expr) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            if node.name is None:
                found.append("a selector without a metric name")
            elif node.name.endswith("_created"):
                found.append(f"{node.name}: _created series are served by the API only")
            elif node.name not in exported:
                found.append(f"{node.name} is not exported")
            else:
                matched = [m.name for m in node.matchers.matchers if m.name != "__name__"]
                require(matched, [node], "matcher")
        elif isinstance(node, promql_parser.AggregateExpr) and node.modifier is not None:
            require(node.modifier.labels, [node.expr], "by/without")
        elif isinstance(node, promql_parser.BinaryExpr) and node.modifier is not None:
            matching = node.modifier.matching
            if matching is not None:
                require(matching.labels, [node.lhs, node.rhs], "on/ignoring")

    promql_parser.walk(tree, visit)
    return found


def test_every_expression_selects_exported_metrics_and_labels(exported: Exported) -> None:
    expressions = _expressions()
    assert len(expressions) >= 15
    found = [
        f"{title}: {expr}: {problem}"
        for title, expr in expressions
        for problem in problems(expr, exported)
    ]
    assert found == [], "\n".join(found)


def test_the_check_finds_unknown_metrics_labels_and_created_series(exported: Exported) -> None:
    rate = "[$__rate_interval]"
    assert problems(f"sum by (kind, instance) (rate(genseal_jobs_total{rate}))", exported) == []
    assert problems("genseal_no_such_metric", exported) == [
        "genseal_no_such_metric is not exported"
    ]
    assert problems(f"sum by (tenant) (rate(genseal_jobs_total{rate}))", exported) == [
        "by/without ['tenant'] is not a label of genseal_jobs_total"
    ]
    assert problems('genseal_jobs_total{route="/v1/jobs"}', exported) == [
        "matcher ['route'] is not a label of genseal_jobs_total"
    ]
    stage_sum = "genseal_stage_duration_seconds_sum"
    quantile = f"histogram_quantile(0.9, sum by (le) (rate({stage_sum}{rate})))"
    assert problems(quantile, exported) == [f"by/without ['le'] is not a label of {stage_sum}"]
    assert problems("genseal_jobs_created", exported) == [
        "genseal_jobs_created: _created series are served by the API only"
    ]
    joined = "genseal_jobs_queued * on (stage) genseal_worker_processes"
    assert problems(joined, exported) == [
        "on/ignoring ['stage'] is not a label of genseal_jobs_queued",
        "on/ignoring ['stage'] is not a label of genseal_worker_processes",
    ]


def test_the_dashboard_covers_what_operators_watch() -> None:
    used = {
        selector.name
        for _, expr in _expressions()
        for selector in _selectors(promql_parser.parse(GRAFANA_RANGES.sub("5m", expr)))
    }
    assert {
        "genseal_http_request_duration_seconds_bucket",  # request latency per route
        "genseal_stage_duration_seconds_bucket",  # latency per stage
        "genseal_decisions_total",  # decisions per outcome
        "genseal_policy_rule_matches_total",  # ... and per policy rule
        "genseal_findings_total",  # findings per category
        "genseal_jobs_total",  # jobs by status
        "genseal_jobs_queued",  # queue depth
        "genseal_webhook_delivery_lag_seconds_bucket",  # webhook delivery lag
        "genseal_webhook_deliveries_total",  # ... and failures
        "genseal_signer_expiry_timestamp_seconds",  # days to the certificate's expiry
        "genseal_worker_processes",  # worker processes up
    } <= used
    quantiles = [expr for _, expr in _expressions() if "genseal_http_request_duration" in expr]
    for q in ("0.5", "0.9", "0.99"):
        assert any(f"histogram_quantile({q}," in expr for expr in quantiles), q


def test_the_dashboard_imports_into_grafana_10_on_a_prometheus_variable() -> None:
    dashboard = _dashboard()
    assert dashboard["schemaVersion"] >= 38  # Grafana 10
    assert dashboard["uid"] and dashboard["title"]
    [variable] = [v for v in dashboard["templating"]["list"] if v["name"] == "datasource"]
    assert (variable["type"], variable["query"]) == ("datasource", "prometheus")
    panels = list(_panels(dashboard["panels"]))
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids)), "panel ids are unique"
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == DATASOURCE, panel["title"]
        refs = [target["refId"] for target in panel["targets"]]
        assert refs and len(refs) == len(set(refs)), panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE, panel["title"]
