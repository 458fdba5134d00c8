"""The shared path of the image endpoints (generations, edits, seal): run a request inline, or
keep it as a job for the queue, and answer as the caller asked — at once (202 and the job),
with the result, or, for a retried ``Idempotency-Key``, with the first answer again.

Plain Python, no server: ``Submission.submit`` returns an ``Answer`` the routes turn into a
response, so the logic is tested as it is.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool

from api.jobs import JobKind, JobQueue, JobStore, Operations, Reply, validate_webhook_url
from genseal.errors import ConflictError, InputError, QueueError
from genseal.settings import Settings

__all__ = ["Answer", "Delivery", "Submission"]


@dataclass(frozen=True)
class Delivery:
    """How the caller wants the answer to one request."""

    tenant: str | None
    base_url: str
    asynchronous: bool = False
    idempotency_key: str | None = None
    webhook: str | None = None

    def with_job_options(self, *, run_async: bool, webhook: str | None) -> Delivery:
        """With the body's ``async`` and ``webhook`` (``async=true`` makes it a job, as the
        ``Prefer: respond-async`` header does)."""
        return replace(self, asynchronous=self.asynchronous or run_async, webhook=webhook)


@dataclass(frozen=True)
class Answer:
    """An HTTP answer: status, JSON body and headers."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


class Submission:
    """Runs or queues image requests; one per app."""

    def __init__(
        self, settings: Settings, jobs: JobStore, runner: JobQueue, operations: Operations
    ) -> None:
        self._settings = settings
        self._jobs = jobs
        self._runner = runner
        self._operations = operations

    async def submit(
        self, kind: JobKind, fields: dict[str, Any], image: bytes | None, delivery: Delivery
    ) -> Answer:
        jobs, runner = self._jobs, self._runner
        if kind != "seal":
            _check_served_model(fields.get("model"), self._settings.model_dirs)
        if delivery.webhook is not None:
            if not delivery.asynchronous:
                raise InputError(
                    "webhook needs async mode: send 'Prefer: respond-async' (or async=true)"
                )
            validate_webhook_url(
                delivery.webhook,
                allow_private=self._settings.webhook_allow_private,
                ports=self._settings.webhook_ports,
            )
        if runner.inline and not delivery.asynchronous and delivery.idempotency_key is None:
            reply = await run_in_threadpool(
                lambda: self._operations.run(
                    kind, fields, image, tenant=delivery.tenant, base_url=delivery.base_url
                )
            )
            return Answer(reply.status, reply.body)

        model = None if kind == "seal" else (fields.get("model") or self._settings.model)
        # Before anything is stored: a job no worker could run is refused, not queued.
        await run_in_threadpool(runner.check_model, model)
        worker = runner.worker_name("http") if runner.inline and not delivery.asynchronous else None
        job_id, created = await run_in_threadpool(
            lambda: jobs.submit(
                kind=kind,
                tenant=delivery.tenant,
                request=fields,
                input_blob=image,
                request_sha256=request_digest(kind, fields, image, delivery),
                base_url=delivery.base_url,
                asynchronous=delivery.asynchronous,
                idempotency_key=delivery.idempotency_key,
                webhook_url=delivery.webhook,
                worker=worker,
            )
        )
        if created and worker is None:
            try:
                await run_in_threadpool(runner.dispatch, job_id, model)
            except QueueError:
                # Never accepted: remove the row, so a retry with the same key starts afresh.
                await run_in_threadpool(jobs.discard, job_id)
                raise
        replayed = {} if created else {"Idempotent-Replayed": "true"}
        if delivery.asynchronous:
            headers = {"Location": f"/v1/jobs/{job_id}", "Preference-Applied": "respond-async"}
            return Answer(202, self._job_body(job_id, delivery), {**headers, **replayed})
        if created and worker is not None:
            reply = await run_in_threadpool(runner.run_inline, job_id, worker)
            return Answer(reply.status, reply.body)
        if created or not runner.inline:
            # A worker elsewhere runs it: wait for the answer it stores.
            stored = await self._wait_for_reply(job_id, self._settings.sync_timeout_seconds)
            if stored is None:
                headers = {"Location": f"/v1/jobs/{job_id}"}
                return Answer(202, self._job_body(job_id, delivery), headers)
            return Answer(stored.status, stored.body, replayed)
        stored = jobs.reply(job_id)
        if stored is None:
            raise ConflictError(
                "a request with this Idempotency-Key is still being processed; retry later"
            )
        return Answer(stored.status, stored.body, replayed)

    def _job_body(self, job_id: str, delivery: Delivery) -> dict[str, Any]:
        body: dict[str, Any] = self._jobs.get(job_id, delivery.tenant).model_dump(mode="json")
        return body

    async def _wait_for_reply(self, job_id: str, timeout: float) -> Reply | None:
        """The stored answer of a job a worker runs; None past ``timeout``. Woken by the
        queue's "finished" notice, with a read every second besides (a notice can be missed)."""
        deadline = time.monotonic() + timeout
        while True:
            stored = await run_in_threadpool(self._jobs.reply, job_id)
            left = deadline - time.monotonic()
            if stored is not None or left <= 0:
                return stored
            await self._runner.finished(job_id, min(left, 1.0))


def request_digest(
    kind: str, fields: dict[str, Any], image: bytes | None, delivery: Delivery
) -> str:
    """What an Idempotency-Key is bound to: the request as asked, image by its digest."""
    canonical = json.dumps(
        {
            "kind": kind,
            "fields": fields,
            "image": hashlib.sha256(image).hexdigest() if image is not None else None,
            "async": delivery.asynchronous,
            "webhook": delivery.webhook,
        },
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _check_served_model(spec: object, model_dirs: Sequence[Path]) -> None:
    """InputError for a local path outside ``model_dirs``; the same answer whether the path
    exists or not, so the API cannot be used to probe the server's file system."""
    if not isinstance(spec, str) or not spec.strip():
        return
    spec = spec.strip()
    candidate = Path(spec).expanduser()
    local = (
        spec.startswith(("/", ".", "~")) or "\\" in spec or spec.count("/") > 1
    ) or candidate.exists()
    if not local:
        return  # tiny or a Hugging Face id
    resolved = candidate.resolve()
    for root in model_dirs:
        base = root.expanduser().resolve()
        if resolved != base and resolved.is_relative_to(base):
            return
    raise InputError(
        f"unknown model {spec!r}",
        hint="the API serves tiny, Hugging Face ids and directories under GENSEAL_MODEL_DIRS",
    )
