"""``/healthz``: the service is up, and which genseal, model and policy it runs.
(``/readyz`` and ``/metrics`` come with the observability parts, ``api.http._health``.)"""

from __future__ import annotations

from fastapi import APIRouter

import genseal
from api.http._deps import ComponentsDep
from api.http._schema import Health

__all__ = ["router"]

router = APIRouter(tags=["service"])


@router.get(
    "/healthz",
    response_model=Health,
    summary="Liveness: the genseal version, the model and the active policy with its hashes",
)
def healthz(parts: ComponentsDep) -> Health:
    # One snapshot: a hot reload between two reads could pair a base with another set's hash.
    policies = parts.service.policies
    policy = policies.base
    return Health(
        status="ok",
        version=genseal.__version__,
        model=parts.settings.model,
        policy=f"{policy.id}@{policy.version}",
        policy_sha256=policy.sha256,
        policy_set_sha256=policies.sha256,
    )
