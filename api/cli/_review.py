"""``genseal review``: the queue of images held for human review."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, get_args

import typer

from genseal.errors import InputError

if TYPE_CHECKING:
    pass


from api.cli._help import Choices, GensealTyper
from api.cli._support import (
    JsonOption,
    TenantOption,
    _dump,
    _errors,
    _service,
    _settings,
    _write_images,
    out,
)


def _review_statuses() -> tuple[str, ...]:
    from gen import ReviewRecord

    return (*get_args(ReviewRecord.model_fields["status"].annotation), "all")


REVIEW_STATUS = Choices("STATUS", _review_statuses)

review_app = GensealTyper(
    help="Images held for human review: list, approve, reject.", no_args_is_help=True
)


@review_app.command("list")
def review_list(
    status: Annotated[
        str, typer.Option(metavar=REVIEW_STATUS, help="Which reviews to list.")
    ] = "pending",
    tenant: TenantOption = None,
    as_json: JsonOption = False,
) -> None:
    """The review queue: images a `review` rule held (nothing released until approved)."""
    from gen import ReviewStore

    with _errors(as_json):
        statuses = _review_statuses()
        if status not in statuses:
            listed = f"{', '.join(statuses[:-1])} or {statuses[-1]}"
            raise InputError(f"--status must be {listed}")
        store = ReviewStore(_settings().store_url)
        reviews = store.list(
            status=None if status == "all" else status,  # type: ignore[arg-type]
            tenant=tenant,
        )
        if as_json:
            _dump([r.model_dump(mode="json") for r in reviews])
            return
        for r in reviews:
            out.print(
                f"{r.id}  {r.status:8}  {r.created_at:%Y-%m-%d %H:%M}  tenant {r.tenant or '-'}"
                f"  rule {r.decision.rule or '(default)'}  image {r.index}",
                highlight=False,
            )
        out.print(f"{len(reviews)} review(s)")


@review_app.command("decide")
def review_decide(
    review_id: Annotated[str, typer.Argument(help="The review id (from `genseal review list`).")],
    approve: Annotated[
        bool, typer.Option("--approve/--reject", help="Seal and release it, or discard it.")
    ],
    reviewer: Annotated[str | None, typer.Option(help="Who decided (audit log).")] = None,
    note: Annotated[str | None, typer.Option(help="Why (audit log).")] = None,
    out_dir: Annotated[
        Path, typer.Option("--out", help="Where an approved image is written.")
    ] = Path("."),
    as_json: JsonOption = False,
) -> None:
    """Approve (seal, release, write the image) or reject (discard) a held image."""
    with _errors(as_json):
        service = _service()
        if approve:
            record, sealed = service.approve_review(review_id, reviewer=reviewer, note=note)
            from gen import GenerationResult

            result = GenerationResult(
                request_id=record.request_id,
                status="released",
                decision=sealed.decision,
                findings=[],
                images=[sealed],
            )
            paths = _write_images(result, out_dir)
            payload = {**record.model_dump(mode="json"), "path": str(paths[0])}
        else:
            record = service.reject_review(review_id, reviewer=reviewer, note=note)
            payload = record.model_dump(mode="json")
        if as_json:
            _dump(payload)
        else:
            out.print(
                f"review {review_id} {record.status}"
                + (f": {payload['path']}" if "path" in payload else ""),
                highlight=False,
            )
