"""The HTTP API's routers, one per resource, in the order the OpenAPI document lists them."""

from fastapi import APIRouter

from api.http.routes._bias import router as bias
from api.http.routes._files import router as files
from api.http.routes._images import router as images
from api.http.routes._jobs import router as jobs
from api.http.routes._policy import router as policy
from api.http.routes._provenance import router as provenance
from api.http.routes._reviews import router as reviews
from api.http.routes._service import router as service

ROUTERS: tuple[APIRouter, ...] = (
    images,
    files,
    jobs,
    provenance,
    policy,
    reviews,
    bias,
    service,
)

__all__ = ["ROUTERS"]
