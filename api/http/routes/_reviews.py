"""``/v1/reviews``: the images a policy held for a human, and their approval or rejection."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from fastapi.responses import Response

from api.http._auth import Caller
from api.http._deps import CallerDep, Components, ComponentsDep, WorkingCallerDep, in_thread
from api.http._errors import ERRORS, NOT_FOUND
from api.http._schema import ErrorResponse, ReviewDecisionBody, ReviewList
from gen import ReviewRecord
from genseal.errors import NotFoundError

__all__ = ["router"]

router = APIRouter(tags=["reviews"])


def _own_review(parts: Components, review_id: str, who: Caller) -> ReviewRecord:
    review = parts.service.reviews.get(review_id)
    if who.tenant is not None and review.tenant != who.tenant:
        raise NotFoundError(f"no review {review_id}")  # another tenant's: not even its id
    return review


@router.get(
    "/v1/reviews",
    response_model=ReviewList,
    responses=ERRORS,
    summary="The review queue: images held for a human (pending by default)",
)
def list_reviews(
    who: CallerDep,
    parts: ComponentsDep,
    status: Literal["pending", "approved", "rejected", "all"] = "pending",
) -> ReviewList:
    wanted = None if status == "all" else status
    return ReviewList(data=parts.service.reviews.list(status=wanted, tenant=who.tenant))


@router.get("/v1/reviews/{review_id}", response_model=ReviewRecord, responses=NOT_FOUND)
def get_review(review_id: str, who: CallerDep, parts: ComponentsDep) -> ReviewRecord:
    return _own_review(parts, review_id, who)


@router.post(
    "/v1/reviews/{review_id}",
    response_model=ReviewRecord,
    responses=NOT_FOUND,
    summary="Approve (seal and release) or reject a held image",
)
async def decide_review(
    review_id: str, body: ReviewDecisionBody, who: WorkingCallerDep, parts: ComponentsDep
) -> ReviewRecord:
    _own_review(parts, review_id, who)
    service = parts.service
    if body.decision == "approve":
        record, _ = await in_thread(
            lambda: service.approve_review(review_id, reviewer=body.reviewer, note=body.note)
        )
        return record
    return await in_thread(
        lambda: service.reject_review(review_id, reviewer=body.reviewer, note=body.note)
    )


@router.get(
    "/v1/reviews/{review_id}/image",
    responses={200: {"content": {"image/png": {}}}, 404: {"model": ErrorResponse}},
    response_class=Response,
    summary="The sealed image of an approved review",
)
def get_review_image(review_id: str, who: CallerDep, parts: ComponentsDep) -> Response:
    review = _own_review(parts, review_id, who)
    if review.status != "approved":
        raise NotFoundError(f"review {review_id} is {review.status}: no released image")
    return Response(content=parts.service.reviews.sealed(review_id), media_type=review.mime)
