"""The one exception tree of genseal.

Every package raises from this tree; the CLI maps it to exit codes and the HTTP app to status
codes in one handler each. A policy *block* is a decision, not an error, and is not here.

    GensealError                    exit 1, HTTP 500
    ├── InputError                  exit 2, HTTP 400   bad request or file from the caller
    │   ├── ImageInputError         exit 2, HTTP 400   unreadable, truncated or unsupported image
    │   ├── PayloadTooLargeError    exit 2, HTTP 413   bytes or pixels over the configured limit
    │   ├── NotFoundError           exit 2, HTTP 404   no such review (or other named record)
    │   ├── AuthenticationError     exit 2, HTTP 401   missing, unknown or disabled API key
    │   ├── ConflictError           exit 2, HTTP 409   an Idempotency-Key reused with another body
    │   └── RateLimitError          exit 2, HTTP 429   over the tenant's or address's rate limit
    ├── ConfigError                 exit 2, HTTP 500   settings or files genseal was given are wrong
    │   └── PolicyError             exit 2, HTTP 500   a policy file that fails to load or validate
    ├── ModelError                  exit 2, HTTP 400   unknown model, weights missing offline
    ├── GenerationError             exit 1, HTTP 500   the model failed while generating
    ├── CheckError                  exit 1, HTTP 500   a safety check could not run
    ├── QueueError                  exit 1, HTTP 503   no broker, or no worker serves the model
    └── ProvenanceError             exit 1, HTTP 500
        ├── SigningError            exit 1, HTTP 500   identity missing/invalid, C2PA signing failed
        ├── WatermarkError          exit 1, HTTP 500
        └── StoreError              exit 1, HTTP 503   the manifest store is unavailable
"""

from __future__ import annotations


class GensealError(Exception):
    """Root of every error genseal raises on purpose."""

    exit_code: int = 1
    http_status: int = 500
    code: str = "internal_error"

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class InputError(GensealError):
    exit_code = 2
    http_status = 400
    code = "invalid_request"


class ImageInputError(InputError):
    code = "invalid_image"


class PayloadTooLargeError(InputError):
    http_status = 413
    code = "payload_too_large"


class NotFoundError(InputError):
    http_status = 404
    code = "not_found"


class AuthenticationError(InputError):
    http_status = 401
    code = "invalid_api_key"


class ConflictError(InputError):
    http_status = 409
    code = "conflict"


class RateLimitError(InputError):
    http_status = 429
    code = "rate_limit_exceeded"

    def __init__(self, message: str, *, retry_after: int, limit: str) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.limit = limit


class ConfigError(GensealError):
    exit_code = 2
    code = "configuration_error"


class PolicyError(ConfigError):
    code = "policy_error"


class ModelError(GensealError):
    exit_code = 2
    http_status = 400
    code = "model_unavailable"


class GenerationError(GensealError):
    code = "generation_failed"


class CheckError(GensealError):
    code = "check_failed"


class QueueError(GensealError):
    http_status = 503
    code = "queue_unavailable"


class ProvenanceError(GensealError):
    code = "provenance_error"


class SigningError(ProvenanceError):
    code = "signing_failed"


class WatermarkError(ProvenanceError):
    code = "watermark_failed"


class StoreError(ProvenanceError):
    http_status = 503
    code = "store_unavailable"
