"""``/v1/files/{id}``: a sealed image by its signed URL (``response_format=url``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from api.http._deps import ComponentsDep
from api.http._schema import ErrorResponse

__all__ = ["router"]

router = APIRouter(tags=["images"])


@router.get(
    "/v1/files/{image_id}",
    responses={200: {"content": {"image/png": {}}}, 404: {"model": ErrorResponse}},
    response_class=Response,
    summary="A sealed image by its signed URL (response_format=url); no key needed",
)
def get_file(
    image_id: str,
    parts: ComponentsDep,
    expires: Annotated[int, Query()],
    signature: Annotated[str, Query(max_length=128)],
) -> Response:
    data, mime = parts.files.open(image_id, expires, signature)
    return Response(content=data, media_type=mime, headers={"Cache-Control": "private"})
