"""C2PA signing: one manifest per released image, made with c2pa-python 0.38.

What a genseal manifest says (see DESIGN "Components and facts" for why each choice):

- ``c2pa.actions``: ``c2pa.created`` (text-to-image) or, for image-to-image, the input as a
  ``parentOf`` ingredient, ``c2pa.opened`` pointing at it by ``parameters.ingredientIds`` and
  ``c2pa.edited``; the generating action carries the IPTC digital source type, the software
  agent and the model id;
- ``org.genseal.moderation``: the moderation attestation, verbatim, plus the genseal id;
- ``c2pa.soft-binding``: the watermark algorithm and payload, so a stripped copy can be tied
  back to this manifest through our store.

No thumbnail (the default one is upscaled to 1024 px and costs ~50 ms and 100 KB) and no
time-stamp authority (offline).
"""

from __future__ import annotations

import io
import json
import os
import threading
import uuid
from dataclasses import dataclass
from typing import Any, Literal, Protocol, Self

import c2pa
from pydantic import BaseModel, ConfigDict, Field, model_validator

from genseal import __version__
from genseal.errors import SigningError

from ._identity import SigningIdentity
from ._media import SIGNABLE_MIMES, sniff_mime

__all__ = [
    "MODERATION_LABEL",
    "SOFT_BINDING_LABEL",
    "TRAINED_ALGORITHMIC_MEDIA",
    "C2paSigner",
    "IngredientSpec",
    "ManifestSigner",
    "SealClaim",
    "SignedAsset",
]

TRAINED_ALGORITHMIC_MEDIA = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
MODERATION_LABEL = "org.genseal.moderation"
SOFT_BINDING_LABEL = "c2pa.soft-binding"
MODEL_PARAMETER = "org.genseal.model_id"
_INGREDIENT_ID = "genseal-input"

_SIGNER_SETTINGS: dict[str, Any] = {
    "builder": {"thumbnail": {"enabled": False}},
    # Signing verifies its own output; nothing in that check may reach the network.
    "verify": {"remote_manifest_fetch": False, "ocsp_fetch": False},
}
_MIME_ALIASES = {"image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg", "image/x-png": "image/png"}


class IngredientSpec(BaseModel):
    """The input image of an image-to-image request, recorded as the parent ingredient."""

    model_config = ConfigDict(frozen=True)

    data: bytes = Field(repr=False)
    mime: str
    title: str


class SealClaim(BaseModel):
    """Everything the manifest states about one released image."""

    model_config = ConfigDict(frozen=True)

    genseal_id: str
    title: str
    software_agent: str
    model_id: str
    kind: Literal["created", "edited"]
    digital_source_type: str = TRAINED_ALGORITHMIC_MEDIA
    moderation: dict[str, Any] = Field(default_factory=dict)
    soft_binding_alg: str
    soft_binding_value: str
    ingredient: IngredientSpec | None = None

    @model_validator(mode="after")
    def _ingredient_matches_kind(self) -> Self:
        # An edit without its parent would claim an edit of nothing; a creation with a parent
        # is an edit mislabelled. Both make manifests that mislead, so refuse them here.
        if self.kind == "edited" and self.ingredient is None:
            raise ValueError("kind='edited' needs the input image as `ingredient`")
        if self.kind == "created" and self.ingredient is not None:
            raise ValueError("kind='created' takes no ingredient; use kind='edited'")
        return self


@dataclass(frozen=True)
class SignedAsset:
    """The signed image and the manifest store embedded in it."""

    data: bytes
    manifest_label: str
    manifest_store: bytes
    mime: str


class ManifestSigner(Protocol):
    """Seal an image with a C2PA manifest."""

    def sign(self, image: bytes, mime: str, claim: SealClaim) -> SignedAsset: ...


class C2paSigner:
    """Signs with a `SigningIdentity` through c2pa-python (ES256, no TSA, no thumbnail).

    Thread-safe; fork-safe: the c2pa Context holding the signer is built per process, because
    one made before ``fork`` is invalid in the child.
    """

    def __init__(self, identity: SigningIdentity) -> None:
        self._identity = identity
        self._lock = threading.Lock()
        self._context: c2pa.Context | None = None
        self._pid = -1
        # Built now so a bad identity fails at start-up rather than on the first request.
        self._process_context()

    def sign(self, image: bytes, mime: str, claim: SealClaim) -> SignedAsset:
        mime = _normalise_mime(mime)
        if mime not in SIGNABLE_MIMES:
            raise SigningError(
                f"cannot sign {mime}: genseal seals {', '.join(SIGNABLE_MIMES)} only"
            )
        actual = sniff_mime(image)
        if actual != mime:
            raise SigningError(f"the image to sign was declared {mime} but its bytes are {actual}")
        label = f"urn:c2pa:{uuid.uuid4()}"
        definition = _definition(label, mime, claim)
        context = self._process_context()
        out = io.BytesIO()
        try:
            # A Builder signs once; a fresh one per image also keeps requests independent.
            with c2pa.Builder(definition, context=context) as builder:
                if claim.ingredient is not None:
                    builder.add_ingredient(
                        {
                            "title": claim.ingredient.title,
                            "relationship": "parentOf",
                            "label": _INGREDIENT_ID,
                        },
                        _normalise_mime(claim.ingredient.mime),
                        io.BytesIO(claim.ingredient.data),
                    )
                store = builder.sign(mime, io.BytesIO(image), out)
        except c2pa.C2paError as exc:
            raise _signing_error(exc, self._identity) from exc
        except (ValueError, TypeError) as exc:
            raise SigningError(f"C2PA signing failed: {exc}") from exc
        return SignedAsset(out.getvalue(), label, bytes(store), mime)

    def _process_context(self) -> c2pa.Context:
        pid = os.getpid()
        context = self._context
        if context is not None and self._pid == pid:
            return context
        with self._lock:
            if self._context is None or self._pid != pid:
                # The inherited context, if any, belongs to the parent: drop it without use
                # (c2pa-python detaches foreign-process handles instead of freeing them).
                self._context = self._build_context()
                self._pid = pid
            return self._context

    def _build_context(self) -> c2pa.Context:
        try:
            info = c2pa.C2paSignerInfo(
                c2pa.C2paSigningAlg.ES256,
                self._identity.chain_pem,
                self._identity.private_key_pem,
                None,
            )
            signer = c2pa.Signer.from_info(info)
            settings = c2pa.Settings.from_dict(_SIGNER_SETTINGS)
            try:
                return c2pa.Context(settings=settings, signer=signer)
            finally:
                settings.close()
        except c2pa.C2paError as exc:
            raise _signing_error(exc, self._identity) from exc
        except (ValueError, TypeError) as exc:
            raise SigningError(f"cannot set up the C2PA signer: {exc}") from exc


def _definition(label: str, mime: str, claim: SealClaim) -> dict[str, Any]:
    agent = {"name": claim.software_agent}
    parameters = {MODEL_PARAMETER: claim.model_id}
    actions: list[dict[str, Any]]
    if claim.kind == "created":
        actions = [
            {
                "action": "c2pa.created",
                "digitalSourceType": claim.digital_source_type,
                "softwareAgent": agent,
                "parameters": parameters,
            }
        ]
    else:
        actions = [
            {"action": "c2pa.opened", "parameters": {"ingredientIds": [_INGREDIENT_ID]}},
            {
                "action": "c2pa.edited",
                "digitalSourceType": claim.digital_source_type,
                "softwareAgent": agent,
                "parameters": parameters,
            },
        ]
    moderation = {**claim.moderation, "genseal_id": claim.genseal_id}
    try:
        # c2pa would fail later with an opaque message on a value JSON cannot carry.
        json.dumps(moderation, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise SigningError(f"the moderation attestation is not JSON-serialisable: {exc}") from exc
    return {
        "label": label,
        "title": claim.title,
        "format": mime,
        "claim_generator_info": [{"name": "genseal", "version": __version__}],
        "assertions": [
            {"label": "c2pa.actions", "data": {"actions": actions}},
            {"label": MODERATION_LABEL, "data": moderation},
            {
                "label": SOFT_BINDING_LABEL,
                "data": {
                    "alg": claim.soft_binding_alg,
                    "blocks": [{"scope": {}, "value": claim.soft_binding_value}],
                },
            },
        ],
    }


def _normalise_mime(mime: str) -> str:
    mime = mime.strip().lower()
    return _MIME_ALIASES.get(mime, mime)


def _signing_error(exc: c2pa.C2paError, identity: SigningIdentity) -> SigningError:
    detail = str(exc) or type(exc).__name__
    if isinstance(exc, c2pa.C2paError.Signature):
        return SigningError(
            f"C2PA rejected the signing credentials: {detail}",
            hint=f"check the identity in {identity.keys_dir} or run `genseal keys init --force`",
        )
    if isinstance(exc, c2pa.C2paError.Io):
        return SigningError(f"C2PA could not read or write the image: {detail}")
    return SigningError(f"C2PA signing failed: {detail}")
