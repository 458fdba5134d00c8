"""Model resolution offline, and loading saved pipelines through diffusers' real from_pretrained."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from huggingface_hub import constants

from gen._backend import GenerationParams
from gen._backend_diffusers import DiffusersBackend
from gen._models import local_model_version, resolve_model
from genseal.errors import ModelError

COMMIT = "0123456789abcdef0123456789abcdef01234567"
SMALL: dict[str, Any] = {"width": 64, "height": 64, "steps": 2, "guidance_scale": 7.5}


def fake_hub_cache(root: Path, repo_id: str, model_dir: Path) -> Path:
    """A Hugging Face cache laid out as `hf download` leaves it, holding `model_dir`."""
    repo = root / f"models--{repo_id.replace('/', '--')}"
    shutil.copytree(model_dir, repo / "snapshots" / COMMIT)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)
    return root


def test_tiny_resolves_without_files() -> None:
    for spec in ("tiny", " tiny ", "genseal/tiny-sd"):
        ref = resolve_model(spec)
        assert (ref.kind, ref.model_id, ref.path) == ("tiny", "genseal/tiny-sd", None)


@pytest.mark.parametrize("spec", ["", "   ", "not a model!", "org/na me", "a/b/../c", "x\x00y"])
def test_invalid_specs_are_model_errors(spec: str) -> None:
    with pytest.raises(ModelError):
        resolve_model(spec)


def test_missing_directory_is_a_model_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="does not exist"):
        resolve_model(str(tmp_path / "nowhere"))


def test_directory_without_model_index_is_a_model_error(tmp_path: Path) -> None:
    (tmp_path / "unet").mkdir()
    with pytest.raises(ModelError, match=r"model_index\.json"):
        resolve_model(str(tmp_path))


def test_uncached_hub_id_offline_says_what_to_download(tmp_path: Path) -> None:
    with pytest.raises(ModelError) as caught:
        resolve_model("stabilityai/sd-turbo", cache_dir=tmp_path, offline=True)
    message = str(caught.value)
    assert "not in the local Hugging Face cache" in message
    assert "hf download stabilityai/sd-turbo" in message
    assert "huggingface-cli download stabilityai/sd-turbo" in message
    assert "--model PATH" in message


def test_hf_hub_offline_is_honoured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ModelError, match="HF_HUB_OFFLINE"):
        resolve_model("acme/missing", cache_dir=tmp_path, offline=False)


def test_online_uncached_hub_id_is_left_to_diffusers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    ref = resolve_model("acme/missing", cache_dir=tmp_path, offline=False)
    assert (ref.kind, ref.path, ref.revision) == ("hub", None, None)


def test_cached_hub_id_resolves_to_its_snapshot(tmp_path: Path, saved_tiny: Path) -> None:
    cache = fake_hub_cache(tmp_path, "acme/tiny-sd", saved_tiny)
    ref = resolve_model("acme/tiny-sd", cache_dir=cache)
    assert (ref.kind, ref.model_id, ref.revision) == ("hub", "acme/tiny-sd", COMMIT)
    assert ref.path is not None and (ref.path / "model_index.json").is_file()


def test_saved_pipeline_loads_from_a_directory(
    saved_tiny: Path, tiny_backend: DiffusersBackend
) -> None:
    backend = DiffusersBackend.load(str(saved_tiny), device="cpu")
    assert backend.model_id == str(saved_tiny.resolve())
    assert backend.model_version == local_model_version(saved_tiny)
    assert len(backend.pipeline.tokenizer) == 49408  # the saved tokenizer reloads in full
    assert backend.pipeline.safety_checker is None
    # Not a known model id: generic defaults, size from the saved config.
    assert (backend.defaults.steps, backend.defaults.size) == (30, (512, 512))
    # Same weights, same scheduler: the same pixels as the in-memory tiny model.
    params = GenerationParams("a red fox", seed=11, **SMALL)
    loaded = np.asarray(backend.generate(params).images[0])
    built = np.asarray(tiny_backend.generate(params).images[0])
    assert np.array_equal(loaded, built)
    assert backend.supports_image_to_image


def test_cached_hub_model_loads_offline(
    tmp_path: Path, saved_tiny: Path, tiny_backend: DiffusersBackend
) -> None:
    cache = fake_hub_cache(tmp_path, "acme/tiny-sd", saved_tiny)
    backend = DiffusersBackend.load("acme/tiny-sd", device="cpu", cache_dir=cache)
    assert (backend.model_id, backend.model_version) == ("acme/tiny-sd", COMMIT)
    params = GenerationParams("a red fox", seed=12, **SMALL)
    assert np.array_equal(
        np.asarray(backend.generate(params).images[0]),
        np.asarray(tiny_backend.generate(params).images[0]),
    )


def test_local_version_follows_the_configs(tmp_path: Path, saved_tiny: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(saved_tiny, copy)
    assert local_model_version(copy) == local_model_version(saved_tiny)
    scheduler = copy / "scheduler" / "scheduler_config.json"
    scheduler.write_text(scheduler.read_text().replace('"leading"', '"trailing"'))
    assert local_model_version(copy) != local_model_version(saved_tiny)
