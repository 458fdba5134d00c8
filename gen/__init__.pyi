"""Type stub of `gen`: the names below are imported on first use (see __init__.py)."""

from ._backend import GenerationOutput, GenerationParams, ImageBackend
from ._backend_diffusers import DiffusersBackend
from ._images import (
    MIME_TYPES,
    ImageFormat,
    decode_image,
    encode_image,
    extension,
    format_of,
    sniff_mime,
)
from ._models import resolve_model
from ._parts import ServiceParts, build_parts
from ._presets import PRESETS, Preset, get_preset
from ._requests import (
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
from ._reviews import ReviewRecord, ReviewStore
from ._screening import screen_prompt
from ._service import SealedGenerationService
from ._signing import build_signer, configured_identity, signing_root_pem
from ._verification import build_verifier, trust_anchors

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
