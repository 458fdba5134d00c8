"""The job table as several processes share it at scale: claims, leases and the webhook
outbox, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from api.jobs._model import Reply
from api.jobs._store import JobStore
from tests.api.jobs._jobs import submitted


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'genseal.db'}"
    return str(request.getfixturevalue("pg_url"))


def test_of_many_deliveries_of_one_job_one_claims_it(url: str) -> None:
    stores = [JobStore(url, lease_seconds=30) for _ in range(4)]
    job_id = submitted(stores[0])
    won: list[str] = []
    barrier = threading.Barrier(len(stores))

    def deliver(store: JobStore, name: str) -> None:
        barrier.wait()
        if store.claim_id(job_id, name) is not None:
            won.append(name)

    threads = [threading.Thread(target=deliver, args=(s, f"w{i}")) for i, s in enumerate(stores)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(won) == 1
    assert stores[0].lease_left(job_id) is not None
    assert stores[1].finish(job_id, won[0], Reply(200, {"data": []}))
    assert all(s.claim_id(job_id, "late") is None for s in stores)  # done: a no-op
    assert stores[0].lease_left(job_id) is None


def test_a_job_whose_lease_ran_out_is_taken_over_then_failed_after_max_attempts(
    url: str,
) -> None:
    jobs = JobStore(url, lease_seconds=0.2, max_attempts=2)
    job_id = submitted(jobs)
    assert jobs.claim_id(job_id, "a") is not None
    assert jobs.claim_id(job_id, "b") is None  # a's lease is live
    time.sleep(0.3)
    taken = jobs.claim_id(job_id, "b")
    assert taken is not None and taken.attempts == 2
    assert not jobs.heartbeat(job_id, "a", "generating", 0.5)  # a learns it lost the job
    assert not jobs.finish(job_id, "a", Reply(200, {}))  # and cannot store an answer
    time.sleep(0.3)
    assert jobs.claim_id(job_id, "c") is None  # b died too: two attempts were the limit
    job = jobs.get(job_id, "acme")
    assert job.status == "failed" and job.error is not None
    assert job.error["code"] == "job_interrupted"


def test_a_job_put_back_after_a_database_error_runs_again(url: str) -> None:
    jobs = JobStore(url)
    job_id = submitted(jobs)
    assert jobs.claim_id(job_id, "a") is not None
    assert jobs.release(job_id, "a")
    again = jobs.claim_id(job_id, "b")
    assert again is not None and again.attempts == 2


def test_a_job_never_handed_on_can_be_discarded_and_nothing_else(url: str) -> None:
    jobs = JobStore(url)
    kept, dropped = submitted(jobs), submitted(jobs)
    assert jobs.claim_id(kept, "a") is not None
    jobs.discard(kept)  # claimed: not discarded
    jobs.discard(dropped)
    assert jobs.get(kept, "acme").status == "running"
    with pytest.raises(Exception, match="no job"):
        jobs.get(dropped, "acme")


def test_replicas_polling_the_webhook_outbox_never_take_the_same_delivery(url: str) -> None:
    stores = [JobStore(url) for _ in range(3)]
    job_id = submitted(stores[0], webhook="https://hooks.example/genseal")
    assert stores[0].claim_id(job_id, "w") is not None
    assert stores[0].finish(job_id, "w", Reply(200, {"data": []}))
    taken: list[str] = []
    barrier = threading.Barrier(len(stores))

    def poll(store: JobStore) -> None:
        barrier.wait()
        taken.extend(w.job_id for w in store.due_webhooks(10, claim_seconds=0.3))

    threads = [threading.Thread(target=poll, args=(s,)) for s in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert taken == [job_id]
    assert stores[1].due_webhooks(10) == []  # claimed
    time.sleep(0.4)  # the claim ran out (its replica died mid-delivery): due again
    assert [w.job_id for w in stores[2].due_webhooks(10)] == [job_id]
