"""The image endpoints' shared path, driven as a class: no server, real job store and queue."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from api._files import ImageFiles
from api.http._submission import Delivery, Submission
from api.jobs import JobStore, Operations, make_queue
from gen import SealedGenerationService
from genseal.errors import ConflictError, InputError
from genseal.settings import Settings

FIELDS = {"prompt": "a red fox", "size": "256x256", "steps": 2, "seed": 1}


@pytest.fixture
def submission(tmp_path: Path) -> Iterator[tuple[Submission, JobStore]]:
    settings = Settings(home=tmp_path / "home")
    service = SealedGenerationService(settings)
    database = service.parts.database
    jobs = JobStore(database)
    operations = Operations(service, ImageFiles(database, b"k" * 32, 60))
    # The queue is never started: a queued job stays queued, so nothing is generated here.
    yield Submission(settings, jobs, make_queue(settings, jobs, operations), operations), jobs
    service.close()


def asked(**options: object) -> Delivery:
    return Delivery(tenant="acme", base_url="http://test/", **options)  # type: ignore[arg-type]


def test_async_answers_202_with_the_queued_job(submission: tuple[Submission, JobStore]) -> None:
    submit, jobs = submission
    answer = asyncio.run(submit.submit("generations", FIELDS, None, asked(asynchronous=True)))
    assert answer.status == 202
    assert answer.headers["Location"] == f"/v1/jobs/{answer.body['id']}"
    assert answer.headers["Preference-Applied"] == "respond-async"
    assert "Idempotent-Replayed" not in answer.headers
    assert jobs.get(answer.body["id"], "acme").status == "queued"


def test_a_retried_key_replays_the_job_and_another_body_is_refused(
    submission: tuple[Submission, JobStore],
) -> None:
    submit, jobs = submission
    delivery = asked(asynchronous=True, idempotency_key="k-1")
    first = asyncio.run(submit.submit("generations", FIELDS, None, delivery))
    again = asyncio.run(submit.submit("generations", FIELDS, None, delivery))
    assert again.body["id"] == first.body["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert len(jobs.recent("acme", limit=10)) == 1
    other = {**FIELDS, "prompt": "a grey wolf"}
    with pytest.raises(ConflictError):
        asyncio.run(submit.submit("generations", other, None, delivery))


def test_a_webhook_needs_async_mode_and_an_acceptable_url(
    submission: tuple[Submission, JobStore],
) -> None:
    submit, jobs = submission
    with pytest.raises(InputError, match="respond-async"):
        asyncio.run(submit.submit("generations", FIELDS, None, asked(webhook="https://x.test/h")))
    with pytest.raises(InputError):
        delivery = asked(asynchronous=True, webhook="http://127.0.0.1:9/hook")
        asyncio.run(submit.submit("generations", FIELDS, None, delivery))
    assert jobs.recent("acme", limit=10) == [], "nothing refused was kept"


def test_body_options_join_the_header_ones() -> None:
    delivery = asked(idempotency_key="k").with_job_options(run_async=True, webhook=None)
    assert delivery.asynchronous and delivery.idempotency_key == "k"
    assert not asked().with_job_options(run_async=False, webhook=None).asynchronous


@pytest.mark.parametrize("model", ["/etc", "/no/such/directory", "../..", "~"])
def test_a_local_path_outside_the_model_dirs_gets_one_answer_whether_it_exists_or_not(
    submission: tuple[Submission, JobStore], model: str
) -> None:
    submit, jobs = submission
    with pytest.raises(InputError) as refused:
        asyncio.run(
            submit.submit("generations", {**FIELDS, "model": model}, None, asked(asynchronous=True))
        )
    assert refused.value.message == f"unknown model {model!r}"
    assert jobs.recent("acme", limit=10) == []


def test_a_directory_under_the_model_dirs_is_accepted(tmp_path: Path) -> None:
    models = tmp_path / "models"
    (models / "mine").mkdir(parents=True)
    settings = Settings(home=tmp_path / "home", model_dirs=[models])
    service = SealedGenerationService(settings)
    try:
        jobs = JobStore(service.parts.database)
        operations = Operations(service, ImageFiles(service.parts.database, b"k" * 32, 60))
        submit = Submission(settings, jobs, make_queue(settings, jobs, operations), operations)
        fields = {**FIELDS, "model": str(models / "mine")}
        answer = asyncio.run(submit.submit("generations", fields, None, asked(asynchronous=True)))
        assert answer.status == 202  # queued: loading it is the worker's business
        with pytest.raises(InputError, match="unknown model"):
            asyncio.run(
                submit.submit(
                    "generations", {**FIELDS, "model": str(models)}, None, asked(asynchronous=True)
                )
            )
    finally:
        service.close()
