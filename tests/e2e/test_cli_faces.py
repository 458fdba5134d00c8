"""``genseal faces`` end to end: enrol from real photos, match, list, remove; bad photos are
clear errors (exit 2) and only descriptors reach the database."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.cli import app
from tests._media import photo

runner = CliRunner()


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def said(message: str, text: str) -> bool:
    """`message` is in `text`, wherever rich wrapped the lines (long paths wrap anywhere)."""
    return "".join(message.split()) in "".join(text.split())


@pytest.fixture
def photos(tmp_path: Path) -> dict[str, Path]:
    files = {
        "astronaut.png": photo("astronaut", size=None),
        "astronaut.jpg": photo("astronaut", size=400, fmt="JPEG"),
        "astronaut-small.jpg": photo("astronaut", size=300, fmt="JPEG"),
        "camera.png": photo("camera", size=None),
        "coffee.png": photo("coffee", size=None),
    }
    paths = {}
    for name, data in files.items():
        paths[name] = tmp_path / name
        paths[name].write_bytes(data)
    (tmp_path / "broken.png").write_bytes(files["astronaut.png"][:300])
    paths["broken.png"] = tmp_path / "broken.png"
    return paths


def test_enrol_match_list_remove(genseal_home: Path, photos: dict[str, Path]) -> None:
    code, stdout, stderr = invoke(
        "faces",
        "enroll",
        "Eileen Collins",
        str(photos["astronaut.png"]),
        str(photos["astronaut.jpg"]),
        "--note",
        "skimage sample",
        "--json",
    )
    assert code == 0, stderr
    enrolled = json.loads(stdout)
    assert enrolled["added"] == 2 and enrolled["identity"]["photos"] == 2

    code, stdout, _ = invoke("faces", "match", str(photos["astronaut-small.jpg"]), "--json")
    assert code == 0
    report = json.loads(stdout)
    assert report["matched"] == ["Eileen Collins"]
    [face] = report["faces"]
    assert face["matches"][0]["distance"] < 0.35

    code, stdout, _ = invoke("faces", "match", str(photos["camera.png"]), "--json")
    assert code == 0
    report = json.loads(stdout)
    assert report["matched"] == [] and report["faces"][0]["matches"][0]["distance"] > 0.6

    code, stdout, _ = invoke("faces", "match", str(photos["camera.png"]))
    assert code == 0 and "no identity within 0.6" in stdout

    code, stdout, _ = invoke("faces", "list", "--json")
    assert code == 0
    [listed] = json.loads(stdout)
    assert listed["name"] == "Eileen Collins" and listed["note"] == "skimage sample"

    code, stdout, _ = invoke("faces", "list")
    assert code == 0 and "Eileen Collins" in stdout

    # Only 128 float32 values per photo reach the database: no pixels, no encoded photo.
    database = b"".join(path.read_bytes() for path in genseal_home.glob("genseal.db*"))
    assert photos["astronaut.png"].read_bytes()[-4096:] not in database
    with sqlite3.connect(genseal_home / "genseal.db") as connection:
        sizes = connection.execute("SELECT length(descriptor) FROM genseal_face_descriptors")
        assert [size for (size,) in sizes] == [512, 512]

    code, stdout, _ = invoke("faces", "remove", "Eileen Collins")
    assert code == 0 and "removed" in stdout
    code, _, stderr = invoke("faces", "remove", "Eileen Collins")
    assert code == 2 and said("no protected identity named 'Eileen Collins'", stderr)
    code, stdout, _ = invoke("faces", "list")
    assert code == 0 and "no protected identities enrolled" in stdout


@pytest.mark.parametrize(
    ("photo_name", "message"),
    [
        ("coffee.png", "coffee.png: found no face"),
        ("broken.png", "truncated or corrupt"),
        ("missing.png", "does not exist"),
    ],
)
def test_unusable_photos_are_clear_errors(
    genseal_home: Path, photos: dict[str, Path], photo_name: str, message: str
) -> None:
    path = photos.get(photo_name, photos["coffee.png"].with_name(photo_name))
    code, _, stderr = invoke("faces", "enroll", "Someone", str(photos["astronaut.png"]), str(path))
    assert code == 2, stderr
    assert said(message, stderr) and "Traceback" not in stderr
    code, stdout, _ = invoke("faces", "list", "--json")
    assert json.loads(stdout) == [], "nothing is stored unless every photo is usable"


def test_a_photo_of_two_people_cannot_be_enrolled(genseal_home: Path, tmp_path: Path) -> None:
    from PIL import Image
    from skimage import data

    pair = Image.new("RGB", (1024, 512))
    pair.paste(Image.fromarray(data.astronaut()), (0, 0))
    pair.paste(Image.fromarray(data.camera()).convert("RGB"), (512, 0))
    path = tmp_path / "pair.png"
    pair.save(path)
    code, _, stderr = invoke("faces", "enroll", "Someone", str(path))
    assert code == 2 and said("pair.png: found 2 faces", stderr)


def test_bad_names_are_refused_before_any_photo_is_read(genseal_home: Path) -> None:
    code, _, stderr = invoke("faces", "enroll", " padded", "/nonexistent.png")
    assert code == 2 and said("invalid identity name", stderr)
