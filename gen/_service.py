"""The sealed-generation service: the one place that runs the whole flow.

    request → screen prompt and input → decide → generate → screen outputs → decide per image
            → watermark → sign (C2PA) → store manifest + fingerprint → audit → caller

Every step fails closed: an exception anywhere before an image is sealed and stored means no
image leaves, and the failure is recorded in the audit log as an ``error`` decision. After the
release, the perceived attributes of an opted-in tenant's images are counted (bias monitoring);
that step only observes, and its failures are logged and counted, never raised.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import structlog
from PIL import Image

from gen._audit_trail import AuditTrail
from gen._backend import GenerationParams, ImageBackend
from gen._bias_watch import BiasWatch
from gen._decisions import Outcome, audit_record, blur, carry
from gen._images import MIME_TYPES, ImageFormat, decode_image, encode_image, format_of
from gen._parts import ServiceParts, build_parts
from gen._presets import apply_preset, get_preset
from gen._requests import (
    GenerationRequest,
    GenerationResult,
    HeldImage,
    RequestContext,
    ScreenResult,
    SealedImage,
    WithheldImage,
)
from gen._review_desk import ReviewDesk
from gen._reviews import ReviewRecord
from gen._screening import check_prompt_length, decide_input, screen
from gen._sealer import SealJob
from gen._verification import build_verifier
from genseal.errors import InputError
from genseal.settings import Settings
from provenance import (
    IngredientSpec,
    Verifier,
    Watermarker,
)
from safety import (
    Action,
    Decision,
    Finding,
    Policy,
    PolicySet,
    Stage,
)

# A model name or purpose a seal's manifest records.
_MAX_LABEL_CHARS = 200

log = structlog.get_logger("genseal.service")

Progress = Callable[[str, float], None]
"""Told (stage, fraction done) as a request goes through the service."""

BackendLoader = Callable[[str], ImageBackend]


class SealedGenerationService:
    """Screens, decides, generates and seals. Thread-safe; one per process.

    ``parts`` (the composition root, ``build_parts``) are made from ``settings`` when not given.
    """

    def __init__(self, settings: Settings, parts: ServiceParts | None = None) -> None:
        self.settings = settings
        self.parts = parts or build_parts(settings)
        self.policy_reloader = self.parts.policies
        self.policy_reloader.on_change = self._policy_changed
        self.face_registry = self.parts.face_registry
        self.screener = self.parts.screener_for(self.policy_reloader.current.base)
        self.reviews = self.parts.reviews
        self.watermarker: Watermarker = self.parts.watermarker
        self.identity = self.parts.identity
        self.store = self.parts.store
        self.sealer = self.parts.sealer
        self.bias_monitor = self.parts.bias_monitor
        self._bias = BiasWatch(self.parts.bias_monitor, self.parts.bias_estimator)
        self._audit_trail = AuditTrail(self.store)
        self._reviews = ReviewDesk(self.reviews, self.sealer, self._audit_trail, self._bias)
        self._backends: dict[str, ImageBackend] = {}
        self._backends_lock = threading.Lock()
        # diffusers pipelines are not re-entrant; one generation at a time per process.
        self._generate_lock = threading.Lock()

    @property
    def bias_monitor_failures(self) -> int:
        """Releases whose bias monitoring failed (logged; the release went ahead)."""
        return self._bias.failures

    @property
    def bias_estimator_loaded(self) -> bool:
        """Whether the bias monitor's estimator was needed yet (it loads at the first use)."""
        return self._bias.estimator_loaded

    def close(self) -> None:
        """Close the database the parts share."""
        self.parts.database.close()

    @property
    def policies(self) -> PolicySet:
        """The active policy set (base + tenant overlays); replaced whole on a hot reload."""
        return self.policy_reloader.current

    @property
    def policy(self) -> Policy:
        """The active base policy."""
        return self.policy_reloader.current.base

    def reload_policy(self) -> bool:
        """Reload the policy files if they changed (validated first; the old set stays active
        when the new one does not load). True when a new set became active."""
        return self.policy_reloader.check()

    def _policy_changed(self, new: PolicySet) -> None:
        if new.base.sha256 != self.policy.sha256:
            # Term lists and the NSFW threshold come from the base policy.
            self.screener = self.parts.screener_for(new.base)

    # -- public operations -------------------------------------------------------------------

    def generate(
        self, request: GenerationRequest, progress: Progress | None = None
    ) -> GenerationResult:
        """Text-to-image, or image-to-image when the request carries an input image.

        ``progress(stage, fraction)`` is told where the request is (for job status).
        """
        request_id = request.request_id or _new_id()
        timings: dict[str, float] = {}
        report = progress or _no_progress
        with self._audit_trail.recorded(request_id, request.tenant, "generate"):
            report("screening", 0.02)
            if request.size is not None:
                self._check_markable(*request.size, "the size asked for")
            prompt, params_extra = self._resolve_prompt(request)
            input_image = self._decode_input(request)

            with _timed(timings, "screen_input"):
                findings = self.screener.screen_prompt(prompt)
                if input_image is not None:
                    findings += self.screener.screen_images([input_image], Stage.INPUT)
            policy = self.policies.for_tenant(request.tenant)
            context = self._context(request, input_image is not None)
            decision, decided_on = decide_input(policy, findings, context)
            if decision.blocked:
                return self._blocked(
                    request_id, request.tenant, decision, decided_on, context, timings
                )

            backend = self.backend(request.model or self.settings.model)
            width, height = request.size or params_extra.get("size") or backend.defaults.size
            self._check_markable(width, height, "the size to generate")
            params = GenerationParams(
                prompt=prompt,
                negative_prompt=request.negative_prompt or params_extra.get("negative_prompt"),
                n=request.n,
                seed=request.seed,
                steps=request.steps or params_extra.get("steps"),
                width=width,
                height=height,
                guidance_scale=params_extra.get("guidance_scale"),
                strength=request.strength or params_extra.get("strength") or 0.75,
                init_image=input_image.convert("RGB") if input_image is not None else None,
                on_step=lambda done, total: report("generating", 0.05 + 0.8 * done / total),
            )
            report("generating", 0.05)
            with _timed(timings, "generate"), self._generate_lock:
                output = backend.generate(params)
            report("sealing", 0.85)

            outcome = Outcome()
            output_context = context.at(Stage.OUTPUT)
            for index, image in enumerate(output.images):
                seed = output.seeds[index] if index < len(output.seeds) else None
                with _timed(timings, "screen_output"):
                    # The input image goes along so likeness can compare who is in both.
                    image_findings = self.screener.screen_images(
                        [image], Stage.OUTPUT, reference=input_image
                    )
                    image_findings = [
                        f.model_copy(update={"image_index": index}) for f in image_findings
                    ]
                # Earlier findings go along: a minor in the prompt lowers the bar for the output.
                out_decision = carry(
                    policy,
                    decision,
                    policy.decide(
                        findings + image_findings, Stage.OUTPUT, output_context.as_dict()
                    ),
                )
                self._dispose(
                    outcome,
                    image,
                    index=index,
                    seed=seed,
                    request_id=request_id,
                    tenant=request.tenant,
                    fmt=request.output_format or self.settings.output_format,
                    model_id=backend.model_id,
                    model_version=backend.model_version,
                    findings=findings + image_findings,
                    image_findings=image_findings,
                    decision=out_decision,
                    input_decision=decision,
                    context=output_context,
                    request=request,
                    timings=timings,
                )

            return outcome.result(
                request_id,
                findings,
                timings,
                model_id=backend.model_id,
                model_version=backend.model_version,
            )

    def seal(
        self,
        image_bytes: bytes,
        *,
        source_model: str | None = None,
        prompt: str | None = None,
        output_format: ImageFormat | None = None,
        tenant: str | None = None,
        purpose: str | None = None,
        image_name: str = "image",
        request_id: str | None = None,
    ) -> GenerationResult:
        """Screen, decide, watermark and sign an image generated elsewhere.

        ``request_id``: as on ``GenerationRequest`` (a job's id, stable across retries)."""
        request_id = request_id or _new_id()
        timings: dict[str, float] = {}
        with self._audit_trail.recorded(request_id, tenant, "seal"):
            _check_seal_text(prompt, source_model, purpose)
            image = decode_image(
                image_bytes,
                max_bytes=self.settings.max_upload_bytes,
                max_pixels=self.settings.max_image_pixels,
                name=image_name,
            )
            self._check_markable(image.width, image.height, "the image")
            context = RequestContext(
                operation="seal",
                tenant=tenant or "",
                purpose=purpose or "",
                model=source_model or "unknown",
            )
            policy = self.policies.for_tenant(tenant)
            with _timed(timings, "screen"):
                prompt_findings = self.screener.screen_prompt(prompt) if prompt else []
                image_findings = self.screener.screen_images([image], Stage.OUTPUT)
            findings = prompt_findings + image_findings
            input_decision: Decision | None = None
            if prompt:
                input_decision, decided_on = decide_input(policy, prompt_findings, context)
                if input_decision.blocked:
                    return self._blocked(
                        request_id, tenant, input_decision, decided_on, context, timings
                    )
            output_context = context.at(Stage.OUTPUT)
            decision = policy.decide(findings, Stage.OUTPUT, output_context.as_dict())
            if input_decision is not None:
                decision = carry(policy, input_decision, decision)
            fmt = output_format or format_of(image_bytes) or self.settings.output_format
            outcome = Outcome()
            self._dispose(
                outcome,
                image,
                index=0,
                seed=None,
                request_id=request_id,
                tenant=tenant,
                fmt=fmt,
                model_id=source_model or "unknown",
                model_version=None,
                findings=findings,
                image_findings=image_findings,
                decision=decision,
                input_decision=input_decision,
                context=output_context,
                request=None,
                timings=timings,
            )
            return outcome.result(request_id, findings, timings, model_id=source_model)

    def screen(
        self,
        *,
        prompt: str | None = None,
        image_bytes: bytes | None = None,
        tenant: str | None = None,
        purpose: str | None = None,
        has_consent: bool = False,
    ) -> ScreenResult:
        """Findings and the decision on them, without generating or recording anything."""
        image = None
        if image_bytes is not None:
            image = decode_image(
                image_bytes,
                max_bytes=self.settings.max_upload_bytes,
                max_pixels=self.settings.max_image_pixels,
            )
        return screen(
            self.screener,
            self.policies,
            prompt=prompt,
            image=image,
            tenant=tenant,
            purpose=purpose,
            has_consent=has_consent,
        )

    def verifier(self, extra_anchors_pem: bytes = b"") -> Verifier:
        return build_verifier(
            self.settings, extra_anchors_pem, store=self.store, watermarker=self.watermarker
        )

    def _check_markable(self, width: int, height: int, what: str) -> None:
        # Before any work: past this point a too-small image fails only at sealing, after the
        # checks and the generation have run.
        side = self.sealer.min_side
        if min(width, height) < side:
            raise InputError(
                f"{what} is {width}x{height}; the watermark needs at least {side}x{side}",
                hint=f"ask for {side}x{side} or larger",
            )

    def backend(self, spec: str) -> ImageBackend:
        with self._backends_lock:
            if spec not in self._backends:
                self._backends[spec] = self.parts.backend_loader(spec)
            return self._backends[spec]

    # -- the flow's parts -----------------------------------------------------------------------

    def _resolve_prompt(self, request: GenerationRequest) -> tuple[str, dict[str, Any]]:
        if request.preset is None:
            if not request.prompt.strip():
                raise InputError("the prompt is empty")
            return request.prompt, {}
        preset = get_preset(request.preset)
        if preset.mode == "image-to-image" and request.image is None:
            raise InputError(
                f"preset {preset.name!r} turns an input image into a new one: give --image"
            )
        extra: dict[str, Any] = {
            "negative_prompt": preset.negative_prompt,
            "steps": preset.steps,
            "guidance_scale": preset.guidance_scale,
            "strength": preset.strength,
            "size": preset.size,
        }
        return apply_preset(preset, request.prompt), extra

    def _decode_input(self, request: GenerationRequest) -> Image.Image | None:
        if request.image is None:
            return None
        return decode_image(
            request.image,
            max_bytes=self.settings.max_upload_bytes,
            max_pixels=self.settings.max_image_pixels,
            name=request.image_name,
        )

    def _context(self, request: GenerationRequest, has_input_image: bool) -> RequestContext:
        return RequestContext(
            operation="generate",
            tenant=request.tenant or "",
            model=request.model or self.settings.model,
            has_input_image=has_input_image,
            preset=request.preset or "",
            n=request.n,
            purpose=request.purpose or "",
            has_consent=request.consent is not None,
            consent=request.consent.model_dump() if request.consent else {},
            request_sha256=request.digest(),
        )

    def _ingredient(self, request: GenerationRequest) -> IngredientSpec | None:
        if request.image is None:
            return None
        fmt = format_of(request.image)
        if fmt is None:
            # c2pa cannot embed an ingredient of a format it does not know; record it re-encoded.
            image = decode_image(
                request.image,
                max_bytes=self.settings.max_upload_bytes,
                max_pixels=self.settings.max_image_pixels,
            )
            return IngredientSpec(
                data=encode_image(image, "png"), mime=MIME_TYPES["png"], title=request.image_name
            )
        return IngredientSpec(data=request.image, mime=MIME_TYPES[fmt], title=request.image_name)

    def _dispose(
        self,
        outcome: Outcome,
        image: Image.Image,
        *,
        index: int,
        seed: int | None,
        request_id: str,
        tenant: str | None,
        fmt: ImageFormat,
        model_id: str,
        model_version: str | None,
        findings: list[Finding],
        image_findings: list[Finding],
        decision: Decision,
        input_decision: Decision | None,
        context: RequestContext,
        request: GenerationRequest | None,
        timings: dict[str, float],
    ) -> None:
        """Act on one output's decision: withhold, hold for review, or seal (blurred if so)."""
        consent = request.consent.model_dump() if request and request.consent else None
        if decision.blocked:
            record = audit_record(decision, findings, context)
            self._audit_trail.append(
                "blocked", request_id, tenant, record, key=f"{request_id}/{index}/blocked"
            )
            outcome.withheld.append(
                WithheldImage(index=index, seed=seed, findings=image_findings, decision=decision)
            )
            return
        ingredient = self._ingredient(request) if request is not None else None
        if decision.held:
            review = self.reviews.add(
                {
                    "request_id": request_id,
                    "tenant": tenant,
                    "index": index,
                    "seed": seed,
                    "model_id": model_id,
                    "model_version": model_version,
                    "output_format": fmt,
                    "findings": findings,
                    "decision": decision,
                    "input_decision": input_decision,
                    "context": context.as_dict(),
                    "consent": consent,
                    "ingredient_mime": ingredient.mime if ingredient else None,
                    "ingredient_title": ingredient.title if ingredient else None,
                },
                encode_image(image, "png"),
                ingredient.data if ingredient else None,
            )
            # The audit log has no "held" event: a held image is not released, so it is
            # recorded as blocked, with the outcome and the review id that can release it.
            record = audit_record(decision, findings, context)
            record.update(outcome="held", review_id=review.id)
            self._audit_trail.append(
                "blocked", request_id, tenant, record, key=f"{request_id}/{index}/held"
            )
            outcome.held.append(
                HeldImage(
                    index=index,
                    review_id=review.id,
                    seed=seed,
                    findings=image_findings,
                    decision=decision,
                )
            )
            return
        blurred = decision.action is Action.BLUR
        with _timed(timings, "seal"):
            sealed = self.sealer.seal(
                blur(image) if blurred else image,
                SealJob(
                    index=index,
                    seed=seed,
                    request_id=request_id,
                    tenant=tenant,
                    fmt=fmt,
                    model_id=model_id,
                    model_version=model_version,
                    findings=findings,
                    decision=decision,
                    input_decision=input_decision,
                    ingredient=ingredient,
                    consent=consent,
                    context=context.as_dict(),
                    blurred=blurred,
                ),
            )
        outcome.released.append(sealed)
        # The image as generated: it is what the model drew (a blur would hide the face), and
        # the face checks already analysed it, so the analyzer's cache answers.
        self._bias.observe(tenant, image)

    # -- the review queue ------------------------------------------------------------------------

    def approve_review(
        self, review_id: str, *, reviewer: str | None = None, note: str | None = None
    ) -> tuple[ReviewRecord, SealedImage]:
        """Seal and release a held image (as any release: watermark, C2PA, store, audit)."""
        return self._reviews.approve(review_id, reviewer=reviewer, note=note)

    def reject_review(
        self, review_id: str, *, reviewer: str | None = None, note: str | None = None
    ) -> ReviewRecord:
        """Discard a held image; the rejection is recorded in the audit log."""
        return self._reviews.reject(review_id, reviewer=reviewer, note=note)

    def _blocked(
        self,
        request_id: str,
        tenant: str | None,
        decision: Decision,
        findings: list[Finding],
        context: RequestContext,
        timings: dict[str, float],
    ) -> GenerationResult:
        """Record a block before anything is generated or sealed, and say so to the caller."""
        record = audit_record(decision, findings, context)
        self._audit_trail.append("blocked", request_id, tenant, record, key=f"{request_id}/blocked")
        return GenerationResult(
            request_id=request_id,
            status="blocked",
            decision=decision,
            findings=findings,
            timings_ms=timings,
        )


def _no_progress(_stage: str, _fraction: float) -> None:
    pass


def _new_id() -> str:
    return uuid.uuid4().hex


@contextmanager
def _timed(timings: dict[str, float], stage: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        timings[stage] = timings.get(stage, 0.0) + (time.perf_counter() - start) * 1000


def _check_seal_text(prompt: str | None, source_model: str | None, purpose: str | None) -> None:
    # Each goes into the signed manifest: bounded like a generation's own.
    check_prompt_length(prompt)
    for name, value in (("source_model", source_model), ("purpose", purpose)):
        if value is not None and len(value) > _MAX_LABEL_CHARS:
            raise InputError(
                f"{name} is {len(value)} characters long; at most {_MAX_LABEL_CHARS} are accepted"
            )
