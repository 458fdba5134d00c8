"""Human review of held images: approval seals and releases one (as any release: watermark,
C2PA, store, audit), rejection discards it with an audit entry. One decision at a time, so two
approvals of one image never seal it twice."""

from __future__ import annotations

import threading
from typing import cast

from gen._audit_trail import AuditTrail
from gen._bias_watch import BiasWatch
from gen._decisions import audit_record
from gen._images import ImageFormat, decode_image
from gen._requests import SealedImage
from gen._reviews import ReviewRecord, ReviewStore
from gen._sealer import Sealer, SealJob
from genseal.errors import InputError
from provenance import IngredientSpec

__all__ = ["ReviewDesk"]


class ReviewDesk:
    """Approves or rejects the images a policy held for review."""

    def __init__(
        self, reviews: ReviewStore, sealer: Sealer, audit: AuditTrail, bias: BiasWatch
    ) -> None:
        self._reviews = reviews
        self._sealer = sealer
        self._audit = audit
        self._bias = bias
        self._lock = threading.Lock()

    def approve(
        self, review_id: str, *, reviewer: str | None = None, note: str | None = None
    ) -> tuple[ReviewRecord, SealedImage]:
        with self._lock:
            return self._approve(review_id, reviewer=reviewer, note=note)

    def reject(
        self, review_id: str, *, reviewer: str | None = None, note: str | None = None
    ) -> ReviewRecord:
        with self._lock:
            review = self._pending(review_id)
            record = audit_record(review.decision, review.findings, review.context)
            record.update(outcome="rejected", review_id=review_id, reviewer=reviewer, note=note)
            self._audit.append("blocked", review.request_id, review.tenant, record)
            return self._reviews.decide(review_id, "rejected", reviewer=reviewer, note=note)

    def _pending(self, review_id: str) -> ReviewRecord:
        review = self._reviews.get(review_id)
        if review.status != "pending":
            raise InputError(f"review {review_id} is already {review.status}")
        return review

    def _approve(
        self, review_id: str, *, reviewer: str | None, note: str | None
    ) -> tuple[ReviewRecord, SealedImage]:
        review = self._pending(review_id)
        image = decode_image(self._reviews.candidate(review_id), max_bytes=2**31, max_pixels=2**31)
        ingredient_data = self._reviews.ingredient(review_id)
        ingredient = (
            IngredientSpec(
                data=ingredient_data,
                mime=review.ingredient_mime or "image/png",
                title=review.ingredient_title or "input image",
            )
            if ingredient_data is not None
            else None
        )
        with self._audit.recorded(review.request_id, review.tenant, "review"):
            sealed = self._sealer.seal(
                image,
                SealJob(
                    index=review.index,
                    seed=review.seed,
                    request_id=review.request_id,
                    tenant=review.tenant,
                    fmt=cast(ImageFormat, review.output_format),
                    model_id=review.model_id,
                    model_version=review.model_version,
                    findings=review.findings,
                    decision=review.decision,
                    input_decision=review.input_decision,
                    ingredient=ingredient,
                    consent=review.consent,
                    context=review.context,
                    review={
                        "outcome": "approved",
                        "review_id": review_id,
                        "reviewer": reviewer,
                        "note": note,
                    },
                ),
            )
            self._bias.observe(review.tenant, image)
        # The manifest id encodes the model too; model_id here is the plain model id.
        decided = self._reviews.decide(
            review_id,
            "approved",
            reviewer=reviewer,
            note=note,
            sealed=sealed.data,
            manifest_id=sealed.manifest_id,
            mime=sealed.mime,
        )
        return decided, sealed
