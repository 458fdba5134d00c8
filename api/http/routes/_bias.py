"""``/v1/bias/summary``: perceived attributes of a tenant's released images, and drift."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.http._deps import CallerDep, ComponentsDep
from api.http._errors import ERRORS
from api.http._schema import ErrorResponse
from genseal.errors import InputError, NotFoundError
from safety import BiasSummary

__all__ = ["router"]

router = APIRouter(tags=["safety"])


@router.get(
    "/v1/bias/summary",
    response_model=BiasSummary,
    responses={
        **ERRORS,
        404: {
            "model": ErrorResponse,
            "description": "Bias monitoring is off for the tenant: an operator turns it on "
            "with `genseal bias-monitor enable TENANT`.",
        },
    },
    summary="Perceived attributes of the tenant's released images, and drift from a baseline",
    description="For a tenant an operator opted in (`genseal bias-monitor enable TENANT`), "
    "the subject (largest face) of every released image is counted per UTC day by perceived "
    "gender, age band, Monk skin tone (`monk`) and ITA skin-tone class (`ita`); images "
    "without a face count as `no_face`. Only these counts are kept: no face, box or pixel. "
    "They are a model's perception of appearance, not anyone's identity.\n\n"
    "With a baseline (`GENSEAL_BIAS_BASELINE`, the results.json of `genseal probe bias`), "
    "each attribute's `drift` gives the total variation distance (`tvd`) of the window's "
    "proportions from the baseline's and a chi-square goodness-of-fit `p_value`; `flagged` "
    "when tvd ≥ `drift_tvd` (GENSEAL_BIAS_DRIFT_TVD, 0.1), p < 0.01 and at least "
    "`min_images` (GENSEAL_BIAS_MIN_IMAGES, 30) measured. A tenant that has not opted in "
    "gets 404 with error code `not_found`.",
)
def bias_summary(
    who: CallerDep,
    parts: ComponentsDep,
    days: Annotated[
        int, Query(ge=1, le=366, description="The last N UTC days, today included.")
    ] = 30,
    tenant: Annotated[
        str | None,
        Query(
            max_length=63,
            description="Only when authentication is off: whose summary (omitted: requests "
            "made without a tenant). With an API key, the key names the tenant.",
        ),
    ] = None,
) -> BiasSummary:
    if who.tenant is not None and tenant not in (None, who.tenant):
        raise InputError(
            "tenant is accepted only when authentication is off: the API key names the tenant"
        )
    name = who.tenant if who.tenant is not None else tenant
    monitor = parts.service.bias_monitor
    if not monitor.enabled(name):
        whose = f"tenant {name!r}" if name else "requests without a tenant"
        raise NotFoundError(
            f"bias monitoring is off for {whose}",
            hint=f"an operator turns it on with `genseal bias-monitor enable {name or '-'}`",
        )
    return monitor.summary(name, days, parts.bias_baseline())
