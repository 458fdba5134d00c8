"""The C2PA part of the provenance report: what the Content Credentials of a file say and
whether they hold, as `ProvenanceReport.c2pa` carries them (see `provenance.verify`).

Fields are added, never renamed or removed, without bumping the report's ``schema_version``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from provenance.c2pa._status_codes import status_meaning

__all__ = [
    "C2paReport",
    "C2paState",
    "CertificateInfo",
    "Creator",
    "IdentityAssertion",
    "IngredientReport",
    "ManifestSource",
    "StatusCode",
    "TimeStamp",
]

C2paState = Literal["trusted", "valid", "invalid", "absent"]
ManifestSource = Literal["embedded", "sidecar"]


class StatusCode(BaseModel):
    """A C2PA validation status (e.g. ``assertion.dataHash.mismatch``)."""

    model_config = ConfigDict(frozen=True)

    code: str
    explanation: str | None = Field(
        default=None, description="c2pa's own words about this file, as it reported them"
    )
    url: str | None = Field(default=None, description="the part of the manifest it is about")
    meaning: str = Field(
        default="",
        description="what the code stands for, from the table of C2PA 2.x (and CAWG) status "
        "codes; a generic meaning for a code the table does not know",
    )

    @model_validator(mode="before")
    @classmethod
    def _with_meaning(cls, data: Any) -> Any:
        # Every code carries its meaning however it was made (c2pa's output, or genseal's
        # own codes for files c2pa cannot read).
        if isinstance(data, dict) and not data.get("meaning") and data.get("code"):
            return {**data, "meaning": status_meaning(str(data["code"]))}
        return data


class CertificateInfo(BaseModel):
    """A certificate as c2pa read it: names in full (RFC 4514) and by their parts."""

    subject: str | None = Field(default=None, description="distinguished name, RFC 4514")
    issuer: str | None = Field(default=None, description="issuer's distinguished name, RFC 4514")
    common_name: str | None = None
    organization: str | None = None
    issuer_common_name: str | None = None
    issuer_organization: str | None = None
    serial_number: str | None = None
    not_before: dt.datetime | None = None
    not_after: dt.datetime | None = None


class TimeStamp(BaseModel):
    """The RFC 3161 time-stamp of the signature, apart from the signature itself.

    A time-stamp is a time-stamp authority's signed statement that the signature existed at
    ``time``: with one that is trusted, a manifest stays valid after its signing certificate
    expires. Without one nothing proves when the manifest was signed.
    """

    present: bool = Field(default=False, description="whether the signature carries one")
    time: dt.datetime | None = Field(
        default=None,
        description="the time it attests, trusted or not (null when it cannot be read); "
        "signed_at carries it only when validated and trusted",
    )
    authority: str | None = Field(default=None, description="common name of the TSA")
    authority_organization: str | None = None
    authority_subject: str | None = Field(default=None, description="the TSA's DN, RFC 4514")
    authority_issuer: str | None = Field(default=None, description="who issued the TSA's cert")
    validated: bool = Field(
        default=False, description="it covers this signature (timeStamp.validated)"
    )
    trusted: bool = Field(
        default=False, description="the TSA is on the verifier's trust list (timeStamp.trusted)"
    )
    status_codes: list[StatusCode] = Field(
        default_factory=list, description="every timeStamp.* status c2pa reported"
    )


class IngredientReport(BaseModel):
    """One ingredient of a manifest and, when it has Content Credentials of its own, what its
    manifest says and whether it holds; its own ingredients nest below it."""

    title: str | None = None
    relationship: str | None = Field(default=None, description="parentOf, componentOf, inputTo")
    format: str | None = None
    label: str | None = Field(default=None, description="the ingredient assertion's label")
    manifest_label: str | None = Field(
        default=None, description="label of the ingredient's own manifest; null when it has none"
    )
    data_types: list[str] = Field(
        default_factory=list, description="e.g. c2pa.types.model for a model ingredient"
    )
    validation_state: C2paState = Field(
        description="trusted / valid / invalid as c2pa validated the ingredient's manifest "
        "here; absent when the ingredient carries no manifest"
    )
    failures: list[str] = Field(default_factory=list, description="failure codes")
    status_codes: list[StatusCode] = Field(
        default_factory=list, description="the failures with c2pa's explanation and meaning"
    )
    informational: list[StatusCode] = Field(default_factory=list)
    recorded_failures: list[str] = Field(
        default_factory=list,
        description="failure codes the parent recorded when it took this ingredient in "
        "(its validation status then); today's validation is validation_state",
    )
    signer: str | None = None
    signer_organization: str | None = None
    issuer: str | None = None
    claim_generator: str | None = None
    signed_at: dt.datetime | None = None
    digital_source_type: str | None = None
    ingredients: list[IngredientReport] = Field(default_factory=list)
    unexpanded: str | None = Field(
        default=None,
        description="why this ingredient's own ingredients are not listed (its manifest is "
        "already one of its ancestors, or the tree is too deep); null when they are",
    )


class IdentityAssertion(BaseModel):
    """A CAWG identity assertion (``cawg.identity``): a named actor's own signature over
    parts of the manifest, separate from the claim generator's."""

    label: str
    sig_type: str | None = Field(
        default=None, description="cawg.x509.cose or cawg.identity_claims_aggregation"
    )
    referenced_assertions: list[str] = Field(
        default_factory=list, description="the assertions the actor signed for"
    )
    signer: str | None = Field(default=None, description="common name of the actor's credential")
    signer_organization: str | None = None
    issuer: str | None = Field(
        default=None, description="the credential's issuer (a DID for claims aggregation)"
    )
    verified_identities: list[dict[str, Any]] = Field(
        default_factory=list, description="identities an aggregator verified (claims aggregation)"
    )
    well_formed: bool = Field(default=False, description="cawg.identity.well-formed reported")
    trusted: bool = Field(default=False, description="cawg.identity.trusted reported")
    status_codes: list[StatusCode] = Field(
        default_factory=list, description="every status c2pa reported for this assertion"
    )
    data: dict[str, Any] = Field(default_factory=dict, description="the assertion as c2pa gives it")


class Creator(BaseModel):
    """Who the manifest says made the content: CAWG identity assertions and schema.org
    CreativeWork authors. What a CreativeWork says is only the claim generator's word."""

    identities: list[IdentityAssertion] = Field(default_factory=list)
    authors: list[dict[str, Any]] = Field(
        default_factory=list, description="author entries of stds.schema-org.CreativeWork"
    )
    creative_work: dict[str, Any] | None = Field(
        default=None, description="the stds.schema-org.CreativeWork assertion"
    )


class C2paReport(BaseModel):
    """The Content Credentials of the file, as read and validated by c2pa.

    ``trusted``: valid and signed under one of the verifier's trust anchors; ``valid``: intact
    but the signer is not trusted here; ``invalid``: present but broken (``status_codes`` say
    how), its content must not be relied on; ``absent``: none embedded (a remote manifest that
    could not be fetched offline also reads as absent, with ``manifest.inaccessible``).

    With a sidecar, c2pa validates the file against the sidecar alone (an embedded manifest is
    then ignored): a sidecar made for other bytes reads ``invalid`` with
    ``assertion.dataHash.mismatch``.
    """

    state: C2paState
    source: ManifestSource | None = Field(
        default=None,
        description="where the manifest came from: embedded in the file, or a .c2pa sidecar "
        "given with it (such as GET /v1/manifests/{id} serves); null when there is none",
    )
    status_codes: list[StatusCode] = Field(
        default_factory=list, description="validation failures of the active manifest"
    )
    informational: list[StatusCode] = Field(default_factory=list)
    success_codes: list[str] = Field(
        default_factory=list,
        description="distinct success codes, e.g. signingCredential.trusted, "
        "claimSignature.validated, assertion.dataHash.match",
    )
    successes: list[StatusCode] = Field(
        default_factory=list,
        description="the success statuses in full (explanation, meaning), one per code and part",
    )
    reason: str | None = Field(
        default=None,
        description="why the state is what it is, in words (always set for absent and "
        "invalid, e.g. no manifest embedded, remote manifest not fetched)",
    )
    warnings: list[str] = Field(
        default_factory=list,
        description="what an auditor must know before relying on this (e.g. an intact "
        "signature by a signer who is not trusted here)",
    )
    remote_manifest: str | None = Field(
        default=None, description="URL of a remote manifest the file points to"
    )
    manifest_label: str | None = None
    signer: str | None = Field(default=None, description="common name of the signing certificate")
    signer_organization: str | None = None
    issuer: str | None = Field(default=None, description="who issued the signing certificate")
    signing_certificate: CertificateInfo | None = Field(
        default=None, description="the signing certificate: subject and issuer in full"
    )
    signature_algorithm: str | None = Field(default=None, description="e.g. es256, ps256")
    signed_at: dt.datetime | None = Field(
        default=None,
        description="when the manifest was signed, as far as anything proves it: the time of "
        "its RFC 3161 time-stamp when that holds and its TSA is trusted (see time_stamp); "
        "null otherwise",
    )
    time_stamp: TimeStamp = Field(default_factory=TimeStamp)
    claim_generator: str | None = None
    title: str | None = None
    actions: list[dict[str, Any]] = Field(default_factory=list)
    digital_source_type: str | None = None
    ingredients: list[IngredientReport] = Field(
        default_factory=list,
        description="each ingredient with its own manifest's signer, state and failures, "
        "and its own ingredients nested",
    )
    moderation: dict[str, Any] | None = Field(
        default=None, description="the org.genseal.moderation assertion"
    )
    soft_binding: dict[str, Any] | None = Field(
        default=None, description="the c2pa.soft-binding assertion"
    )
    training_mining: dict[str, Any] | None = Field(
        default=None,
        description="the cawg.training-mining assertion: whether AI training, generative "
        "training, inference and data mining on the content are allowed",
    )
    creator: Creator | None = Field(
        default=None, description="CAWG identity assertions and CreativeWork authors, if any"
    )
