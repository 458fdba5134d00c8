"""The protected-identity registry: descriptors only, in the genseal database."""

from __future__ import annotations

import hashlib
import io
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageEnhance
from skimage import data

from genseal.errors import InputError, NotFoundError, StoreError
from safety import FaceAnalyzer, FaceRegistry, face_analyzer


def photo(name: str) -> Image.Image:
    return Image.fromarray(getattr(data, name)()).convert("RGB")


def jpeg(image: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def sha(image: Image.Image) -> str:
    return hashlib.sha256(image.tobytes()).hexdigest()


@pytest.fixture(scope="module")
def analyzer() -> FaceAnalyzer:
    return face_analyzer()


@pytest.fixture(scope="module")
def descriptors(analyzer: FaceAnalyzer) -> dict[str, np.ndarray]:
    astronaut = photo("astronaut")
    return {
        "astronaut": analyzer.single_face_descriptor(astronaut, "astronaut"),
        "astronaut dark": analyzer.single_face_descriptor(
            ImageEnhance.Brightness(astronaut).enhance(0.6), "dark"
        ),
        "astronaut small jpeg": analyzer.single_face_descriptor(
            jpeg(astronaut.resize((300, 300)), 70), "small"
        ),
        "camera": analyzer.single_face_descriptor(photo("camera"), "camera"),
    }


@pytest.fixture
def registry(tmp_path: Path) -> FaceRegistry:
    return FaceRegistry(f"sqlite:///{tmp_path / 'genseal.db'}")


def test_enrol_then_match_the_same_person_and_not_another(
    registry: FaceRegistry, analyzer: FaceAnalyzer, descriptors: dict[str, np.ndarray]
) -> None:
    model = analyzer.descriptor_model
    enrolled = registry.enroll(
        "Eileen Collins",
        [descriptors["astronaut"], descriptors["astronaut dark"]],
        model=model,
        sources=["a" * 64, "b" * 64],
        note="NASA astronaut, skimage sample",
    )
    assert enrolled.added == 2 and enrolled.duplicates == 0
    assert enrolled.identity.photos == 2 and enrolled.identity.note.startswith("NASA")

    snapshot = registry.snapshot()
    [best] = snapshot.match(descriptors["astronaut small jpeg"], model=model)
    assert best.name == "Eileen Collins" and best.distance < 0.35
    [other] = snapshot.match(descriptors["camera"], model=model)
    assert other.distance > 0.7
    assert snapshot.match(descriptors["astronaut"], model="another-model") == []


def test_several_photos_per_name_match_by_the_closest(
    registry: FaceRegistry, analyzer: FaceAnalyzer, descriptors: dict[str, np.ndarray]
) -> None:
    model = analyzer.descriptor_model
    registry.enroll("A", [descriptors["astronaut dark"]], model=model, sources=["1" * 64])
    registry.enroll("A", [descriptors["astronaut"]], model=model, sources=["2" * 64])
    registry.enroll("B", [descriptors["camera"]], model=model, sources=["3" * 64])
    matches = registry.snapshot().match(descriptors["astronaut"], model=model)
    assert [m.name for m in matches] == ["A", "B"]
    assert matches[0].distance == pytest.approx(0.0, abs=1e-5)  # float32 storage
    assert [(i.name, i.photos) for i in registry.identities()] == [("A", 2), ("B", 1)]


def test_the_same_photo_is_not_enrolled_twice(
    registry: FaceRegistry, analyzer: FaceAnalyzer, descriptors: dict[str, np.ndarray]
) -> None:
    model = analyzer.descriptor_model
    first = registry.enroll("A", [descriptors["astronaut"]], model=model, sources=["s" * 64])
    again = registry.enroll("A", [descriptors["astronaut"]], model=model, sources=["s" * 64])
    assert (first.added, again.added, again.duplicates) == (1, 0, 1)
    assert again.identity.photos == 1


def test_remove_forgets_every_descriptor(
    registry: FaceRegistry, analyzer: FaceAnalyzer, descriptors: dict[str, np.ndarray]
) -> None:
    model = analyzer.descriptor_model
    registry.enroll("A", [descriptors["astronaut"]], model=model, sources=["s" * 64])
    assert registry.snapshot().identities == 1
    registry.remove("A")
    snapshot = registry.snapshot()
    assert snapshot.names == () and snapshot.descriptors.shape == (0, 128)
    assert registry.identities() == []
    with pytest.raises(NotFoundError, match="no protected identity named 'A'"):
        registry.remove("A")


def test_another_process_sees_enrolments_at_once(
    tmp_path: Path, analyzer: FaceAnalyzer, descriptors: dict[str, np.ndarray]
) -> None:
    url = f"sqlite:///{tmp_path / 'genseal.db'}"
    writer, reader = FaceRegistry(url), FaceRegistry(url)
    empty = reader.snapshot()
    assert reader.snapshot() is empty, "unchanged registry: the cached snapshot"
    writer.enroll(
        "A", [descriptors["astronaut"]], model=analyzer.descriptor_model, sources=["s" * 64]
    )
    assert reader.snapshot().names == ("A",)
    writer.remove("A")
    assert reader.snapshot().names == ()


def test_only_descriptors_are_stored(
    tmp_path: Path, analyzer: FaceAnalyzer, descriptors: dict[str, np.ndarray]
) -> None:
    path = tmp_path / "genseal.db"
    registry = FaceRegistry(f"sqlite:///{path}")
    registry.enroll(
        "A",
        [descriptors["astronaut"]],
        model=analyzer.descriptor_model,
        sources=[sha(photo("astronaut"))],
    )
    registry.close()
    with sqlite3.connect(path) as connection:
        [(blob, source)] = connection.execute(
            "SELECT descriptor, source_sha256 FROM genseal_face_descriptors"
        ).fetchall()
    assert len(blob) == 128 * 4, "128 float32 values, nothing else"
    assert source == sha(photo("astronaut"))
    pixels = photo("astronaut").tobytes()
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("genseal.db*"))
    assert pixels[100_000:100_064] not in stored


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "empty"),
        (" Jane", "leading/trailing"),
        ("Jane\nDoe", "control"),
        ("x" * 129, "at most 128"),
    ],
)
def test_bad_names_are_input_errors(
    registry: FaceRegistry, descriptors: dict[str, np.ndarray], name: str, message: str
) -> None:
    with pytest.raises(InputError, match=message):
        registry.enroll(name, [descriptors["astronaut"]], model="m", sources=["s" * 64])


def test_bad_descriptors_are_input_errors(registry: FaceRegistry) -> None:
    with pytest.raises(InputError, match="128 finite values"):
        registry.enroll("A", [np.zeros(64)], model="m", sources=["s" * 64])
    with pytest.raises(InputError, match="one descriptor per photo"):
        registry.enroll("A", [], model="m", sources=[])


def test_an_unreachable_registry_raises_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(StoreError, match="protected-identity registry"):
        FaceRegistry(f"sqlite:///{blocker / 'genseal.db'}")

    path = tmp_path / "genseal.db"
    registry = FaceRegistry(f"sqlite:///{path}")
    with sqlite3.connect(path) as connection:
        connection.execute("DROP TABLE genseal_face_registry_state")
    with pytest.raises(StoreError, match="failed to read the protected-identity registry"):
        registry.snapshot()
