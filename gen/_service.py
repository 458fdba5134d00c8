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
from typing import Any, cast

import structlog
from PIL import Image

from gen._backend import GenerationParams, ImageBackend
from gen._backend_diffusers import DiffusersBackend
from gen._decisions import Outcome, audit_record, blur, carry
from gen._images import MIME_TYPES, ImageFormat, decode_image, encode_image, format_of
from gen._presets import apply_preset, get_preset
from gen._requests import (
    GenerationRequest,
    GenerationResult,
    HeldImage,
    ScreenResult,
    SealedImage,
    WithheldImage,
)
from gen._reviews import ReviewRecord, ReviewStore
from gen._screening import decide_input, screen
from gen._sealer import Sealer, SealJob
from gen._settings import Settings
from gen._signing import build_signer, configured_identity
from gen._verification import build_verifier, configured_watermarker, other_watermarkers
from genseal.db import ensure_schema
from genseal.errors import GensealError, InputError
from provenance import (
    AuditEvent,
    IngredientSpec,
    ManifestStore,
    SigningIdentity,
    Verifier,
    Watermarker,
)
from safety import (
    Action,
    AttributeEstimator,
    BiasMonitor,
    ClipConceptCheck,
    Decision,
    FaceRegistry,
    Finding,
    ImageCheck,
    LikenessCheck,
    MinorsFaceCheck,
    NudeNetCheck,
    OpenNsfwCheck,
    Policy,
    PolicyReloader,
    PolicySet,
    ProtectedIdentityCheck,
    RealPersonCheck,
    Screener,
    Stage,
    default_policy_path,
    face_analyzer,
    prompt_checks_for,
)

log = structlog.get_logger("genseal.service")

Progress = Callable[[str, float], None]
"""Told (stage, fraction done) as a request goes through the service."""

BackendLoader = Callable[[str], ImageBackend]


class SealedGenerationService:
    """Screens, decides, generates and seals. Thread-safe; one per process."""

    def __init__(
        self,
        settings: Settings,
        *,
        backend_loader: BackendLoader | None = None,
        on_identity_created: Callable[[SigningIdentity], None] | None = None,
    ) -> None:
        self.settings = settings
        # First, before any component opens a table: a database behind this genseal is
        # migrated, or (auto-upgrade off, at scale) refused with what to run.
        ensure_schema(settings.store_url, auto_upgrade=settings.database_auto_upgrade)
        # A malformed policy is an error here, at start-up, never a silent allow later.
        self.policy_reloader = PolicyReloader(
            settings.policy or default_policy_path(),
            settings.policy_tenants_dir,
            on_change=self._policy_changed,
        )
        self.face_registry = FaceRegistry(settings.store_url)
        self.screener = _screener_for(
            self.policy_reloader.current.base, settings, self.face_registry
        )
        self.reviews = ReviewStore(settings.store_url)
        self.reviews.import_directory(settings.home / "reviews")
        # One reviewer decision at a time: two approvals of one image must not seal it twice.
        self._review_lock = threading.Lock()
        self.watermarker: Watermarker = configured_watermarker(settings)
        settings.home.mkdir(parents=True, exist_ok=True)
        self.identity, remote = configured_identity(settings)
        if self.identity.created and on_identity_created is not None:
            on_identity_created(self.identity)
        self.signer = build_signer(settings, self.identity, remote)
        self.store = ManifestStore(settings.store_url)
        self.sealer = Sealer(
            self.watermarker, self.signer, self.store, fallbacks=other_watermarkers(settings)
        )
        self._load_backend = backend_loader or self._default_backend_loader
        self._backends: dict[str, ImageBackend] = {}
        self._backends_lock = threading.Lock()
        # diffusers pipelines are not re-entrant; one generation at a time per process.
        self._generate_lock = threading.Lock()
        self.bias_monitor = BiasMonitor(
            settings.store_url,
            drift_tvd=settings.bias_drift_tvd,
            min_images=settings.bias_min_images,
        )
        self.bias_estimator: AttributeEstimator | None = None  # made at the first use
        self.bias_monitor_failures = 0
        self._bias_lock = threading.Lock()

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
            self.screener = _screener_for(new.base, self.settings, self.face_registry)

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
        with self._recorded(request_id, request.tenant, "generate"):
            report("screening", 0.02)
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
            output_context = {**context, "stage": Stage.OUTPUT.value}
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
                    policy.decide(findings + image_findings, Stage.OUTPUT, output_context),
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
        with self._recorded(request_id, tenant, "seal"):
            image = decode_image(
                image_bytes,
                max_bytes=self.settings.max_upload_bytes,
                max_pixels=self.settings.max_image_pixels,
                name=image_name,
            )
            context = {
                "tenant": tenant or "",
                "purpose": purpose or "",
                "model": source_model or "unknown",
                "has_input_image": False,
                "preset": "",
                "n": 1,
                "operation": "seal",
            }
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
            output_context = {**context, "stage": Stage.OUTPUT.value}
            decision = policy.decide(findings, Stage.OUTPUT, output_context)
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

    def backend(self, spec: str) -> ImageBackend:
        with self._backends_lock:
            if spec not in self._backends:
                self._backends[spec] = self._load_backend(spec)
            return self._backends[spec]

    # -- the flow's parts -----------------------------------------------------------------------

    def _default_backend_loader(self, spec: str) -> ImageBackend:
        return DiffusersBackend.load(
            spec, device=self.settings.device, offline=self.settings.offline
        )

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

    def _context(self, request: GenerationRequest, has_input_image: bool) -> dict[str, Any]:
        return {
            "tenant": request.tenant or "",
            "model": request.model or self.settings.model,
            "has_input_image": has_input_image,
            "preset": request.preset or "",
            "n": request.n,
            "operation": "generate",
            "purpose": request.purpose or "",
            "has_consent": request.consent is not None,
            "consent": request.consent.model_dump() if request.consent else {},
            "request_sha256": request.digest(),
        }

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
        context: dict[str, Any],
        request: GenerationRequest | None,
        timings: dict[str, float],
    ) -> None:
        """Act on one output's decision: withhold, hold for review, or seal (blurred if so)."""
        consent = request.consent.model_dump() if request and request.consent else None
        if decision.blocked:
            record = audit_record(decision, findings, context)
            self._audit("blocked", request_id, tenant, record, key=f"{request_id}/{index}/blocked")
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
                    "context": context,
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
            self._audit("blocked", request_id, tenant, record, key=f"{request_id}/{index}/held")
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
                    context=context,
                    blurred=blurred,
                ),
            )
        outcome.released.append(sealed)
        # The image as generated: it is what the model drew (a blur would hide the face), and
        # the face checks already analysed it, so the analyzer's cache answers.
        self._monitor_bias(tenant, image)

    def _monitor_bias(self, tenant: str | None, image: Image.Image) -> None:
        """Count a released image's perceived attributes when its tenant opted in. Monitoring
        watches releases and never changes one: a failure is logged and counted, not raised."""
        try:
            if not self.bias_monitor.enabled(tenant):
                return
            with self._bias_lock:
                if self.bias_estimator is None:
                    self.bias_estimator = AttributeEstimator(face_analyzer())
                estimator = self.bias_estimator
            self.bias_monitor.record(tenant, estimator.estimate(image))
        except Exception as exc:
            with self._bias_lock:
                self.bias_monitor_failures += 1
            log.warning("bias monitoring failed", tenant=tenant, error=str(exc))

    # -- the review queue ------------------------------------------------------------------------

    def approve_review(
        self, review_id: str, *, reviewer: str | None = None, note: str | None = None
    ) -> tuple[ReviewRecord, SealedImage]:
        """Seal and release a held image (as any release: watermark, C2PA, store, audit)."""
        with self._review_lock:
            return self._approve_review(review_id, reviewer=reviewer, note=note)

    def _approve_review(
        self, review_id: str, *, reviewer: str | None, note: str | None
    ) -> tuple[ReviewRecord, SealedImage]:
        review = self.reviews.get(review_id)
        if review.status != "pending":
            raise InputError(f"review {review_id} is already {review.status}")
        image = decode_image(self.reviews.candidate(review_id), max_bytes=2**31, max_pixels=2**31)
        ingredient_data = self.reviews.ingredient(review_id)
        ingredient = (
            IngredientSpec(
                data=ingredient_data,
                mime=review.ingredient_mime or "image/png",
                title=review.ingredient_title or "input image",
            )
            if ingredient_data is not None
            else None
        )
        with self._recorded(review.request_id, review.tenant, "review"):
            sealed = self.sealer.seal(
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
            self._monitor_bias(review.tenant, image)
        # The manifest id encodes the model too; model_id here is the plain model id.
        decided = self.reviews.decide(
            review_id,
            "approved",
            reviewer=reviewer,
            note=note,
            sealed=sealed.data,
            manifest_id=sealed.manifest_id,
            mime=sealed.mime,
        )
        return decided, sealed

    def reject_review(
        self, review_id: str, *, reviewer: str | None = None, note: str | None = None
    ) -> ReviewRecord:
        """Discard a held image; the rejection is recorded in the audit log."""
        with self._review_lock:
            review = self.reviews.get(review_id)
            if review.status != "pending":
                raise InputError(f"review {review_id} is already {review.status}")
            record = audit_record(review.decision, review.findings, review.context)
            record.update(outcome="rejected", review_id=review_id, reviewer=reviewer, note=note)
            self._audit("blocked", review.request_id, review.tenant, record)
            return self.reviews.decide(review_id, "rejected", reviewer=reviewer, note=note)

    def _blocked(
        self,
        request_id: str,
        tenant: str | None,
        decision: Decision,
        findings: list[Finding],
        context: dict[str, Any],
        timings: dict[str, float],
    ) -> GenerationResult:
        """Record a block before anything is generated or sealed, and say so to the caller."""
        record = audit_record(decision, findings, context)
        self._audit("blocked", request_id, tenant, record, key=f"{request_id}/blocked")
        return GenerationResult(
            request_id=request_id,
            status="blocked",
            decision=decision,
            findings=findings,
            timings_ms=timings,
        )

    def _audit(
        self,
        event: AuditEvent,
        request_id: str,
        tenant: str | None,
        decision: Decision | dict[str, Any],
        *,
        manifest_id: str | None = None,
        key: str | None = None,
    ) -> None:
        """Append to the audit log; ``key`` names an outcome a retried job records once."""
        payload = decision.as_record() if isinstance(decision, Decision) else decision
        self.store.append_audit(
            event=event,
            request_id=request_id,
            tenant=tenant,
            decision=payload,
            manifest_id=manifest_id,
            entry_key=key,
        )

    @contextmanager
    def _recorded(self, request_id: str, tenant: str | None, operation: str) -> Iterator[None]:
        """Record any failure as an ``error`` decision, then let it propagate (fail closed)."""
        try:
            yield
        except InputError:
            raise  # the caller's mistake: nothing was screened, nothing to record
        except Exception as exc:
            error = exc if isinstance(exc, GensealError) else None
            log.error("request failed", request_id=request_id, operation=operation, error=str(exc))
            try:
                self._audit(
                    "error",
                    request_id,
                    tenant,
                    {
                        "operation": operation,
                        "error": error.code if error else type(exc).__name__,
                        "message": str(exc),
                    },
                )
            except Exception as audit_exc:  # the store itself may be what failed
                log.error("could not record the failure", error=str(audit_exc))
            raise


def _screener_for(policy: Policy, settings: Settings, registry: FaceRegistry) -> Screener:
    """The checks every request goes through. CLIP and NudeNet join only when configured: a
    sexual-content check that cannot run reports not_checked, and the fail-closed rules block
    an output on that."""
    prompt_checks = prompt_checks_for(policy)
    image_checks: list[ImageCheck] = [
        OpenNsfwCheck.from_policy(policy),
        MinorsFaceCheck.from_policy(policy),
        RealPersonCheck.from_policy(policy),
        ProtectedIdentityCheck.from_policy(policy, registry),
        LikenessCheck.from_policy(policy),
    ]
    if settings.clip_weights is not None:
        image_checks.append(
            ClipConceptCheck.from_policy(
                policy, model=settings.clip_model, weights=settings.clip_weights
            )
        )
    if settings.nudenet:
        image_checks.append(NudeNetCheck.from_policy(policy))
    return Screener(prompt_checks=prompt_checks, image_checks=image_checks)


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
