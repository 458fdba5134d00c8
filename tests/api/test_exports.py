"""Each of `api`'s sub-packages exports, in order, exactly the public names it defines."""

from __future__ import annotations

import types

import pytest

import api.cli
import api.http
import api.http.routes
import api.jobs
import api.tenants
from tests._exports import exports_problems

PACKAGES = [api.cli, api.http, api.http.routes, api.jobs, api.tenants]


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.__name__)
def test_all_names_exactly_the_public_members_in_order(package: types.ModuleType) -> None:
    assert exports_problems(package) == []


def test_the_celery_parts_load_only_when_asked_for() -> None:
    assert api.jobs.WorkerRegistry.__name__ == "WorkerRegistry"
    with pytest.raises(AttributeError, match="no attribute 'Nothing'"):
        _ = api.jobs.Nothing  # type: ignore[attr-defined]
