"""``genseal verify`` end to end, as an auditor meets it: panels, folders, a summary table, exit
codes that say "trusted or not", and bad files that get a report instead of a traceback.

The sealed images are made once per module by the real pipeline (tiny model, real watermark,
real C2PA signing, real SQLite store); each test then points GENSEAL_HOME at that home."""

from __future__ import annotations

import datetime as dt
import io
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from api.cli import app
from tests._media import photo

runner = CliRunner()
FAST = ["--size", "256x256", "--steps", "2", "--seed", "11"]
ESC = "\x1b"


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


@dataclass(frozen=True)
class Sealed:
    home: Path
    png: Path
    other_png: Path  # image-to-image: the portrait is its ingredient
    jpeg: Path
    png_id: str


@pytest.fixture(scope="module")
def sealed_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sealed]:
    root = tmp_path_factory.mktemp("sealed")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GENSEAL_HOME", str(root / "home"))
        for name in ("GENSEAL_POLICY", "GENSEAL_MODEL", "GENSEAL_DATABASE_URL"):
            patch.delenv(name, raising=False)
        code, stdout, stderr = invoke(
            "generate", "a lighthouse at dusk", *FAST, "--out", str(root / "out"), "--json"
        )
        assert code == 0, stderr
        [first] = json.loads(stdout)["images"]
        portrait = root / "portrait.png"
        portrait.write_bytes(photo("astronaut"))
        code, stdout, stderr = invoke(
            "generate", "", "--preset", "figurine", "--image", str(portrait), *FAST,
            "--consent-subject", "user-42", "--consent-reference", "consent/2026/0042",
            "--out", str(root / "out"), "--json",
        )  # fmt: skip
        assert code == 0, stderr
        [second] = json.loads(stdout)["images"]
        source = root / "coffee.jpg"
        source.write_bytes(photo("coffee", size=256, fmt="JPEG"))
        code, stdout, stderr = invoke("seal", str(source), "--out", str(root / "out"), "--json")
        assert code == 0, stderr
        [jpeg] = json.loads(stdout)["images"]
    yield Sealed(
        home=root / "home",
        png=Path(first["path"]),
        other_png=Path(second["path"]),
        jpeg=Path(jpeg["path"]),
        png_id=first["manifest_id"],
    )


@pytest.fixture
def sealed(genseal_home: Path, sealed_home: Sealed, monkeypatch: pytest.MonkeyPatch) -> Sealed:
    """The sealed images, with their home (store, trust root) as this test's home, and a plain
    wide non-terminal output so assertions see whole lines."""
    monkeypatch.setenv("GENSEAL_HOME", str(sealed_home.home))
    for name in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "NO_COLOR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    return sealed_home


def strip(source: Path, target: Path) -> Path:
    Image.open(source).save(target)  # Pillow drops the C2PA chunk
    return target


def tampered_jpeg(source: Path, target: Path) -> Path:
    """The sealed JPEG with one byte of its entropy-coded data changed: still decodable, but
    no longer the bytes the manifest signed."""
    data = bytearray(source.read_bytes())
    at = len(data) - 200
    while data[at] in (0xFE, 0xFF) or data[at - 1] == 0xFF:
        at -= 1
    data[at] ^= 0x01
    target.write_bytes(bytes(data))
    return target


def test_a_sealed_image_is_trusted_in_a_panel_and_exits_0(sealed: Sealed) -> None:
    code, stdout, stderr = invoke("verify", str(sealed.png))
    assert code == 0, stderr
    assert stdout.lstrip().startswith("╭") and "╰" in stdout  # a panel
    assert "TRUSTED" in stdout and "trusted (embedded manifest)" in stdout
    for shown in (
        "genseal development signer",  # signer
        "genseal development intermediate CA",  # issuer
        "no time-stamp: nothing proves when it was signed",
        "es256, valid ",  # the signing certificate
        "c2pa.created",
        "trainedAlgorithmicMedia",
        "allow under policy default",  # the moderation attestation, decoded
        "opennsfw on the output: sexual clean",
        "soft binding",
        f"found {sealed.png_id} by manifest + watermark + fingerprint",
        "byte for byte the sealed file",
    ):
        assert shown in stdout, shown
    assert "files verified" not in stdout  # one file: no summary table


def test_an_image_to_image_output_shows_its_ingredient_tree(sealed: Sealed) -> None:
    code, stdout, _ = invoke("verify", str(sealed.other_png))
    assert code == 0
    assert "c2pa.opened" in stdout and "c2pa.edited" in stdout
    assert "1 ingredient(s)" in stdout
    assert "└── portrait.png (parentOf, image/png)  no Content Credentials of its own" in stdout
    assert "opennsfw on the input:" in stdout and "opennsfw on the output:" in stdout


def test_a_valid_but_untrusted_signature_is_a_warning_and_exits_3(
    sealed: Sealed, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An auditor elsewhere: no identity of their own, so genseal's root is not trusted.
    monkeypatch.setenv("GENSEAL_HOME", str(tmp_path / "auditor"))
    code, stdout, _ = invoke("verify", str(sealed.png))
    assert code == 3
    assert "WARNING: VALID, NOT TRUSTED" in stdout
    assert "warning: the signature is intact but the signer" in stdout
    assert "TRUSTED " not in stdout.replace("NOT TRUSTED", "")


def test_a_tampered_file_is_invalid_with_its_status_codes(sealed: Sealed, tmp_path: Path) -> None:
    path = tampered_jpeg(sealed.jpeg, tmp_path / "tampered.jpg")
    code, stdout, _ = invoke("verify", str(path))
    assert code == 3
    assert "INVALID" in stdout and "do not rely:" in stdout
    assert "assertion.dataHash.mismatch" in stdout


def test_a_stripped_copy_exits_3_and_is_recovered(sealed: Sealed, tmp_path: Path) -> None:
    path = strip(sealed.png, tmp_path / "stripped.png")
    code, stdout, _ = invoke("verify", str(path))
    assert code == 3
    assert "ABSENT" in stdout
    assert f"found {sealed.png_id} by watermark + fingerprint" in stdout
    assert "fingerprint distance 0/256 bits" in stdout
    # The attestation is still shown, from the stored manifest.
    assert "from the stored manifest this file was traced to" in stdout

    code, stdout, _ = invoke("verify", str(path), "--json")
    assert code == 3
    report = json.loads(stdout)
    assert report["c2pa"]["state"] == "absent"
    assert report["recovery"]["manifest_id"] == sealed.png_id


def test_a_random_photo_is_absent_and_exits_3(sealed: Sealed, tmp_path: Path) -> None:
    path = tmp_path / "camera.jpg"
    path.write_bytes(photo("chelsea", size=256, fmt="JPEG"))
    code, stdout, _ = invoke("verify", str(path))
    assert code == 3
    assert "ABSENT" in stdout and "no Content Credentials" in stdout
    assert "nothing found" in stdout
    code, stdout, _ = invoke("verify", str(path), "--json")
    report = json.loads(stdout)
    assert report["c2pa"]["state"] == "absent" and report["recovery"]["found"] is False


def mixed_folder(sealed: Sealed, root: Path) -> Path:
    folder = root / "evidence"
    (folder / "sub").mkdir(parents=True)
    (folder / ".cache").mkdir()
    shutil.copy(sealed.png, folder / "a-sealed.png")
    strip(sealed.other_png, folder / "sub" / "b-stripped.png")
    (folder / "c-camera.jpg").write_bytes(photo("chelsea", size=128, fmt="JPEG"))
    (folder / "d-empty.png").write_bytes(b"")
    (folder / "e-garbage.webp").write_bytes(b"\x00not an image at all" * 50)
    (folder / "f-scan").write_bytes(photo("camera", size=128))  # no suffix: sniffed as PNG
    (folder / "notes.txt").write_text("not an image")
    (folder / ".hidden.png").write_bytes(photo("astronaut", size=64))
    (folder / ".cache" / "thumb.png").write_bytes(photo("astronaut", size=64))
    return folder


def test_a_folder_of_mixed_files_ends_with_a_summary_table(sealed: Sealed, tmp_path: Path) -> None:
    folder = mixed_folder(sealed, tmp_path)
    code, stdout, stderr = invoke("verify", str(folder))
    assert code == 3, stderr
    assert "Traceback" not in stdout + stderr
    assert stdout.count("╭─") == 6  # one panel per image
    table = stdout[stdout.index(f"6 files verified in {folder}") :]
    for header in ("file", "state", "signer", "recovered manifest"):
        assert header in table
    assert "1 trusted, 0 valid, 0 invalid, 5 absent" in table
    assert "2 recovered from the manifest store" in table
    assert "notes.txt" not in stdout and "hidden" not in stdout and "thumb" not in stdout
    rows: list[list[str]] = []
    for line in table.splitlines():
        if line.startswith("│"):
            cells = [c.strip() for c in line.split("│")[1:-1]]
            if cells[0]:
                rows.append(cells)
            else:  # the second line of a row: the evidence under a recovered manifest
                rows[-1] = [f"{a} {b}".strip() for a, b in zip(rows[-1], cells, strict=True)]
    assert [(r[0], r[1]) for r in rows] == [
        ("a-sealed.png", "trusted"),
        ("c-camera.jpg", "absent"),
        ("d-empty.png", "absent"),
        ("e-garbage.webp", "absent"),
        ("f-scan", "absent"),
        ("sub/b-stripped.png", "absent"),
    ]
    assert rows[0][2] == "genseal development signer"
    assert rows[0][3].endswith("by manifest + watermark + fingerprint")
    assert rows[-1][3].endswith("by watermark + fingerprint")
    assert rows[1][3] == "-"


def test_json_is_an_array_in_input_order(sealed: Sealed, tmp_path: Path) -> None:
    camera = tmp_path / "camera.jpg"
    camera.write_bytes(photo("chelsea", size=128, fmt="JPEG"))
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    order = [camera, sealed.png, empty, sealed.jpeg]
    code, stdout, _ = invoke("verify", *map(str, order), "--json")
    assert code == 3
    reports = json.loads(stdout)
    assert [r["file"] for r in reports] == [str(p) for p in order]
    assert [r["c2pa"]["state"] for r in reports] == ["absent", "trusted", "absent", "trusted"]

    # One file: one object. Every file trusted: exit 0.
    code, stdout, _ = invoke("verify", str(sealed.png), "--json")
    assert code == 0 and json.loads(stdout)["c2pa"]["state"] == "trusted"
    code, stdout, _ = invoke("verify", str(sealed.png), str(sealed.jpeg), "--json")
    assert code == 0 and len(json.loads(stdout)) == 2
    # A folder is an array even when it holds one image.
    folder = tmp_path / "one"
    folder.mkdir()
    shutil.copy(sealed.png, folder / "only.png")
    code, stdout, _ = invoke("verify", str(folder), "--json")
    assert code == 0 and [r["file"] for r in json.loads(stdout)] == [str(folder / "only.png")]


def test_unreadable_files_get_a_report_and_no_traceback(sealed: Sealed, tmp_path: Path) -> None:
    good = photo("astronaut", size=128)
    files = {
        "empty.png": b"",
        "garbage.png": b"\x89PNG but not really" + bytes(range(256)) * 4,
        "truncated.png": good[: len(good) // 3],
        "truncated-sealed.jpg": sealed.jpeg.read_bytes()[:4000],
        "header-only.jpg": b"\xff\xd8\xff\xe0",
    }
    paths = []
    for name, data in files.items():
        path = tmp_path / name
        path.write_bytes(data)
        paths.append(path)
    code, stdout, stderr = invoke("verify", *map(str, paths), "--json")
    assert code == 3, stderr
    assert "Traceback" not in stdout + stderr and "error" not in stderr
    reports = json.loads(stdout)
    assert [r["file"] for r in reports] == [str(p) for p in paths]
    for report in reports:
        assert report["c2pa"]["state"] in ("absent", "invalid")
        assert report["watermark"]["detected"] is False
        assert report["recovery"]["found"] is False
    assert reports[0]["size_bytes"] == 0 and "empty" in reports[0]["summary"]

    for path in paths:
        code, stdout, stderr = invoke("verify", str(path))
        assert code == 3, stderr
        assert "could not be" in stdout or "INVALID" in stdout
        assert "Traceback" not in stdout + stderr


def test_no_escape_sequences_unless_on_a_terminal(
    sealed: Sealed, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stripped = strip(sealed.png, tmp_path / "stripped.png")
    args = ("verify", str(sealed.png), str(stripped))
    code, stdout, stderr = invoke(*args)
    assert code == 3
    assert "TRUSTED" in stdout and ESC not in stdout and ESC not in stderr

    # FORCE_COLOR stands in for a terminal: colours then, which shows the check below bites.
    monkeypatch.setenv("FORCE_COLOR", "1")
    _, coloured, _ = invoke(*args)
    assert ESC in coloured
    # NO_COLOR wins: no colour, and no bold or reverse video either.
    monkeypatch.setenv("NO_COLOR", "1")
    _, plain, _ = invoke(*args)
    assert ESC not in plain and "TRUSTED" in plain


def test_a_file_name_cannot_drive_the_terminal(sealed: Sealed, tmp_path: Path) -> None:
    path = tmp_path / "evil\x1b[2Jname.jpg"
    path.write_bytes(photo("chelsea", size=64, fmt="JPEG"))
    code, stdout, _ = invoke("verify", str(path))
    assert code == 3
    assert ESC not in stdout and "evil\\x1b[2Jname.jpg" in stdout


def test_progress_goes_to_a_terminal_stderr_only_for_several_files(
    sealed: Sealed, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _, stderr = invoke("verify", str(sealed.png), str(sealed.jpeg), "--json")
    assert code == 0 and stderr == ""
    monkeypatch.setenv("FORCE_COLOR", "1")
    code, stdout, stderr = invoke("verify", str(sealed.png), str(sealed.jpeg), "--json")
    assert code == 0 and "verifying" in stderr
    assert len(json.loads(stdout)) == 2  # stdout stays clean JSON
    _, _, stderr = invoke("verify", str(sealed.png), "--json")
    assert "verifying" not in stderr


def test_usage_errors_exit_2(sealed: Sealed, tmp_path: Path) -> None:
    empty_dir = tmp_path / "nothing-here"
    empty_dir.mkdir()
    (empty_dir / "readme.txt").write_text("no images")
    bad_pem = tmp_path / "bad.pem"
    bad_pem.write_text("not a certificate")
    sidecar = tmp_path / "x.c2pa"
    sidecar.write_bytes(b"\x00\x00\x00\x10jumb")
    cases = [
        (["verify", str(tmp_path / "missing.png")], "missing.png does not exist"),
        (["verify", str(sealed.png), str(tmp_path / "gone.jpg")], "gone.jpg does not exist"),
        (["verify", str(empty_dir)], "no images in"),
        (["verify", str(sealed.png), "--trust", str(bad_pem)], "PEM"),
        (["verify", str(sealed.png), "--trust", str(tmp_path / "nope.pem")], "nope.pem"),
        (["verify", str(tmp_path), "--manifest", str(sidecar)], "exactly one file"),
    ]
    for args, message in cases:
        code, stdout, stderr = invoke(*args)
        assert code == 2, (args, stderr)
        assert message in " ".join(stderr.split()), (args, stderr)
        assert stdout == "" and "Traceback" not in stderr


def test_help_documents_the_exit_codes() -> None:
    code, stdout, _ = invoke("verify", "--help")
    assert code == 0
    text = " ".join(stdout.split())
    assert "0 every file is trusted" in text and "3 some file is not" in text
    assert "2 usage error" in text


def test_the_panel_leads_with_the_file_name_and_the_summary(sealed: Sealed) -> None:
    code, stdout, _ = invoke("verify", str(sealed.jpeg))
    assert code == 0
    lines = stdout.splitlines()
    assert lines[0].startswith("╭─ ") and sealed.jpeg.name in lines[0]
    assert "Content Credentials are valid" in "".join(lines[1:4])


def test_every_part_of_a_rich_report_is_rendered() -> None:
    """A report with what genseal's own manifests do not carry (a time-stamp, a creator,
    training/mining, nested ingredients, failures), some of it hostile, through the renderer
    the command uses."""
    from rich.console import Console

    from api.cli._render_report import report_panel
    from provenance import (
        C2paReport,
        Creator,
        IdentityAssertion,
        IngredientReport,
        ProvenanceReport,
        Recovery,
        StatusCode,
        TimeStamp,
        WatermarkReading,
    )

    stamp = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
    grandchild = IngredientReport(
        title="camera-raw.dng",
        relationship="parentOf",
        validation_state="invalid",
        failures=["assertion.dataHash.mismatch"],
        status_codes=[StatusCode(code="assertion.dataHash.mismatch")],
    )
    child = IngredientReport(
        title="edit.jpg",
        relationship="parentOf",
        format="image/jpeg",
        validation_state="trusted",
        signer="Newsroom",
        claim_generator="Photo Editor 5",
        ingredients=[grandchild],
    )
    model = IngredientReport(
        title="base-model",
        relationship="inputTo",
        validation_state="valid",
        data_types=["c2pa.types.model"],
    )
    report = ProvenanceReport(
        file="/evidence/story\x1b]52;c;aGk=\x07.jpg",
        format="image/jpeg",
        size_bytes=1234,
        sha256="ab" * 32,
        c2pa=C2paReport(
            state="invalid",
            source="embedded",
            manifest_label="urn:c2pa:1",
            signer="Evil \x1b[31mCorp[/] [bold]",
            time_stamp=TimeStamp(
                present=True,
                time=stamp,
                authority="Example TSA",
                validated=True,
                trusted=True,
                status_codes=[StatusCode(code="timeStamp.trusted")],
            ),
            status_codes=[
                StatusCode(code="assertion.dataHash.mismatch", explanation="hash differs")
            ],
            warnings=["the Content Credentials do not hold: do not rely on anything they say"],
            ingredients=[child, model],
            training_mining={
                "entries": {
                    "cawg.ai_training": {"use": "notAllowed"},
                    "cawg.data_mining": {"use": "constrained", "constraint_info": "ask first"},
                }
            },
            creator=Creator(
                identities=[
                    IdentityAssertion(
                        label="cawg.identity",
                        signer="Jane Reporter",
                        trusted=True,
                        well_formed=True,
                        sig_type="cawg.x509.cose",
                        referenced_assertions=["self#jumbf=c2pa.assertions/c2pa.actions"],
                    )
                ],
                authors=[{"name": "J. Reporter", "identifier": "https://example.org/jr"}],
            ),
        ),
        watermark=WatermarkReading(algorithm="dwtdctsvd", detected=False, confidence=0.0),
        recovery=Recovery(attempted=True, reason="no genseal watermark"),
        summary="Content Credentials are present but invalid.",
    )
    buffer = io.StringIO()
    Console(file=buffer, width=140, color_system=None).print(report_panel(report))
    text = buffer.getvalue()
    assert ESC not in text and "\x07" not in text
    assert "story\\x1b]52;c;aGk=\\x07.jpg" in text
    assert "Evil \\x1b[31mCorp[/] [bold]" in text  # neither a terminal code nor markup
    assert "INVALID" in text and "do not rely: the Content Credentials do not hold" in text
    assert "2026-03-01T12:00:00+00:00 by Example TSA  trusted time-stamp" in text
    assert "assertion.dataHash.mismatch: " in text and "hash differs" in text
    assert "Jane Reporter  identity trusted (cawg.x509.cose)" in text
    assert "signs c2pa.actions" in text and "author J. Reporter (https://example.org/jr)" in text
    assert "ai_training: not allowed, data_mining: constrained (ask first)" in text
    lines = text.splitlines()
    tree = [line for line in lines if "├── " in line or "└── " in line]
    assert "├── edit.jpg (parentOf, image/jpeg)  trusted" in tree[0]
    assert "└── camera-raw.dng (parentOf)  invalid" in tree[1]
    assert "└── base-model (inputTo, model)  valid" in tree[2]
    assert any("signed by Newsroom, with Photo Editor 5" in line for line in lines)


def test_an_image_over_the_pixel_budget_keeps_its_c2pa_verdict_and_says_why_no_mark_was_read(
    sealed: Sealed, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GENSEAL_VERIFY_MAX_PIXELS", str(200 * 200))  # the image is 256x256
    code, stdout, stderr = invoke("verify", str(sealed.png), "--json")
    assert code == 0, stderr
    report = json.loads(stdout)
    assert report["c2pa"]["state"] == "trusted"
    assert report["watermark"]["detected"] is False
    assert any(
        "claims 256x256 pixels, more than the 40,000 allowed" in w for w in report["warnings"]
    ), report["warnings"]
