"""Jobs as the tests need them: submitted, or already finished with a webhook owed."""

from __future__ import annotations

from api.jobs._model import Reply
from api.jobs._store import JobStore


def submitted(jobs: JobStore, *, tenant: str | None = "acme", webhook: str | None = None) -> str:
    """A new async generation job; its id."""
    job_id, created = jobs.submit(
        kind="generations",
        tenant=tenant,
        request={"prompt": "a fox"},
        input_blob=None,
        request_sha256="0" * 64,
        base_url="http://testserver/",
        asynchronous=True,
        webhook_url=webhook,
    )
    assert created
    return job_id


def finished(jobs: JobStore, webhook: str, tenant: str | None = None) -> str:
    """A job that has run and succeeded, its webhook to ``webhook`` owed; its id."""
    job_id = submitted(jobs, tenant=tenant, webhook=webhook)
    assert jobs.claim_id(job_id, "w") is not None
    assert jobs.finish(job_id, "w", Reply(200, {"data": []}))
    return job_id
