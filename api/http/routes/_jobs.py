"""``/v1/jobs``: the state, progress and result of requests run as jobs."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from api.http._deps import CallerDep, ComponentsDep
from api.http._errors import ERRORS, NOT_FOUND
from api.http._schema import JobList
from api.jobs import Job

__all__ = ["router"]

router = APIRouter(tags=["jobs"])


@router.get(
    "/v1/jobs/{job_id}",
    response_model=Job,
    responses=NOT_FOUND,
    summary="A job's state, progress and, once finished, its result",
)
def get_job(job_id: str, who: CallerDep, parts: ComponentsDep) -> Job:
    return parts.jobs.get(job_id, who.tenant)


@router.get(
    "/v1/jobs",
    response_model=JobList,
    responses=ERRORS,
    summary="The caller's recent jobs, newest first",
)
def list_jobs(
    who: CallerDep,
    parts: ComponentsDep,
    status: Literal["queued", "running", "succeeded", "blocked", "failed"] | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> JobList:
    return JobList(data=parts.jobs.recent(who.tenant, limit=limit, status=status))
