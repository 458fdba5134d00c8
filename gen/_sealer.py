"""The seal stage: watermark, then sign over the watermarked pixels, then store and audit.

Only images a policy released reach here; everything in it raises on failure, and the service
turns any failure into a recorded ``error`` with nothing released.

Every mark is read back before it is signed: a learned watermark (rivaGan) does not take on
every picture (pure noise, as the embedded ``tiny`` model draws, reads as a confident payload
of its own), so when the configured backend cannot read its own mark (not even among the
likely payloads its reading lists) the next backend is used, and the manifest, the store and
the response name the one that holds. An image no backend can mark readably is not released
(WatermarkError).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog
from PIL import Image

import genseal
from gen._decisions import audit_record
from gen._images import MIME_TYPES, ImageFormat, encode_image, extension
from gen._requests import SealedImage
from genseal.errors import WatermarkError
from provenance import (
    IngredientSpec,
    ManifestRecord,
    ManifestSigner,
    ManifestStore,
    SealClaim,
    Watermarker,
    crop_print,
    fingerprint,
)
from safety import Decision, Finding

log = structlog.get_logger("genseal.sealer")


@dataclass(frozen=True, slots=True)
class SealJob:
    """Everything the manifest and the audit entry record about one released image."""

    index: int
    request_id: str
    tenant: str | None
    fmt: ImageFormat
    model_id: str
    model_version: str | None
    findings: list[Finding]
    decision: Decision
    seed: int | None = None
    input_decision: Decision | None = None
    ingredient: IngredientSpec | None = None
    consent: dict[str, Any] | None = None
    context: dict[str, Any] = field(default_factory=dict)
    blurred: bool = False
    review: dict[str, Any] | None = None


# The namespace of manifest ids (uuid5 of "request id/image index").
_MANIFEST_IDS = uuid.UUID("6f0c1f4e-5d1b-4b8e-9a57-3c0d6f7e2a41")


class Sealer:
    """Seals released images with a watermarker (and the ``fallbacks`` for pictures it cannot
    mark readably), one C2PA signer and one manifest store."""

    def __init__(
        self,
        watermarker: Watermarker,
        signer: ManifestSigner,
        store: ManifestStore,
        fallbacks: Sequence[Watermarker] = (),
    ) -> None:
        self.watermarker = watermarker
        self.fallbacks = [w for w in fallbacks if w.name != watermarker.name]
        self.signer = signer
        self.store = store

    @property
    def min_side(self) -> int:
        """The shortest side an image needs for some backend here to mark it."""
        return min(w.min_side for w in (self.watermarker, *self.fallbacks))

    def watermark(self, image: Image.Image, payload: str) -> tuple[Image.Image, Watermarker]:
        """The marked image and the first backend whose mark reads back."""
        for watermarker in (self.watermarker, *self.fallbacks):
            marked = watermarker.embed(image, payload)
            reading = watermarker.detect(marked)
            # Read back as the verifier reads: the payload or, for a backend without a
            # checksum, one of the likely payloads the reading lists (a weak mark on a strongly
            # coloured picture may lose a bit yet still lead recovery to its manifest).
            if reading.detected and payload in (reading.payload, *reading.candidates):
                return marked, watermarker
            log.warning(
                "watermark_unreadable",
                backend=watermarker.name,
                read=reading.payload,
                confidence=reading.confidence,
            )
        tried = ", ".join(w.name for w in (self.watermarker, *self.fallbacks))
        raise WatermarkError(
            f"no watermark backend ({tried}) reads its own mark back from this image, "
            "so its provenance could not survive the manifest being stripped"
        )

    def seal(self, image: Image.Image, job: SealJob) -> SealedImage:
        """Watermark, sign and record one image. Idempotent per (request, image index): the
        manifest id derives from them, so a retried job replaces the record of an attempt that
        died before delivering, and appends its ``released`` entry once."""
        genseal_id = str(uuid.uuid5(_MANIFEST_IDS, f"{job.request_id}/{job.index}"))
        # The watermark carries a short id derived from the manifest id; the fingerprint is
        # what confirms it on recovery (32 bits alone collide).
        payload = uuid.UUID(genseal_id).hex[:8]
        marked, watermarker = self.watermark(image, payload)
        data = encode_image(marked, job.fmt)
        mime = MIME_TYPES[job.fmt]
        print_ = fingerprint(marked)
        model = f"{job.model_id}@{job.model_version}" if job.model_version else job.model_id
        claim = SealClaim(
            genseal_id=genseal_id,
            title=f"genseal-{genseal_id[:8]}-{job.index}{extension(job.fmt)}",
            software_agent=f"genseal {genseal.__version__}",
            model_id=model,
            kind="edited" if job.ingredient is not None else "created",
            moderation=moderation_assertion(genseal_id, job),
            soft_binding_alg=f"org.genseal.{watermarker.name}.{watermarker.version}",
            soft_binding_value=payload,
            ingredient=job.ingredient,
        )
        signed = self.signer.sign(data, mime, claim)
        sha256 = hashlib.sha256(signed.data).hexdigest()
        self.store.put(
            ManifestRecord(
                id=genseal_id,
                manifest_label=signed.manifest_label,
                manifest_store=signed.manifest_store,
                watermark_alg=watermarker.name,
                watermark_payload=payload,
                fingerprint_alg=print_.algorithm,
                fingerprint_hex=print_.hex,
                fingerprint_crop=crop_print(marked),
                mime=mime,
                sha256=sha256,
                tenant=job.tenant,
                model_id=model,
                decision=job.decision.action.value,
                created_at=datetime.now(UTC),
            )
        )
        record = audit_record(job.decision, job.findings, job.context)
        if job.blurred:
            record["blurred"] = True
        if job.review is not None:
            record["review"] = job.review
        self.store.append_audit(
            event="released",
            request_id=job.request_id,
            tenant=job.tenant,
            decision=record,
            manifest_id=genseal_id,
            entry_key=f"{job.request_id}/{job.index}/released",
        )
        log.info("sealed", request_id=job.request_id, manifest_id=genseal_id, mime=mime)
        return SealedImage(
            index=job.index,
            manifest_id=genseal_id,
            manifest_label=signed.manifest_label,
            mime=mime,
            sha256=sha256,
            watermark=f"{watermarker.name}:{payload}",
            fingerprint=print_.hex,
            seed=job.seed,
            findings=job.findings,
            decision=job.decision,
            data=signed.data,
        )


def moderation_assertion(genseal_id: str, job: SealJob) -> dict[str, Any]:
    """The ``org.genseal.moderation`` assertion: what was checked and decided, never the prompt."""
    decision = job.decision
    assertion: dict[str, Any] = {
        "genseal_id": genseal_id,
        "request_id": job.request_id,
        "decision": decision.action.value,
        "rule": decision.rule,
        "severity": decision.severity.value,
        "policy": {
            "id": decision.policy_id,
            "version": decision.policy_version,
            "sha256": decision.policy_sha256,
            **({"base_sha256": decision.base_policy_sha256} if decision.base_policy_sha256 else {}),
        },
        "checks": _checks(job.findings),
    }
    if job.input_decision is not None:
        assertion["input_decision"] = job.input_decision.action.value
    if job.consent is not None:
        assertion["consent"] = job.consent
    if job.blurred:
        assertion["blurred"] = True
    if decision.shadow is not None:
        assertion["shadow"] = {
            "decision": decision.shadow.action.value,
            "rule": decision.shadow.rule,
        }
    if job.review is not None:
        # Who reviewed and their note stay in the audit log; the manifest says only the outcome.
        review = job.review
        assertion["review"] = {k: v for k, v in review.items() if k in ("outcome", "review_id")}
    return assertion


def _checks(findings: Sequence[Finding]) -> list[dict[str, Any]]:
    return [
        {
            "check": f.check,
            "version": f.check_version,
            "category": f.category.value,
            "stage": f.stage.value,
            "state": f.state.value,
            "score": f.score,
            **({"reason": f.reason} if f.state.value in ("not_checked", "error") else {}),
        }
        for f in findings
    ]
