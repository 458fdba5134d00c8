"""The HTTP API's routers, one per resource, in the order the OpenAPI document lists them."""

from fastapi import APIRouter as _APIRouter

from api.http.routes import (
    _bias,
    _files,
    _images,
    _jobs,
    _policy,
    _provenance,
    _reviews,
    _service,
)

ROUTERS: tuple[_APIRouter, ...] = tuple(
    module.router
    for module in (_images, _files, _jobs, _provenance, _policy, _reviews, _bias, _service)
)

__all__ = ["ROUTERS"]
