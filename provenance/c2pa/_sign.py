"""C2PA signing: one manifest per released image, made with c2pa-python 0.38.

What a genseal manifest says (see DESIGN "Components and facts" for why each choice):

- ``c2pa.actions``: ``c2pa.created`` (text-to-image) or, for image-to-image, the input as a
  ``parentOf`` ingredient, ``c2pa.opened`` pointing at it by ``parameters.ingredientIds`` and
  ``c2pa.edited``; the generating action carries the IPTC digital source type, the software
  agent and the model id;
- ``org.genseal.moderation``: the moderation attestation, verbatim, plus the genseal id;
- ``c2pa.soft-binding``: the watermark algorithm and payload, so a stripped copy can be tied
  back to this manifest through our store;
- per deployment (`ManifestOptions`): ``cawg.training-mining`` (e.g. "do not train") and the
  platform as creator, a ``stds.schema-org.CreativeWork`` author. (A CAWG X.509 identity
  assertion would name it with a signature of its own, but c2pa-python 0.38 adds one only for a
  signer built from its settings, and then reads its credential as untrusted,
  ``cawg.x509.credential.untrusted``, whatever trust is configured: the manifest would verify
  Valid, never Trusted.)

No thumbnail (the default one is upscaled to 1024 px and costs ~50 ms and 100 KB). An RFC 3161
time-stamp when a TSA is configured: it keeps the manifest verifiable after the signing
certificate expires; a TSA that cannot be reached fails the signing (never an image signed
without the time-stamp the deployment asked for).

Before the first image, the signer signs a test image and verifies it against its own root:
an identity, plugin or TSA that would produce manifests verifiers reject is refused at start-up.
"""

from __future__ import annotations

import io
import json
import os
import re
import threading
import uuid
from dataclasses import dataclass
from typing import Any, Literal, Protocol, Self

import c2pa
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, model_validator

from genseal import __version__
from genseal.errors import SigningError
from provenance._media import SIGNABLE_MIMES, sniff_mime
from provenance.identity import DEFAULT_ALLOWED_EKUS, RemoteSigner, SigningIdentity

__all__ = [
    "MODERATION_LABEL",
    "SOFT_BINDING_LABEL",
    "TRAINED_ALGORITHMIC_MEDIA",
    "TRAINING_MINING_LABEL",
    "C2paSigner",
    "IngredientSpec",
    "ManifestOptions",
    "ManifestSigner",
    "SealClaim",
    "SignedAsset",
]

TRAINED_ALGORITHMIC_MEDIA = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
MODERATION_LABEL = "org.genseal.moderation"
SOFT_BINDING_LABEL = "c2pa.soft-binding"
TRAINING_MINING_LABEL = "cawg.training-mining"
CREATIVE_WORK_LABEL = "stds.schema-org.CreativeWork"
MODEL_PARAMETER = "org.genseal.model_id"
# The uses the CAWG training-and-data-mining assertion names.
_MINING_USES = (
    "cawg.ai_inference",
    "cawg.ai_generative_training",
    "cawg.ai_training",
    "cawg.data_mining",
)
_INGREDIENT_ID = "genseal-input"

_SIGNER_SETTINGS: dict[str, Any] = {
    "builder": {"thumbnail": {"enabled": False}},
    # Signing verifies its own output; nothing in that check may reach the network.
    "verify": {"remote_manifest_fetch": False, "ocsp_fetch": False},
}
# c2pa 0.38 reports every failure of the time-stamp exchange (unreachable, HTTP error, a reply
# it cannot decode, a nonce or imprint mismatch) as "Signature: internal error (...)", while
# credential problems read "invalid signing credentials" or "not valid at time of signing".
_TSA_FAILURE = re.compile(
    r"internal error|decode error|time.?stamp|nonce|http|connection|timeout|refused",
    re.IGNORECASE,
)
_MIME_ALIASES = {"image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg", "image/x-png": "image/png"}


class ManifestOptions(BaseModel):
    """Assertions a deployment adds to every manifest it signs."""

    model_config = ConfigDict(frozen=True)

    training_mining: Literal["allowed", "notAllowed", "constrained"] | None = Field(
        default=None,
        description="cawg.training-mining use for AI training, generative training, inference "
        "and data mining: notAllowed is 'do not train'",
    )
    creator_name: str | None = Field(
        default=None, description="the platform named as creator (CreativeWork author)"
    )
    creator_url: str | None = None


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
    """Signs through c2pa-python with a `SigningIdentity`: its key, or a `RemoteSigner` that
    holds it; the algorithm follows the identity (ES256/384/512, PS256/384/512, Ed25519).

    Thread-safe; fork-safe: the c2pa Context holding the signer is built per process, because
    one made before ``fork`` is invalid in the child.
    """

    def __init__(
        self,
        identity: SigningIdentity,
        *,
        remote: RemoteSigner | None = None,
        tsa_url: str | None = None,
        options: ManifestOptions | None = None,
        extra_anchors_pem: bytes = b"",
        self_test: bool = True,
    ) -> None:
        if remote is None and identity.private_key_pem is None:
            raise SigningError(
                f"the signing identity ({identity.location}) has no private key and no remote "
                "signer was given",
                hint="set GENSEAL_SIGNING_KEY, or GENSEAL_SIGNER_PLUGIN for a KMS/HSM",
            )
        if tsa_url is not None and not tsa_url.startswith(("http://", "https://")):
            raise SigningError(f"the time-stamp authority URL {tsa_url!r} is not http(s)")
        self._identity = identity
        self._remote = remote
        self._tsa_url = tsa_url
        self._options = options or ManifestOptions()
        self._extra_anchors = extra_anchors_pem
        self._lock = threading.Lock()
        self._context: c2pa.Context | None = None
        self._pid = -1
        self._remote_failure = threading.local()
        # Built now so a bad identity fails at start-up rather than on the first request.
        self._process_context()
        if self_test:
            self._check_round_trip()

    @property
    def identity(self) -> SigningIdentity:
        return self._identity

    @property
    def tsa_url(self) -> str | None:
        return self._tsa_url

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
        definition = _definition(label, mime, claim, self._options)
        context = self._process_context()
        out = io.BytesIO()
        self._remote_failure.error = None
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
            raise self._error(exc) from exc
        except (ValueError, TypeError) as exc:
            raise SigningError(f"C2PA signing failed: {exc}") from exc
        return SignedAsset(out.getvalue(), label, bytes(store), mime)

    def _check_round_trip(self) -> None:
        """Sign a test image and read it back against the identity's own root: Trusted, or a
        SigningError naming what verifiers would report."""
        buffer = io.BytesIO()
        Image.new("RGB", (16, 16), (128, 128, 128)).save(buffer, format="PNG")
        claim = SealClaim(
            genseal_id="gs_selftest",
            title="genseal signer self-test",
            software_agent=f"genseal {__version__}",
            model_id="none",
            kind="created",
            soft_binding_alg="none",
            soft_binding_value="",
        )
        signed = self.sign(buffer.getvalue(), "image/png", claim)
        settings: dict[str, Any] = {
            **_SIGNER_SETTINGS,
            "trust": {
                "trust_anchors": (
                    self._identity.root_cert_pem + b"\n" + self._extra_anchors
                ).decode()
            },
        }
        settings["trust"].update(_trust_config(self._identity))
        try:
            context = c2pa.Context.from_dict(settings)
            with c2pa.Reader("image/png", io.BytesIO(signed.data), context=context) as reader:
                store = json.loads(reader.json())
        except (c2pa.C2paError, ValueError) as exc:
            raise SigningError(f"the signer's test manifest cannot be read back: {exc}") from exc
        state = str(store.get("validation_state", ""))
        if state != "Trusted":
            failures = (store.get("validation_results") or {}).get("activeManifest", {})
            codes = [
                f"{f.get('code')}: {f.get('explanation')}" for f in failures.get("failure", [])
            ]
            raise SigningError(
                f"the signing identity ({self._identity.location}) signs manifests that verify "
                f"{state or 'unreadable'} against its own root: "
                + ("; ".join(codes) or "no reason given"),
                hint="check the certificate chain, the root and the key (or the signer plugin)",
            )

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
        identity = self._identity
        alg = getattr(c2pa.C2paSigningAlg, identity.alg)
        settings = {**_SIGNER_SETTINGS, "trust": _trust_config(identity)}
        try:
            if self._remote is not None:
                signer = c2pa.Signer.from_callback(
                    self._remote_sign, alg, identity.chain_pem.decode("ascii"), self._tsa_url
                )
            else:
                assert identity.private_key_pem is not None
                info = c2pa.C2paSignerInfo(
                    alg, identity.chain_pem, identity.private_key_pem, self._tsa_url
                )
                signer = c2pa.Signer.from_info(info)
            c2pa_settings = c2pa.Settings.from_dict(settings)
            try:
                return c2pa.Context(settings=c2pa_settings, signer=signer)
            finally:
                c2pa_settings.close()
        except c2pa.C2paError as exc:
            raise self._error(exc) from exc
        except (ValueError, TypeError) as exc:
            raise SigningError(f"cannot set up the C2PA signer: {exc}") from exc

    def _remote_sign(self, data: bytes) -> bytes:
        assert self._remote is not None
        try:
            return self._remote.sign(data)
        except Exception as exc:
            # c2pa turns any callback failure into a bare "-1"; keep the plugin's own reason
            # for the error genseal raises.
            self._remote_failure.error = exc
            raise

    def _error(self, exc: c2pa.C2paError) -> SigningError:
        remote = getattr(self._remote_failure, "error", None)
        if remote is not None:
            return SigningError(f"the remote signer failed: {remote}")
        return _signing_error(exc, self._identity, self._tsa_url)


def _trust_config(identity: SigningIdentity) -> dict[str, str]:
    """c2pa's allowed-EKU list, set only when the identity needs more than c2pa's default."""
    if identity.allowed_ekus == DEFAULT_ALLOWED_EKUS:
        return {}
    return {"trust_config": "\n".join(sorted(identity.allowed_ekus)) + "\n"}


def _definition(
    label: str, mime: str, claim: SealClaim, options: ManifestOptions
) -> dict[str, Any]:
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
    assertions: list[dict[str, Any]] = []
    if options.training_mining is not None:
        entries = {use: {"use": options.training_mining} for use in _MINING_USES}
        assertions.append({"label": TRAINING_MINING_LABEL, "data": {"entries": entries}})
    if options.creator_name:
        author: dict[str, Any] = {"@type": "Organization", "name": options.creator_name}
        if options.creator_url:
            author["url"] = options.creator_url
        assertions.append(
            {
                "label": CREATIVE_WORK_LABEL,
                "data": {
                    "@context": "https://schema.org",
                    "@type": "CreativeWork",
                    "author": [author],
                },
            }
        )
    return {
        "label": label,
        "title": claim.title,
        "format": mime,
        "claim_generator_info": [{"name": "genseal", "version": __version__}],
        "assertions": [
            *assertions,
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


def _signing_error(
    exc: c2pa.C2paError, identity: SigningIdentity, tsa_url: str | None
) -> SigningError:
    detail = str(exc) or type(exc).__name__
    if tsa_url is not None and _TSA_FAILURE.search(detail):
        return SigningError(
            f"the time-stamp authority {tsa_url} did not give a usable time-stamp: {detail}",
            hint="nothing was signed; check GENSEAL_TSA_URL and that the TSA is reachable",
        )
    if isinstance(exc, c2pa.C2paError.Signature):
        return SigningError(
            f"C2PA rejected the signing credentials: {detail}",
            hint=f"check the certificate chain, key or signer plugin ({identity.location})",
        )
    if isinstance(exc, c2pa.C2paError.Io):
        return SigningError(f"C2PA could not read or write the image: {detail}")
    return SigningError(f"C2PA signing failed: {detail}")
