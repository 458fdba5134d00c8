"""`DiffusersBackend`: the ImageBackend that runs diffusers pipelines (tiny, local or hub).

One text-to-image pipeline is loaded; the image-to-image pipeline is derived from it with
`AutoPipelineForImage2Image.from_pipe` on the first image-to-image call, so both share the same
weights in memory.

Reproducibility: image k of a request is drawn from its own `torch.Generator` seeded `seed + k`,
so seed 42 with n=4 gives, as its third image, the image seed 44 gives with n=1 (equal up to
float rounding between batch sizes, at most 1/255 here). Generators live on the CPU rather than
on the device: the initial noise for a seed is then the same on CPU, CUDA and MPS (diffusers'
own advice); the latents are moved to the device once.

Known defaults (steps, guidance) per model id are in KNOWN_DEFAULTS; any other model gets
30 steps at guidance 7.5, and its size from its own config (UNet sample size x VAE scale).
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Final

import numpy as np
from PIL import Image

from gen._backend import GenerationOutput, GenerationParams, ModelDefaults, resolve_params
from gen._models import ModelRef, download_hint, local_model_version, resolve_model
from gen._tiny import TINY_SEED, build_tiny_pipeline, new_tiny_pipeline, tiny_model_version
from genseal.errors import ConfigError, GenerationError, ModelError

__all__ = ["FALLBACK_STEPS", "KNOWN_DEFAULTS", "DiffusersBackend", "default_device", "defaults_for"]

# Distilled "turbo" models are trained for 1-4 steps without classifier-free guidance; their
# model cards, not their configs, say so, hence a table. Sizes here override the config's.
KNOWN_DEFAULTS: Final[dict[str, ModelDefaults]] = {
    "genseal/tiny-sd": ModelDefaults(steps=4, width=512, height=512, guidance_scale=7.5),
    "stabilityai/sd-turbo": ModelDefaults(steps=1, width=512, height=512, guidance_scale=0.0),
    "stabilityai/sdxl-turbo": ModelDefaults(steps=1, width=512, height=512, guidance_scale=0.0),
}
FALLBACK_STEPS: Final = 30
FALLBACK_GUIDANCE: Final = 7.5
FALLBACK_SIDE: Final = 512

_DTYPES: Final = ("float32", "float16", "bfloat16")


class DiffusersBackend:
    """A loaded diffusers pipeline behind the ImageBackend seam.

    Calls are serialised per backend: a diffusers scheduler keeps per-call state (timesteps,
    step index), so two concurrent calls on one pipeline would corrupt each other.
    """

    def __init__(
        self,
        pipeline: Any,
        *,
        model_id: str,
        model_version: str,
        defaults: ModelDefaults | None = None,
    ) -> None:
        """Wrap a text-to-image pipeline already on its device (see `load` for the usual way)."""
        self._text2img = pipeline
        self._text2img.set_progress_bar_config(disable=True)
        self._img2img_derived = False
        self._img2img_pipeline: Any | None = None
        self._derive_lock = threading.Lock()
        self._model_id = model_id
        self._model_version = model_version
        self._device = str(pipeline.device)
        self._defaults = defaults or defaults_for(model_id, pipeline)
        self._lock = threading.Lock()

    @classmethod
    def load(
        cls,
        spec: str,
        *,
        device: str | None = None,
        dtype: str | None = None,
        offline: bool = True,
        cache_dir: Path | None = None,
    ) -> DiffusersBackend:
        """Load `spec` (tiny, a directory or a Hugging Face id) onto `device`.

        `device` defaults to cuda, else mps, else cpu; `dtype` to float16 on cuda and float32
        elsewhere (half precision on CPU is slow or unsupported, on MPS prone to NaN VAEs).
        """
        ref = resolve_model(spec, cache_dir=cache_dir, offline=offline)
        target = _check_device(device) if device else default_device()
        torch_dtype = _torch_dtype(dtype, target)
        with _quiet_loading():
            if ref.kind == "tiny":
                return cls._load_tiny(target, torch_dtype)
            pipeline = _from_pretrained(ref, torch_dtype, cache_dir=cache_dir, offline=offline)
            try:
                pipeline.to(target)
            except Exception as exc:
                raise ModelError(f"cannot move {ref.model_id} to {target}: {exc}") from exc
        if ref.kind == "hub":
            if ref.revision is None:  # just downloaded: the snapshot is in the cache now
                ref = resolve_model(ref.model_id, cache_dir=cache_dir, offline=True)
            version = ref.revision or "unknown"
        else:
            assert ref.path is not None
            version = local_model_version(ref.path)
        return cls(pipeline, model_id=ref.model_id, model_version=version)

    @classmethod
    def _load_tiny(cls, device: str, torch_dtype: Any) -> DiffusersBackend:
        import torch

        if device == "cpu" and torch_dtype == torch.float32:
            shared = build_tiny_pipeline(TINY_SEED)
            # A scheduler of its own: the weights are shared read-only between backends, the
            # scheduler's per-call state must not be.
            scheduler = type(shared.scheduler).from_config(shared.scheduler.config)
            # The same class over the same modules (from_pipe would re-cast them, and warn).
            pipeline = type(shared)(
                **{**shared.components, "scheduler": scheduler}, requires_safety_checker=False
            )
        else:
            # Moving the shared pipeline would move it under every other user: build a copy.
            pipeline = new_tiny_pipeline(TINY_SEED).to(device=device, dtype=torch_dtype)
        version = tiny_model_version(pipeline, TINY_SEED)
        return cls(pipeline, model_id="genseal/tiny-sd", model_version=version)

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def model_version(self) -> str:
        return self._model_version

    @property
    def device(self) -> str:
        return self._device

    @property
    def defaults(self) -> ModelDefaults:
        return self._defaults

    @property
    def supports_image_to_image(self) -> bool:
        return self._img2img is not None

    @property
    def _img2img(self) -> Any | None:
        # Derived on first use: diffusers' auto-pipeline tables import every pipeline family,
        # a second of start that a text-to-image run never needs.
        with self._derive_lock:
            if not self._img2img_derived:
                from diffusers import AutoPipelineForImage2Image

                try:
                    derived = AutoPipelineForImage2Image.from_pipe(self._text2img)
                    derived.set_progress_bar_config(disable=True)
                except ValueError:
                    # No image-to-image counterpart for this pipeline class: text-to-image only.
                    derived = None
                self._img2img_pipeline, self._img2img_derived = derived, True
            return self._img2img_pipeline

    @property
    def pipeline(self) -> Any:
        """The text-to-image pipeline (for inspection; calls must go through `generate`)."""
        return self._text2img

    def generate(self, params: GenerationParams) -> GenerationOutput:
        import torch

        request = resolve_params(params, self._defaults)
        if request.init_image is not None and self._img2img is None:
            raise ModelError(
                f"model {self._model_id} has no image-to-image pipeline",
                hint="use a Stable Diffusion family model for image-to-image",
            )
        generators = [torch.Generator("cpu").manual_seed(seed) for seed in request.seeds]
        kwargs: dict[str, Any] = {
            "prompt": request.prompt,
            "num_inference_steps": request.steps,
            "guidance_scale": request.guidance_scale,
            "num_images_per_prompt": request.n,
            "generator": generators,
            # numpy rather than PIL: non-finite pixels are detected instead of becoming black.
            "output_type": "np",
        }
        if request.negative_prompt:
            kwargs["negative_prompt"] = request.negative_prompt
        if params.on_step is not None:
            kwargs["callback_on_step_end"] = _step_reporter(params.on_step)
        if request.init_image is None:
            pipeline = self._text2img
            kwargs.update(width=request.width, height=request.height)
        else:
            pipeline = self._img2img
            kwargs.update(image=request.init_image, strength=request.strength)

        with self._lock:
            try:
                result = pipeline(**kwargs)
            except Exception as exc:
                raise GenerationError(
                    f"{self._model_id} failed while generating: {type(exc).__name__}: {exc}"
                ) from exc
        images = _to_pil(result.images, self._model_id)
        if len(images) != request.n:
            raise GenerationError(
                f"{self._model_id} returned {len(images)} images where {request.n} were asked for"
            )
        return GenerationOutput(
            images=images,
            seeds=request.seeds,
            steps=request.steps,
            width=images[0].width,
            height=images[0].height,
            guidance_scale=request.guidance_scale,
            strength=request.strength,
        )


def default_device() -> str:
    """cuda if available, else mps, else cpu."""
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def defaults_for(model_id: str, pipeline: Any) -> ModelDefaults:
    """The table's defaults for a known model id, else generic ones sized from the config."""
    known = KNOWN_DEFAULTS.get(model_id.lower())
    if known is not None:
        return known
    side = _native_side(pipeline)
    return ModelDefaults(
        steps=FALLBACK_STEPS, width=side, height=side, guidance_scale=FALLBACK_GUIDANCE
    )


def _native_side(pipeline: Any) -> int:
    # The denoiser's sample size is in latent pixels; the VAE scale factor turns it into image
    # pixels (SD 1.x 64 x 8 = 512, SD 2.x 96 x 8 = 768, SDXL 128 x 8 = 1024).
    denoiser = getattr(pipeline, "unet", None) or getattr(pipeline, "transformer", None)
    sample = getattr(getattr(denoiser, "config", None), "sample_size", None)
    scale = getattr(pipeline, "vae_scale_factor", None)
    if isinstance(sample, int) and isinstance(scale, int) and sample > 0 and scale > 0:
        side = sample * scale
        if 64 <= side <= 2048 and side % 8 == 0:
            return side
    return FALLBACK_SIDE


def _check_device(device: str) -> str:
    import torch

    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ConfigError(f"invalid torch device {device!r}: {exc}") from exc
    available = {
        "cpu": True,
        "cuda": torch.cuda.is_available(),
        "mps": torch.backends.mps.is_available(),
    }
    if not available.get(parsed.type, False):
        raise ConfigError(
            f"device {device!r} is not available here",
            hint=f"available: {', '.join(k for k, ok in available.items() if ok)}",
        )
    return str(parsed)


def _torch_dtype(dtype: str | None, device: str) -> Any:
    import torch

    if dtype is None:
        return torch.float16 if device.startswith("cuda") else torch.float32
    if dtype not in _DTYPES:
        raise ConfigError(f"unknown dtype {dtype!r}", hint=f"use one of {', '.join(_DTYPES)}")
    if dtype == "float16" and device == "cpu":
        raise ConfigError("float16 is not supported on the CPU", hint="use float32 or bfloat16")
    return getattr(torch, dtype)


def _from_pretrained(
    ref: ModelRef, torch_dtype: Any, *, cache_dir: Path | None, offline: bool
) -> Any:
    from diffusers import AutoPipelineForText2Image

    source = str(ref.path) if ref.path is not None else ref.model_id
    kwargs: dict[str, Any] = {"torch_dtype": torch_dtype}
    if ref.path is None:
        kwargs.update(cache_dir=cache_dir, local_files_only=offline)
    else:
        kwargs["local_files_only"] = True
        kwargs.update(_loading_options(ref.path, torch_dtype))
    try:
        pipeline = AutoPipelineForText2Image.from_pretrained(source, **kwargs)
    except Exception as exc:
        hint = download_hint(ref.model_id) if ref.kind == "hub" else None
        raise ModelError(
            f"cannot load model {ref.model_id}: {type(exc).__name__}: {exc}", hint=hint
        ) from exc
    # A freshly downloaded model skipped _loading_options: drop its checker after the fact.
    if getattr(pipeline, "safety_checker", None) is not None:
        pipeline.safety_checker = None
    return pipeline


def _loading_options(path: Path, torch_dtype: Any) -> dict[str, Any]:
    import torch

    options: dict[str, Any] = {}
    try:
        index = json.loads((path / "model_index.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot read {path / 'model_index.json'}: {exc}") from exc
    if isinstance(index, dict) and "safety_checker" in index:
        # genseal screens every output itself; diffusers' checker blanks images in place.
        options.update(safety_checker=None, requires_safety_checker=False)
    # Half-precision weight files ("*.fp16.safetensors") are half the bytes to read; use them
    # for a float16 load, or when they are all that was downloaded.
    fp16 = any(path.glob("*/*.fp16.safetensors"))
    full = any(p for p in path.glob("*/*.safetensors") if ".fp16." not in p.name) or any(
        path.glob("*/*.bin")
    )
    if fp16 and (torch_dtype == torch.float16 or not full):
        options["variant"] = "fp16"
    return options


def _to_pil(result: Any, model_id: str) -> list[Image.Image]:
    if isinstance(result, list) and result and isinstance(result[0], Image.Image):
        return [image.convert("RGB") for image in result]  # a pipeline that ignored output_type
    images = np.asarray(result)
    if images.ndim != 4 or images.shape[-1] not in (1, 3, 4):
        raise GenerationError(f"{model_id} returned images of unexpected shape {images.shape}")
    if not np.isfinite(images).all():
        raise GenerationError(
            f"{model_id} produced non-finite pixels (NaN/inf)",
            hint="half-precision VAEs overflow on some inputs: try dtype float32",
        )
    # Same rounding as diffusers' own numpy_to_pil.
    pixels = (np.clip(images, 0.0, 1.0) * 255).round().astype(np.uint8)
    return [
        Image.fromarray(p.squeeze(-1) if p.shape[-1] == 1 else p).convert("RGB") for p in pixels
    ]


@contextlib.contextmanager
def _quiet_loading() -> Iterator[None]:
    # Loading draws "Loading pipeline components" and weight bars on stderr; a service has no
    # terminal to draw on. Restore the caller's choice afterwards.
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    previous = (
        diffusers_logging.is_progress_bar_enabled(),
        transformers_logging.is_progress_bar_enabled(),
    )
    diffusers_logging.disable_progress_bar()
    transformers_logging.disable_progress_bar()
    try:
        yield
    finally:
        if previous[0]:
            diffusers_logging.enable_progress_bar()
        if previous[1]:
            transformers_logging.enable_progress_bar()


def _step_reporter(on_step: Callable[[int, int], None]) -> Any:
    def callback(pipeline: Any, step: int, _timestep: Any, tensors: dict[str, Any]) -> Any:
        on_step(step + 1, int(getattr(pipeline, "num_timesteps", 0) or step + 1))
        return tensors

    return callback
