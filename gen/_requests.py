"""What callers ask the sealed-generation service for, and what it gives back."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from gen._images import ImageFormat
from safety import Decision, Finding, Stage

_SIZE = re.compile(r"^(\d{2,4})x(\d{2,4})$")


def parse_size(size: str) -> tuple[int, int]:
    """``"512x512"`` → ``(512, 512)``; the backend checks the range and multiples of 8."""
    match = _SIZE.match(size.strip().lower())
    if not match:
        raise ValueError(f"size must look like 512x512, got {size!r}")
    return int(match.group(1)), int(match.group(2))


class ConsentAttestation(BaseModel):
    """A caller's statement that the person shown in an input image consented."""

    # Bounded: each goes into the signed manifest of every image released on it.
    subject: str = Field(
        min_length=1,
        max_length=256,
        description="Who consented (a name or the platform's user id).",
    )
    reference: str = Field(
        min_length=1, max_length=256, description="The platform's reference for the consent record."
    )
    scope: str = Field(
        default="image-to-image", max_length=256, description="What the consent covers."
    )


class GenerationRequest(BaseModel):
    """One moderated generation: text-to-image, or image-to-image when ``image`` is given."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    prompt: str = Field(default="", max_length=4000)
    negative_prompt: str | None = None
    image: bytes | None = Field(default=None, description="Encoded input image (image-to-image).")
    image_name: str = "input image"
    preset: str | None = None
    model: str | None = Field(default=None, description="tiny, a HF id or a local directory.")
    n: int = Field(default=1, ge=1, le=8)
    seed: int | None = Field(default=None, ge=0, le=2**32 - 1)
    steps: int | None = Field(default=None, ge=1, le=150)
    size: tuple[int, int] | None = None
    strength: float | None = Field(default=None, gt=0.0, le=1.0)
    output_format: ImageFormat | None = None
    tenant: str | None = None
    purpose: str | None = Field(
        default=None, max_length=200, description="What the platform asks for this image for."
    )
    consent: ConsentAttestation | None = None
    request_id: str | None = Field(
        default=None,
        max_length=128,
        description="Given by a job, so that a retried job records and seals under the same "
        "ids (no duplicate manifest or audit entry); otherwise a new id per request.",
    )

    @field_validator("size", mode="before")
    @classmethod
    def _parse_size(cls, value: Any) -> Any:
        return parse_size(value) if isinstance(value, str) else value

    def digest(self) -> str:
        """sha256 of what was asked for (the input image by its own digest): the audit log
        names a request by it without keeping the prompt or the image."""
        fields = self.model_dump(mode="json", exclude={"image", "tenant", "request_id"})
        fields["image_sha256"] = hashlib.sha256(self.image).hexdigest() if self.image else None
        canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


class RequestContext(BaseModel):
    """What a policy rule may ask of a request (``request.*`` in CEL), what the audit log keeps
    beside a decision so it can be replayed, and what a held image's review carries. Built
    once per request; ``at(stage)`` names the stage being decided. Never holds the prompt."""

    model_config = ConfigDict(frozen=True)

    operation: Literal["generate", "seal", "screen"]
    tenant: str = ""
    purpose: str = ""
    model: str = ""
    has_input_image: bool = False
    preset: str = ""
    n: int = 1
    has_consent: bool | None = None
    consent: dict[str, Any] | None = None
    request_sha256: str | None = None
    stage: Stage | None = None

    def at(self, stage: Stage) -> RequestContext:
        return self.model_copy(update={"stage": stage})

    def as_dict(self) -> dict[str, Any]:
        """The policy's ``request`` variable: the fields that apply to this operation."""
        return self.model_dump(mode="json", exclude_none=True)


class SealedImage(BaseModel):
    """A released image: watermarked, signed and recorded in the manifest store."""

    index: int
    manifest_id: str = Field(description="genseal id of the manifest in the store.")
    manifest_label: str = Field(description="The C2PA manifest label.")
    mime: str
    sha256: str
    watermark: str = Field(description="Watermark algorithm and payload, e.g. dwtdctsvd:1a2b3c4d.")
    fingerprint: str = Field(description="Perceptual fingerprint (PDQ, hex) of the sealed pixels.")
    seed: int | None = None
    findings: list[Finding] = Field(default_factory=list)
    decision: Decision
    data: bytes = Field(exclude=True, repr=False)


class WithheldImage(BaseModel):
    """An output the policy did not release; its pixels are discarded."""

    index: int
    seed: int | None = None
    findings: list[Finding]
    decision: Decision


class HeldImage(BaseModel):
    """An output held for human review: not released; kept unsealed in the review queue."""

    index: int
    review_id: str
    seed: int | None = None
    findings: list[Finding]
    decision: Decision


class GenerationResult(BaseModel):
    """What the caller gets: sealed images, or the decision that blocked them."""

    request_id: str
    status: Literal["released", "held", "blocked"] = Field(
        description="released: at least one image released; held: none released, at least one "
        "held for review; blocked: nothing released or held."
    )
    decision: Decision = Field(description="The deciding decision: input, or the first output.")
    findings: list[Finding] = Field(description="Findings on the prompt and input image.")
    images: list[SealedImage] = Field(default_factory=list)
    withheld: list[WithheldImage] = Field(default_factory=list)
    held: list[HeldImage] = Field(default_factory=list)
    model_id: str | None = None
    model_version: str | None = None
    timings_ms: dict[str, float] = Field(default_factory=dict)

    @property
    def released(self) -> bool:
        return self.status == "released"


class ScreenResult(BaseModel):
    """Findings and the decision on them, without generating anything."""

    request_id: str
    decision: Decision
    findings: list[Finding]
