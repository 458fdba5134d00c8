"""``/v1/verify`` (auditors, no key), ``/v1/manifests/{id}`` and ``/v1/audit``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Query, Request, UploadFile
from fastapi.responses import Response

from api.http._deps import CallerDep, ComponentsDep, in_thread
from api.http._errors import ERRORS
from api.http._schema import AuditList, ErrorResponse
from genseal.errors import NotFoundError
from provenance import ProvenanceReport

__all__ = ["router"]

router = APIRouter(tags=["provenance"])


@router.post(
    "/v1/verify",
    response_model=ProvenanceReport,
    responses=ERRORS,
    summary="Provenance report of an image: C2PA, watermark, recovered manifest",
    description="No API key needed; rate-limited per client address. With `manifest` (a "
    "`.c2pa` sidecar, as `GET /v1/manifests/{id}` serves it) the file is validated against "
    "that manifest store instead of any embedded one; `c2pa.source` says which was used. "
    "When the manifest is gone (stripped, re-encoded, resized, cropped), `recovery` names "
    "the sealed manifest found by watermark and perceptual fingerprint together: every "
    "watermark backend is read, a crop is re-read at the scales it may have been cut to, "
    "and a watermark id is never enough on its own (`recovery.evidence` lists what "
    "matched, `pixels_altered` whether the pixels changed since signing).",
)
async def verify(
    request: Request,
    parts: ComponentsDep,
    file: Annotated[UploadFile, File(description="The image to verify.")],
    manifest: Annotated[
        UploadFile | None, File(description="Optional .c2pa sidecar manifest store.")
    ] = None,
) -> ProvenanceReport:
    parts.gatekeeper.limit_address(request.client.host if request.client else "unknown")
    data = await parts.read_upload(file, "file")
    sidecar = await parts.read_upload(manifest, "manifest") if manifest is not None else None
    verifier = parts.service.verifier()
    report = await in_thread(verifier.verify, data, file.filename or "upload", sidecar)
    parts.metrics.observe_verify(report)
    return report


@router.get(
    "/v1/manifests/{manifest_id}",
    responses={200: {"content": {"application/c2pa": {}}}, 404: {"model": ErrorResponse}},
    response_class=Response,
    summary="The C2PA manifest store of a sealed image (a .c2pa sidecar)",
)
def get_manifest(manifest_id: str, who: CallerDep, parts: ComponentsDep) -> Response:
    record = parts.service.store.get(manifest_id)
    if record is None or (who.tenant is not None and record.tenant != who.tenant):
        raise NotFoundError(f"no manifest {manifest_id}")
    return Response(
        content=record.manifest_store,
        media_type="application/c2pa",
        headers={"Content-Disposition": f'attachment; filename="{manifest_id}.c2pa"'},
    )


@router.get(
    "/v1/audit",
    response_model=AuditList,
    responses=ERRORS,
    summary="The caller's audit entries (hash-chained decisions), newest first",
)
def list_audit(
    who: CallerDep,
    parts: ComponentsDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    before: Annotated[int | None, Query(ge=1, description="Entries older than seq.")] = None,
) -> AuditList:
    entries = parts.service.store.audit_entries(limit=limit, tenant=who.tenant, before_seq=before)
    return AuditList(data=entries, next_before=entries[-1].seq if len(entries) == limit else None)
