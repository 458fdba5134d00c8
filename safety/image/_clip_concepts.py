"""Concept image check: CLIP image embeddings against text embeddings of harmful concepts.

The architecture of diffusers' `StableDiffusionSafetyChecker` (a CLIP image encoder and
per-concept cosine thresholds), without its two habits we do not copy: its concepts are hidden
embeddings and its answer is one yes/no that blacks the image out. Here the concepts are plain
descriptions per category (readable, replaceable, versioned), and the check reports a finding
per category with the closest concept and its similarity; what happens to the image is policy.

No CLIP weights can be downloaded on an offline service, and a CLIP with random weights would
score noise, so without a configured local checkpoint every category reports NOT_CHECKED (with
how to configure one), never clean. Configured weights that fail to load are an error.

Cosine similarity is not a probability: its scale depends on the weights (image–text cosines of
a matching pair are roughly 0.2–0.35 for CLIP ViT models), so the thresholds need calibrating
per checkpoint on labelled images. `score` is the similarity clamped to [0, 1].
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from PIL import Image

from genseal.errors import CheckError, ConfigError

from .._findings import Category, CheckState, Finding, Stage
from .._lazy import Lazy

if TYPE_CHECKING:
    from ..policy import Policy

__all__ = ["ClipConceptCheck"]

logger = logging.getLogger(__name__)

# Bump when preprocessing, scoring or the default concepts change.
_CODE_VERSION = "1"
_HINT = "set GENSEAL_CLIP_WEIGHTS to a local open_clip checkpoint"
_DEFAULT_THRESHOLD = 0.25

# Descriptions rather than single words: CLIP was trained on captions, and a caption-like text
# sits closer to the images it describes than a bare keyword does.
DEFAULT_CONCEPTS: Mapping[Category, tuple[str, ...]] = MappingProxyType(
    {
        Category.SEXUAL: (
            "a photo of a naked person",
            "pornography",
            "explicit sexual activity",
            "exposed genitals",
            "exposed female breasts",
        ),
        Category.VIOLENCE: (
            "graphic gore",
            "a bloody wound",
            "a dead body",
            "a mutilated body",
            "a person being shot",
            "a person being beaten",
        ),
        Category.HATE: (
            "a swastika",
            "a nazi flag",
            "a burning cross",
            "a ku klux klan hood",
            "white supremacist propaganda",
        ),
        Category.SELF_HARM: (
            "self-harm cuts on a wrist",
            "a person cutting themselves",
            "a person attempting suicide",
            "a hanging noose",
        ),
        Category.ILLEGAL: (
            "illegal drugs",
            "lines of cocaine",
            "a person injecting heroin",
            "drug paraphernalia",
        ),
    }
)


class ClipConceptCheck:
    """Per-category cosine similarity of an image to concept descriptions (open_clip).

    `model` is an open_clip architecture name (`ViT-B-32`; `ViT-L-14-quickgelu` for OpenAI's
    weights) or `local-dir:PATH` (a directory with an `open_clip_config.json`, as open_clip
    repositories on the Hugging Face hub carry); `weights` a local state-dict checkpoint
    (.safetensors, .bin or .pt) for it, loaded strictly. `concepts` maps each category the check
    covers to its descriptions (default `DEFAULT_CONCEPTS`); a category flags when any of its
    concepts reaches the category's threshold. The model loads on first use (or `load()`),
    once, under a lock; a failed load is retried on the next call.
    """

    name = "clip_concepts"
    DEFAULT_CONCEPTS = DEFAULT_CONCEPTS

    def __init__(
        self,
        model: str | None = None,
        weights: str | Path | None = None,
        *,
        concepts: Mapping[Category, Sequence[str]] | None = None,
        thresholds: Mapping[Category, float] | None = None,
        default_threshold: float = _DEFAULT_THRESHOLD,
        device: str | None = None,
    ) -> None:
        if weights is not None and not model:
            raise ConfigError(
                "CLIP weights are configured without an architecture",
                hint="set GENSEAL_CLIP_MODEL to the open_clip architecture of the checkpoint",
            )
        if model and model.startswith("hf-hub:"):
            raise ConfigError(
                f"CLIP model {model!r} would be fetched from the network",
                hint="download it once and use local-dir:PATH with GENSEAL_CLIP_WEIGHTS",
            )
        chosen = dict(DEFAULT_CONCEPTS if concepts is None else concepts)
        self._concepts: dict[Category, tuple[str, ...]] = {}
        for category, texts in chosen.items():
            cleaned = tuple(dict.fromkeys(t.strip() for t in texts if t.strip()))
            if not cleaned:
                raise ConfigError(f"CLIP concepts for {Category(category).value} are empty")
            self._concepts[Category(category)] = cleaned
        if not self._concepts:
            raise ConfigError("the CLIP concept check needs at least one category of concepts")
        self.categories: tuple[Category, ...] = tuple(self._concepts)

        self.thresholds: dict[Category, float] = {}
        for category in self.categories:
            value = (thresholds or {}).get(category, default_threshold)
            if not 0.0 < value <= 1.0:
                raise ValueError(f"threshold for {category.value} must be within (0, 1]: {value}")
            self.thresholds[category] = float(value)

        self.model = model
        self.weights = None if weights is None else Path(weights).expanduser()
        self._device = device or "cpu"
        self._loaded: Lazy[_Loaded] = Lazy(self._build)
        self._open_clip_version = _open_clip_version()
        self._concepts_digest = hashlib.sha256(
            json.dumps({c.value: list(t) for c, t in self._concepts.items()}).encode()
        ).hexdigest()

    @classmethod
    def from_policy(
        cls,
        policy: Policy,
        *,
        model: str | None = None,
        weights: str | Path | None = None,
        concepts: Mapping[Category, Sequence[str]] | None = None,
        device: str | None = None,
    ) -> ClipConceptCheck:
        """Thresholds from the policy: `thresholds.clip_<category>` (e.g. `clip_sexual`), else
        `thresholds.clip`, else 0.25."""
        values = policy.thresholds
        default = values.get("clip", _DEFAULT_THRESHOLD)
        chosen = DEFAULT_CONCEPTS if concepts is None else concepts
        per_category = {
            Category(c): values.get(f"clip_{Category(c).value}", default) for c in chosen
        }
        return cls(
            model,
            weights,
            concepts=chosen,
            thresholds=per_category,
            default_threshold=default,
            device=device,
        )

    @property
    def concepts(self) -> dict[Category, tuple[str, ...]]:
        return dict(self._concepts)

    @property
    def configured(self) -> bool:
        """Whether weights are configured (without them every category is NOT_CHECKED)."""
        return self.weights is not None

    @property
    def version(self) -> str:
        loaded = self._loaded.value
        if self.weights is None:
            weights = "none"
        elif loaded is None:
            weights = "unloaded"
        else:
            weights = f"sha256.{loaded.weights_sha256[:12]}"
        return (
            f"{_CODE_VERSION}+open_clip.{self._open_clip_version}+{self._model_label()}"
            f"+weights.{weights}+concepts.{self._concepts_digest[:12]}"
        )

    def load(self) -> None:
        """Load the model now (e.g. at service start); `CheckError` if it cannot, `ConfigError`
        if no weights are configured."""
        self._ensure_loaded()

    def _ensure_loaded(self) -> _Loaded:
        if self.weights is None and self._loaded.value is None:
            raise ConfigError("no CLIP weights configured", hint=_HINT)
        return self._loaded.get()

    def _build(self) -> _Loaded:
        assert self.model is not None and self.weights is not None  # checked by the callers
        try:
            import open_clip
            import torch
            from open_clip.transform import PreprocessCfg, image_transform_v2
        except ImportError as exc:
            raise CheckError(
                "open-clip-torch is not installed", hint="pip install 'open-clip-torch>=2.24'"
            ) from exc
        weights = self.weights
        # Checked here, not left to open_clip: a value it does not find as a file it would try
        # as a pretrained tag to download.
        if not weights.is_file():
            raise CheckError(f"CLIP weights not found: {weights}", hint=_HINT)
        try:
            sha256 = _sha256(weights)
            # The architecture without any weights, then exactly this checkpoint, strictly: a
            # checkpoint for another architecture fails instead of half-loading.
            with _quiet_random_init():
                clip = open_clip.create_model(
                    self.model, pretrained=None, load_weights=False, device=self._device
                )
            open_clip.load_checkpoint(clip, str(weights), strict=True, weights_only=True)
            clip.eval()
            preprocess = image_transform_v2(
                PreprocessCfg(**open_clip.get_model_preprocess_cfg(clip)), is_train=False
            )
            tokenizer = open_clip.get_tokenizer(self.model)
            texts = [t for c in self.categories for t in self._concepts[c]]
            with torch.inference_mode():
                text = clip.encode_text(tokenizer(texts).to(self._device))
                text = torch.nn.functional.normalize(text.float(), dim=-1)
        except Exception as exc:
            raise CheckError(
                f"CLIP model {self.model} could not be loaded from {weights}: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        logger.info("CLIP concept check loaded %s from %s (sha256 %s)", self.model, weights, sha256)
        return _Loaded(clip, preprocess, text, texts, sha256)

    def embed(self, image: Image.Image) -> Any:
        """The image's L2-normalised CLIP embedding, shape (1, embed_dim)."""
        import torch

        loaded = self._ensure_loaded()
        pixels = loaded.preprocess(image.convert("RGB")).unsqueeze(0).to(self._device)
        with torch.inference_mode():
            features = loaded.model.encode_image(pixels)
            return torch.nn.functional.normalize(features.float(), dim=-1)

    def similarities(self, image: Image.Image) -> dict[Category, dict[str, float]]:
        """Cosine similarity of the image to every concept, per category; raises on failure."""
        loaded = self._ensure_loaded()
        cosines = (self.embed(image) @ loaded.text_embeddings.T)[0].tolist()
        by_text = dict(zip(loaded.texts, cosines, strict=True))
        result: dict[Category, dict[str, float]] = {}
        for category in self.categories:
            values = {t: float(by_text[t]) for t in self._concepts[category]}
            # NaN would compare as neither above nor below a threshold: never read it as clean.
            if any(v != v for v in values.values()):
                raise CheckError(f"CLIP returned NaN similarities for {category.value}")
            result[category] = values
        return result

    def check(self, image: Image.Image, stage: Stage, image_index: int = 0) -> list[Finding]:
        start = time.perf_counter()
        if self.weights is None:
            reason = f"no CLIP weights configured: {_HINT}"
            return [
                self._finding(c, stage, image_index, start, CheckState.NOT_CHECKED, reason=reason)
                for c in self.categories
            ]
        try:
            per_category = self.similarities(image)
        except Exception as exc:
            reason = f"CLIP concept check could not run: {type(exc).__name__}: {exc}"
            return [
                self._finding(c, stage, image_index, start, CheckState.ERROR, reason=reason)
                for c in self.categories
            ]
        findings = []
        for category in self.categories:
            values = per_category[category]
            concept = max(values, key=values.__getitem__)
            similarity = values[concept]
            threshold = self.thresholds[category]
            flagged = similarity >= threshold
            findings.append(
                self._finding(
                    category,
                    stage,
                    image_index,
                    start,
                    CheckState.FLAGGED if flagged else CheckState.CLEAN,
                    score=min(1.0, max(0.0, similarity)),
                    reason=(
                        f"closest to {concept!r} (cosine {similarity:.3f} at or above {threshold})"
                        if flagged
                        else None
                    ),
                    details={
                        "concept": concept,
                        "similarity": similarity,
                        "similarities": values,
                    },
                )
            )
        return findings

    def _finding(
        self,
        category: Category,
        stage: Stage,
        image_index: int,
        start: float,
        state: CheckState,
        *,
        score: float | None = None,
        reason: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> Finding:
        loaded = self._loaded.value
        return Finding(
            check=self.name,
            check_version=self.version,
            category=category,
            stage=stage,
            state=state,
            score=score,
            threshold=self.thresholds[category],
            reason=reason,
            image_index=image_index,
            latency_ms=(time.perf_counter() - start) * 1000.0,
            details={
                "model": self.model,
                "weights": None if self.weights is None else self.weights.name,
                "weights_sha256": None if loaded is None else loaded.weights_sha256,
                **(details or {}),
            },
        )

    def _model_label(self) -> str:
        if not self.model:
            return "none"
        if self.model.startswith("local-dir:"):
            return "local-dir." + Path(self.model.removeprefix("local-dir:")).name
        return self.model


class _Loaded:
    """Everything one load produces, swapped in at once so readers never see half of it."""

    def __init__(
        self, model: Any, preprocess: Any, text_embeddings: Any, texts: list[str], sha256: str
    ) -> None:
        self.model = model
        self.preprocess = preprocess
        self.text_embeddings = text_embeddings
        self.texts = texts
        self.weights_sha256 = sha256


def _open_clip_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("open-clip-torch")
    except PackageNotFoundError:
        return "missing"


class _DropRandomInitWarnings(logging.Filter):
    # open_clip warns on the root logger that the model is "initialized randomly" whenever it
    # is built without weights, which is how we build it before loading the checkpoint
    # ourselves: in a safety service's log that line would read as an alarm that is not true.
    _PREFIXES = ("No pretrained weights loaded", "Local config loaded, but no CLIP weights")

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self._PREFIXES)


@contextmanager
def _quiet_random_init() -> Iterator[None]:
    root = logging.getLogger()
    drop = _DropRandomInitWarnings()
    root.addFilter(drop)
    try:
        yield
    finally:
        root.removeFilter(drop)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
