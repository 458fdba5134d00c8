"""The review queue in the database: held once per image, decided once, readable from any
process, and reviews an earlier version kept as files imported without loss."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from gen import ReviewStore
from genseal.errors import InputError, NotFoundError
from safety import Action, Decision


def _record(request_id: str = "job_1", index: int = 0) -> dict[str, Any]:
    return {
        "request_id": request_id,
        "tenant": "acme",
        "index": index,
        "seed": 7,
        "model_id": "tiny",
        "output_format": "png",
        "findings": [],
        "decision": Decision(
            action=Action.REVIEW,
            stage="output",
            rule="review-outputs",
            policy_id="test",
            policy_version="1",
            policy_sha256="0" * 64,
        ),
    }


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'genseal.db'}"
    return str(request.getfixturevalue("pg_url"))


def test_an_image_held_again_by_a_retried_job_is_the_same_review(url: str) -> None:
    store = ReviewStore(url)
    first = store.add(_record(), b"pixels", b"input")
    again = store.add(_record(), b"other pixels")
    assert again.id == first.id
    assert store.candidate(first.id) == b"pixels" and store.ingredient(first.id) == b"input"
    other = store.add(_record(index=1), b"pixels 2")
    assert other.id != first.id
    assert [r.id for r in store.list(tenant="acme")] == [first.id, other.id]
    assert store.list(tenant="globex") == []


def test_a_review_is_decided_once_even_by_concurrent_reviewers(url: str) -> None:
    store = ReviewStore(url)
    review = store.add(_record(), b"pixels")
    outcomes: list[str] = []

    def decide(reviewer: str) -> None:
        try:
            ReviewStore(url).decide(
                review.id, "approved", reviewer=reviewer, note=None, sealed=b"s"
            )
            outcomes.append("decided")
        except InputError as exc:
            outcomes.append(str(exc))

    threads = [threading.Thread(target=decide, args=(f"r{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes.count("decided") == 1
    assert all("already approved" in o for o in outcomes if o != "decided")
    decided = store.get(review.id)
    assert decided.status == "approved" and store.sealed(review.id) == b"s"
    with pytest.raises(NotFoundError):
        store.candidate(review.id)  # the unsealed pixels are gone with the decision


def test_reviews_kept_as_files_are_imported_once(tmp_path: Path) -> None:
    directory = tmp_path / "home" / "reviews"
    directory.mkdir(parents=True)
    record = {**_record(), "id": "a1b2", "created_at": datetime.now(UTC).isoformat()}
    record["decision"] = record["decision"].model_dump(mode="json")
    (directory / "a1b2.json").write_text(json.dumps(record))
    (directory / "a1b2.png").write_bytes(b"held pixels")
    (directory / "broken.json").write_text("{")
    store = ReviewStore(f"sqlite:///{tmp_path / 'genseal.db'}")
    assert store.import_directory(directory) == 1
    assert store.candidate("a1b2") == b"held pixels"
    assert store.get("a1b2").status == "pending"
    assert not directory.exists() and (tmp_path / "home" / "reviews.imported").is_dir()
    assert store.import_directory(directory) == 0
    with pytest.raises(NotFoundError):
        store.get("../etc")
