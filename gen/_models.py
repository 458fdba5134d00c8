"""Model resolution: from what a user typed (`--model`) to where the weights are, offline first.

    "tiny" (or "genseal/tiny-sd")    the embedded random-weights pipeline, built from configs
    a directory with model_index.json  a diffusers pipeline saved with `save_pretrained`
    "org/name"                         a Hugging Face model id, looked up in the local HF cache

Nothing here touches the network. Offline (the default, and always when HF_HUB_OFFLINE is set),
a hub id that is not cached is a ModelError saying what to download and where to put it. Online,
an uncached hub id resolves to a `ModelRef` without a path, and the backend lets diffusers fetch
exactly the files the pipeline needs.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from gen._tiny import TINY_MODEL_ID
from genseal.errors import ModelError

__all__ = ["ModelKind", "ModelRef", "download_hint", "local_model_version", "resolve_model"]

ModelKind = Literal["tiny", "local", "hub"]

TINY_SPECS: Final = frozenset({"tiny", TINY_MODEL_ID})
MODEL_INDEX: Final = "model_index.json"
# The Hub's own rules (huggingface_hub.utils.validate_repo_id), with the namespace required:
# a bare name is far more likely a mistyped directory than a model.
_PART: Final = r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9_])?"
_HUB_ID: Final = re.compile(rf"{_PART}/{_PART}")
_WEIGHT_SUFFIXES: Final = (".safetensors", ".bin", ".ckpt", ".pt", ".pth", ".onnx", ".gguf")


@dataclass(frozen=True, slots=True)
class ModelRef:
    """A resolved model: what it is called and where its files are.

    `path` is None for the tiny model (it has no files) and for a hub model that is not cached
    yet (only when online). `revision` is the snapshot commit of a cached hub model.
    """

    spec: str
    kind: ModelKind
    model_id: str
    path: Path | None = None
    revision: str | None = None


def resolve_model(spec: str, *, cache_dir: Path | None = None, offline: bool = True) -> ModelRef:
    """Resolve a model spec; raises ModelError for anything that cannot be loaded as asked."""
    if not isinstance(spec, str) or not spec.strip():
        raise ModelError(
            "no model given", hint="use --model tiny, a Hugging Face id (org/name) or a directory"
        )
    spec = spec.strip()
    if any(ord(char) < 32 for char in spec):
        raise ModelError(f"invalid model spec {spec!r}: it contains control characters")
    if spec in TINY_SPECS:
        return ModelRef(spec=spec, kind="tiny", model_id=TINY_MODEL_ID)

    path = Path(spec).expanduser()
    if path.exists():
        return _resolve_local(spec, path)
    if _looks_like_path(spec):
        raise ModelError(
            f"model directory {spec!r} does not exist",
            hint="pass a directory saved with diffusers' save_pretrained (it has model_index.json)",
        )
    if not _HUB_ID.fullmatch(spec) or "--" in spec or ".." in spec:
        raise ModelError(
            f"invalid model spec {spec!r}",
            hint="use tiny, a Hugging Face id such as stabilityai/sd-turbo, or a directory",
        )
    return _resolve_hub(spec, cache_dir=cache_dir, offline=offline)


def download_hint(repo_id: str) -> str:
    """How to get `repo_id` onto an offline machine."""
    return (
        f"on a connected machine run `hf download {repo_id}` (`huggingface-cli download "
        f"{repo_id}` with huggingface_hub < 1.0), then copy its Hugging Face cache "
        "(~/.cache/huggingface/hub) to this machine (or point HF_HUB_CACHE at the copy); "
        "or save the pipeline with save_pretrained and pass that directory with --model PATH"
    )


def local_model_version(path: Path) -> str:
    """Short sha256 over a saved pipeline's configs and its weight files' names and sizes.

    Hashing the weights themselves would read gigabytes at every load; every config plus the
    exact size of every weight file changes whenever a component is retrained or swapped.
    """
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        relative = file.relative_to(path).as_posix()
        if relative.startswith("."):
            continue  # .cache/, .gitattributes: bookkeeping, not the model
        if file.suffix == ".json" or file.name.endswith(".txt"):
            digest.update(f"{relative}\0".encode())
            digest.update(file.read_bytes())
        elif file.name.endswith(_WEIGHT_SUFFIXES):
            digest.update(f"{relative}\0{file.stat().st_size}\0".encode())
    return digest.hexdigest()[:16]


def _resolve_local(spec: str, path: Path) -> ModelRef:
    if path.is_file() and path.name == MODEL_INDEX:
        path = path.parent
    if not path.is_dir():
        raise ModelError(
            f"model path {spec!r} is a file, not a pipeline directory",
            hint="pass the directory that contains model_index.json",
        )
    if not (path / MODEL_INDEX).is_file():
        raise ModelError(
            f"directory {spec!r} is not a diffusers pipeline: it has no {MODEL_INDEX}",
            hint="save a pipeline with save_pretrained(PATH), or pass a Hugging Face id",
        )
    resolved = path.resolve()
    return ModelRef(spec=spec, kind="local", model_id=str(resolved), path=resolved)


def _resolve_hub(repo_id: str, *, cache_dir: Path | None, offline: bool) -> ModelRef:
    from huggingface_hub import constants, try_to_load_from_cache

    cache = Path(cache_dir) if cache_dir is not None else Path(constants.HF_HUB_CACHE)
    found = try_to_load_from_cache(repo_id, MODEL_INDEX, cache_dir=cache)
    snapshot = Path(found).parent if isinstance(found, str) else _only_snapshot(cache, repo_id)
    if snapshot is not None:
        return ModelRef(
            spec=repo_id, kind="hub", model_id=repo_id, path=snapshot, revision=snapshot.name
        )
    if offline or constants.HF_HUB_OFFLINE:
        why = "HF_HUB_OFFLINE is set" if constants.HF_HUB_OFFLINE else "genseal runs offline"
        raise ModelError(
            f"model {repo_id!r} is not in the local Hugging Face cache ({cache}) and {why}, "
            "so it cannot be downloaded",
            hint=download_hint(repo_id),
        )
    return ModelRef(spec=repo_id, kind="hub", model_id=repo_id)


def _only_snapshot(cache: Path, repo_id: str) -> Path | None:
    # A cache copied without refs/ (or with a stale refs/main) still holds usable snapshots;
    # take one only when it is the only candidate, never guess between revisions.
    snapshots = cache / f"models--{repo_id.replace('/', '--')}" / "snapshots"
    if not snapshots.is_dir():
        return None
    candidates = [p for p in snapshots.iterdir() if (p / MODEL_INDEX).is_file()]
    return candidates[0] if len(candidates) == 1 else None


def _looks_like_path(spec: str) -> bool:
    return (
        spec.startswith(("/", ".", "~"))
        or "\\" in spec
        or spec.count("/") > 1
        or spec.endswith("/")
        or (len(spec) > 1 and spec[1] == ":")  # C:\models
    )
