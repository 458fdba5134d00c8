"""The metrics of what the service decides and does, defined once for every process that does it.

The API (``api.http``: a registry per app, served at ``/metrics``) and the Celery workers
(``api.jobs``: files shared by the prefork processes, served by the worker's main process) both
screen, decide, generate and seal. Both count that with ``ServiceMetrics``, so each metric has
one name, help text, label set and bucket list wherever it comes from, and a dashboard adds the
API's and the workers' series up without knowing which process ran a request.

Gauges carry a multiprocess mode: how prometheus-client combines the values of several
processes that write the same gauge (ignored in a single process).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

from cryptography import x509
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from gen import GenerationResult
from provenance import SigningIdentity
from safety import Decision, Finding

__all__ = ["STAGE_BUCKETS", "ServiceMetrics", "signer_not_after"]

# Stages run from about a millisecond (prompt screening, a 2 ms signature) to most of a minute
# (a large image on CPU).
STAGE_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0,
)  # fmt: skip


class ServiceMetrics:
    """Stage times, decisions, matched policy rules, findings, images, finished jobs and the
    signing certificate's expiry, in ``registry`` (a new one when not given)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.stage_duration = Histogram(
            "genseal_stage_duration_seconds",
            "Time one request spent in a stage (screen_input, generate, screen_output, seal, "
            "screen), summed over the request's images.",
            ["stage"],
            buckets=STAGE_BUCKETS,
            registry=r,
        )
        self.decisions = Counter(
            "genseal_decisions",
            "Requests decided, by operation (generations, edits, seal) and outcome "
            "(released, held, blocked).",
            ["operation", "status"],
            registry=r,
        )
        self.policy_rule_matches = Counter(
            "genseal_policy_rule_matches",
            "Policy rules whose condition held, once per decision (each output image's, or the "
            "one that stopped a request at its prompt or input), by operation (generations, "
            "edits, seal, screen), the decision's stage, rule id, and whether the rule decided "
            "(deciding=true) or a rule ranking higher did.",
            ["operation", "stage", "rule", "deciding"],
            registry=r,
        )
        self.findings = Counter(
            "genseal_findings",
            "Safety findings, by harm category and state (flagged, clean, not_checked, error).",
            ["category", "state"],
            registry=r,
        )
        self.images = Counter(
            "genseal_images",
            "Output images, by outcome: released (sealed), withheld (blocked by policy), held "
            "(waiting for a reviewer).",
            ["outcome"],
            registry=r,
        )
        self.jobs = Counter(
            "genseal_jobs",
            "Queued jobs that reached a status, by kind.",
            ["kind", "status"],
            registry=r,
        )
        self.signer_expiry = Gauge(
            "genseal_signer_expiry_timestamp_seconds",
            "When the signing certificate expires (Unix time); NaN when it cannot be read. "
            "Without a time-stamp authority, signatures turn Invalid after it: alert ahead.",
            registry=r,
            # Across a worker's processes: the earliest expiry of those still running.
            multiprocess_mode="livemin",
        )

    def observe_generation(self, result: GenerationResult, operation: str) -> None:
        """Count one generation, edit or seal: its outcome, stage times, the policy rules that
        matched, findings and images."""
        for stage, ms in result.timings_ms.items():
            self.stage_duration.labels(stage).observe(ms / 1000)
        self.decisions.labels(operation, result.status).inc()
        self.count_rule_matches(operation, _decisions(result))
        self.count_findings(_distinct_findings(result))
        for outcome, count in (
            ("released", len(result.images)),
            ("withheld", len(result.withheld)),
            ("held", len(result.held)),
        ):
            if count:
                self.images.labels(outcome).inc(count)

    def observe_job(self, kind: str, status: str) -> None:
        self.jobs.labels(kind, status).inc()

    def count_rule_matches(self, operation: str, decisions: Iterable[Decision]) -> None:
        for decision in decisions:
            matched = list(decision.matched_rules)
            if decision.rule is not None and decision.rule not in matched:
                matched.append(decision.rule)
            for rule in matched:
                deciding = "true" if rule == decision.rule else "false"
                self.policy_rule_matches.labels(
                    operation, decision.stage.value, rule, deciding
                ).inc()

    def count_findings(self, findings: Iterable[Finding]) -> None:
        for finding in findings:
            self.findings.labels(finding.category.value, finding.state.value).inc()


def _decisions(result: GenerationResult) -> Sequence[Decision]:
    """Each output's decision; a request stopped before it had outputs has only its own."""
    decisions = [image.decision for image in result.images]
    decisions += [image.decision for image in result.withheld]
    decisions += [image.decision for image in result.held]
    return decisions or [result.decision]


def _distinct_findings(result: GenerationResult) -> list[Finding]:
    """Each finding once: a released image repeats the prompt and input findings it inherited."""
    seen: set[tuple[str, str, str, int | None]] = set()
    distinct: list[Finding] = []
    groups: list[list[Finding]] = [result.findings]
    groups += [image.findings for image in result.images]
    groups += [image.findings for image in result.withheld]
    groups += [image.findings for image in result.held]
    for group in groups:
        for finding in group:
            key = (finding.check, finding.category.value, finding.stage.value, finding.image_index)
            if key not in seen:
                seen.add(key)
                distinct.append(finding)
    return distinct


def signer_not_after(identity: SigningIdentity) -> dt.datetime | None:
    """When the signing (leaf) certificate expires (aware, UTC); None when it cannot be read."""
    try:
        return x509.load_pem_x509_certificates(identity.chain_pem)[0].not_valid_after_utc
    except (ValueError, IndexError):
        return None
