"""Generation: model backends, presets and the sealed-generation service."""

from gen._backend import GenerationOutput, GenerationParams, ImageBackend
from gen._backend_diffusers import DiffusersBackend
from gen._images import (
    MIME_TYPES,
    ImageFormat,
    decode_image,
    encode_image,
    extension,
    format_of,
    sniff_mime,
)
from gen._models import resolve_model
from gen._parts import ServiceParts, build_parts
from gen._presets import PRESETS, Preset, get_preset
from gen._requests import (
    ConsentAttestation,
    GenerationRequest,
    GenerationResult,
    HeldImage,
    RequestContext,
    ScreenResult,
    SealedImage,
    WithheldImage,
    parse_size,
)
from gen._reviews import ReviewRecord, ReviewStore
from gen._screening import screen_prompt
from gen._service import SealedGenerationService
from gen._signing import build_signer, configured_identity, signing_root_pem
from gen._verification import build_verifier, trust_anchors
from genseal.settings import Settings

__all__ = [
    "MIME_TYPES",
    "PRESETS",
    "ConsentAttestation",
    "DiffusersBackend",
    "GenerationOutput",
    "GenerationParams",
    "GenerationRequest",
    "GenerationResult",
    "HeldImage",
    "ImageBackend",
    "ImageFormat",
    "Preset",
    "RequestContext",
    "ReviewRecord",
    "ReviewStore",
    "ScreenResult",
    "SealedGenerationService",
    "SealedImage",
    "ServiceParts",
    "Settings",
    "WithheldImage",
    "build_parts",
    "build_signer",
    "build_verifier",
    "configured_identity",
    "decode_image",
    "encode_image",
    "extension",
    "format_of",
    "get_preset",
    "parse_size",
    "resolve_model",
    "screen_prompt",
    "signing_root_pem",
    "sniff_mime",
    "trust_anchors",
]
