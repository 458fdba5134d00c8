"""The ``genseal`` command end to end on the embedded tiny model: real diffusion, real
classifiers, real watermark, real C2PA signing, real SQLite store."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from api.cli import app
from tests._c2pa import c2pa_read
from tests._media import photo

runner = CliRunner()
FOX = "a ceramic figurine of a red fox on a desk"
FAST = ["--size", "256x256", "--steps", "2", "--seed", "7"]


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def root_pem() -> bytes:
    code, stdout, _ = invoke("keys", "root")
    assert code == 0
    return stdout.encode()


def test_text_to_image_is_released_trusted_and_complete(genseal_home: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    code, stdout, stderr = invoke("generate", FOX, *FAST, "--out", str(out), "--json")
    assert code == 0, stderr
    assert "development signing identity" in stderr
    payload = json.loads(stdout)
    assert payload["status"] == "released"
    assert payload["decision"]["action"] == "allow"
    [image] = payload["images"]
    path = Path(image["path"])
    assert path.parent == out and path.suffix == ".png"
    assert {f["check"] for f in image["findings"]} >= {"opennsfw"}

    state, manifest = c2pa_read(path.read_bytes(), "image/png", root_pem())
    assert state == "Trusted"
    actions = manifest["actions"]
    assert actions[0]["action"] == "c2pa.created"
    assert actions[0]["digitalSourceType"].endswith("trainedAlgorithmicMedia")
    moderation = manifest["moderation"]
    assert moderation["decision"] == "allow"
    assert moderation["genseal_id"] == image["manifest_id"]
    assert moderation["policy"]["id"] == "default"
    assert len(moderation["policy"]["sha256"]) == 64
    assert {c["check"] for c in moderation["checks"]} >= {"opennsfw", "prompt_terms"}
    assert manifest["soft_binding"]["blocks"][0]["value"] == image["watermark"].split(":")[1]


def test_figurine_image_to_image_records_the_input_as_ingredient(
    genseal_home: Path, tmp_path: Path, astronaut_png: Path
) -> None:
    code, stdout, stderr = invoke(
        "generate", "", "--preset", "figurine", "--image", str(astronaut_png),
        "--consent-subject", "user-42", "--consent-reference", "consent/2026/0042",
        *FAST, "--out", str(tmp_path / "out"), "--json",
    )  # fmt: skip
    assert code == 0, stderr
    payload = json.loads(stdout)
    [image] = payload["images"]
    # A real person's photo needs consent before it is edited; the attestation is why this
    # image could be made, and the decision says so.
    assert payload["decision"]["consent_satisfied"] == ["require-consent-real-person"]
    assert image["decision"]["consent_satisfied"] == ["require-consent-real-person"]
    state, manifest = c2pa_read(Path(image["path"]).read_bytes(), "image/png", root_pem())
    assert state == "Trusted"
    names = [a["action"] for a in manifest["actions"]]
    assert names[:2] == ["c2pa.opened", "c2pa.edited"]
    [ingredient] = manifest["ingredients"]
    assert ingredient["relationship"] == "parentOf"
    assert ingredient["title"] == "astronaut.png"


def test_verify_reports_trusted_then_invalid_after_a_pixel_change(
    genseal_home: Path, tmp_path: Path
) -> None:
    code, stdout, _ = invoke("generate", FOX, *FAST, "--out", str(tmp_path), "--json")
    assert code == 0
    path = Path(json.loads(stdout)["images"][0]["path"])

    code, stdout, _ = invoke("verify", str(path), "--json")
    assert code == 0
    report = json.loads(stdout)
    assert report["c2pa"]["state"] == "trusted"
    assert report["watermark"]["detected"] is True

    # Change one pixel but keep the manifest: the hard binding no longer matches.
    tampered = tmp_path / "tampered.png"
    _rewrite_pixels_keep_manifest(path, tampered)
    code, stdout, _ = invoke("verify", str(tampered), "--json")
    assert code == 3  # not trusted
    report = json.loads(stdout)
    assert report["c2pa"]["state"] == "invalid"
    assert report["c2pa"]["status_codes"]


def test_stripped_manifest_is_absent_and_recovered_from_the_store(
    genseal_home: Path, tmp_path: Path
) -> None:
    code, stdout, _ = invoke("generate", FOX, *FAST, "--out", str(tmp_path), "--json")
    assert code == 0
    image = json.loads(stdout)["images"][0]
    resaved = tmp_path / "resaved.png"
    Image.open(image["path"]).save(resaved)  # Pillow drops the C2PA chunk

    code, stdout, _ = invoke("verify", str(resaved), str(image["path"]), "--json")
    assert code == 3  # one of them is not trusted
    stripped, original = json.loads(stdout)  # an array, in the order given
    assert stripped["c2pa"]["state"] == "absent"
    assert stripped["recovery"]["found"] is True
    assert stripped["recovery"]["manifest_id"] == image["manifest_id"]
    assert set(stripped["recovery"]["evidence"]) >= {"watermark", "fingerprint"}
    assert original["c2pa"]["state"] == "trusted"


def test_blocked_prompt_exits_3_and_writes_nothing(genseal_home: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    code, stdout, _ = invoke(
        "generate", "explicit porn of a woman", *FAST, "--out", str(out), "--json"
    )
    assert code == 3
    payload = json.loads(stdout)
    assert payload["status"] == "blocked"
    assert payload["decision"]["action"] == "block"
    assert payload["decision"]["stage"] == "prompt"
    assert payload["images"] == []
    assert not out.exists() or not any(out.iterdir())


def test_seal_of_a_real_photo_is_trusted(genseal_home: Path, tmp_path: Path) -> None:
    source = tmp_path / "coffee.jpg"
    source.write_bytes(photo("coffee", size=None, fmt="JPEG"))
    code, stdout, stderr = invoke(
        "seal", str(source), "--source-model", "acme/diffuser-v2", "--out", str(tmp_path), "--json"
    )
    assert code == 0, stderr
    [image] = json.loads(stdout)["images"]
    assert image["mime"] == "image/jpeg"
    state, manifest = c2pa_read(Path(image["path"]).read_bytes(), "image/jpeg", root_pem())
    assert state == "Trusted"
    assert "acme/diffuser-v2" in json.dumps(manifest["actions"])


def test_screen_prints_findings_and_decision(
    genseal_home: Path, astronaut_png: Path, tmp_path: Path
) -> None:
    coffee = tmp_path / "coffee.png"
    coffee.write_bytes(photo("coffee"))
    code, stdout, _ = invoke("screen", str(coffee), "--prompt", FOX, "--json")
    assert code == 0
    payload = json.loads(stdout)
    assert payload["decision"]["action"] == "allow"
    assert {f["stage"] for f in payload["findings"]} == {"prompt", "input"}

    # A real person's photo: editing it would need their consent.
    code, stdout, _ = invoke("screen", str(astronaut_png), "--prompt", FOX, "--json")
    assert code == 3
    payload = json.loads(stdout)
    assert payload["decision"]["action"] == "require_consent"
    assert any(
        f["category"] == "real_person" and f["state"] == "flagged" for f in payload["findings"]
    )

    code, stdout, _ = invoke("screen", "--prompt", "naked schoolgirl", "--json")
    assert code == 3
    assert json.loads(stdout)["decision"]["action"] == "block"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--size", "300x300"], "multiple of 8"),
        (["--size", "128x128"], "the watermark needs at least 256x256"),
        (["--seed", str(2**64)], "seed: Input should be less than or equal to 4294967295"),
        (["--consent-subject", "x" * 300, "--consent-reference", "r"], "subject: String should"),
        (["--size", "huge"], "512x512"),
        (["--model", "nobody/no-such-model"], "download"),
        (["--format", "gif"], "png, jpeg or webp"),
        (["--preset", "no-such-preset"], "figurine"),
    ],
)
def test_bad_options_exit_2_and_write_nothing(
    genseal_home: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    out = tmp_path / "out"
    code, _, stderr = invoke("generate", FOX, "--steps", "2", *args, "--out", str(out))
    assert code == 2
    assert message in stderr
    assert "Traceback" not in stderr
    assert not out.exists()


def test_unreadable_images_exit_2(genseal_home: Path, tmp_path: Path) -> None:
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(photo("astronaut")[:2000])
    not_an_image = tmp_path / "notes.png"
    not_an_image.write_text("hello")
    for path in (truncated, not_an_image, tmp_path / "missing.png"):
        code, _, stderr = invoke("seal", str(path), "--out", str(tmp_path / "out"))
        assert code == 2, stderr
        assert "error:" in stderr and "Traceback" not in stderr
    assert not (tmp_path / "out").exists()


def test_huge_image_is_refused_before_decoding(
    genseal_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GENSEAL_MAX_IMAGE_PIXELS", "10000")
    path = tmp_path / "big.png"
    path.write_bytes(photo("astronaut", size=512))
    code, _, stderr = invoke("seal", str(path), "--out", str(tmp_path / "out"))
    assert code == 2
    assert "limit" in stderr


def test_signing_failure_fails_closed_and_is_audited(genseal_home: Path, tmp_path: Path) -> None:
    assert invoke("keys", "init")[0] == 0
    (genseal_home / "keys" / "signer.key").write_text("-----BEGIN PRIVATE KEY-----\ngarbage\n")
    out = tmp_path / "out"
    code, _, stderr = invoke("generate", FOX, *FAST, "--out", str(out))
    assert code == 1
    assert "genseal keys init" in stderr
    assert not out.exists()


def test_identity_that_c2pa_rejects_fails_closed_at_start(
    genseal_home: Path, tmp_path: Path
) -> None:
    assert invoke("keys", "init")[0] == 0
    chain = genseal_home / "keys" / "chain.pem"
    leaf, _, rest = chain.read_text().partition("-----END CERTIFICATE-----")
    chain.write_text(rest.lstrip() + leaf + "-----END CERTIFICATE-----\n")  # intermediate first
    out = tmp_path / "out"
    code, _, stderr = invoke("generate", FOX, *FAST, "--out", str(out))
    assert code == 1, stderr
    assert "error:" in stderr and "Traceback" not in stderr
    assert not out.exists()


def test_malformed_policy_is_an_error_at_start(genseal_home: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "id: x\nversion: '1'\nrules:\n"
        "  - id: r\n    when: 'findings.exists(f,'\n    action: allow\n"
    )
    code, _, stderr = invoke(
        "generate", FOX, *FAST, "--policy", str(bad), "--out", str(tmp_path / "o")
    )
    assert code == 2
    assert "bad.yaml" in stderr


def test_keys_init_refuses_to_overwrite_and_root_prints_pem(genseal_home: Path) -> None:
    assert invoke("keys", "init")[0] == 0
    code, _, stderr = invoke("keys", "init")
    assert code == 2 and "--force" in stderr
    assert root_pem().startswith(b"-----BEGIN CERTIFICATE-----")
    assert (genseal_home / "keys" / "signer.key").stat().st_mode & 0o777 == 0o600


def _rewrite_pixels_keep_manifest(source: Path, target: Path) -> None:
    """Flip one pixel inside the PNG's IDAT while keeping every other chunk (the manifest too)."""
    import struct
    import zlib

    data = source.read_bytes()
    chunks = []
    offset = 8
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        body = data[offset + 8 : offset + 8 + length]
        chunks.append((kind, body))
        offset += 12 + length
    idat = b"".join(body for kind, body in chunks if kind == b"IDAT")
    raw = bytearray(zlib.decompress(idat))
    raw[10] ^= 0xFF
    new_idat = zlib.compress(bytes(raw))
    out = io.BytesIO()
    out.write(data[:8])
    written = False
    for kind, body in chunks:
        if kind == b"IDAT":
            if written:
                continue
            body, written = new_idat, True
        out.write(struct.pack(">I", len(body)) + kind + body)
        out.write(struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))
    target.write_bytes(out.getvalue())


def test_verify_trusts_another_root_only_when_given(
    genseal_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, stdout, _ = invoke("generate", FOX, *FAST, "--out", str(tmp_path), "--json")
    assert code == 0
    path = json.loads(stdout)["images"][0]["path"]
    signer_root = tmp_path / "signer-root.pem"
    signer_root.write_bytes(root_pem())

    # An auditor on another machine: no identity of their own, an empty store.
    monkeypatch.setenv("GENSEAL_HOME", str(tmp_path / "auditor"))
    code, stdout, _ = invoke("verify", path, "--json")
    assert code == 3  # valid is not trusted
    report = json.loads(stdout)
    assert report["c2pa"]["state"] == "valid"
    assert not (tmp_path / "auditor" / "keys").exists()

    code, stdout, _ = invoke("verify", path, "--trust", str(signer_root), "--json")
    assert code == 0 and json.loads(stdout)["c2pa"]["state"] == "trusted"

    code, _, stderr = invoke("verify", path, "--trust", str(tmp_path / "nope.pem"))
    assert code == 2 and "nope.pem" in stderr


def test_a_manifest_exported_as_a_sidecar_verifies_its_image(
    genseal_home: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    code, stdout, stderr = invoke("generate", FOX, *FAST, "--out", str(out), "--json")
    assert code == 0, stderr
    [image] = json.loads(stdout)["images"]
    sidecar = tmp_path / "sealed.c2pa"
    code, stdout, stderr = invoke(
        "manifests", "export", image["manifest_id"], "--out", str(sidecar), "--json"
    )
    assert code == 0, stderr
    assert json.loads(stdout)["bytes"] == sidecar.stat().st_size > 0

    code, stdout, stderr = invoke("verify", image["path"], "--manifest", str(sidecar), "--json")
    assert code == 0, stderr
    report = json.loads(stdout)
    assert report["c2pa"]["state"] == "trusted"
    assert report["c2pa"]["source"] == "sidecar"

    # A copy re-saved without its manifest is not the file the sidecar binds.
    stripped = tmp_path / "stripped.png"
    Image.open(image["path"]).save(stripped)
    code, stdout, _ = invoke("verify", str(stripped), "--manifest", str(sidecar), "--json")
    report = json.loads(stdout)
    assert report["c2pa"]["state"] == "invalid"
    assert report["recovery"]["manifest_id"] == image["manifest_id"]

    code, _, stderr = invoke("verify", image["path"], str(stripped), "--manifest", str(sidecar))
    assert code == 2 and "exactly one file" in stderr
    garbage = tmp_path / "garbage.c2pa"
    garbage.write_bytes(b"not a manifest store")
    code, _, stderr = invoke("verify", image["path"], "--manifest", str(garbage))
    assert code == 2 and "sidecar" in stderr and "Traceback" not in stderr
    code, _, stderr = invoke("manifests", "export", "gs_nothing_here")
    assert code == 2 and "no manifest gs_nothing_here" in stderr


def test_with_json_an_error_is_json_on_stdout(genseal_home: Path, tmp_path: Path) -> None:
    code, stdout, stderr = invoke("generate", FOX, "--size", "128x128", "--json")
    assert code == 2 and "256x256" in stderr  # the person at the terminal reads it too
    error = json.loads(stdout)["error"]
    assert error["code"] == "invalid_request" and error["exit_code"] == 2
    assert "256x256" in error["message"]
    code, stdout, _ = invoke("verify", str(tmp_path / "missing.png"), "--json")
    assert code == 2 and json.loads(stdout)["error"]["message"].endswith("does not exist")


def test_serve_on_a_port_in_use_exits_2_before_loading_anything(genseal_home: Path) -> None:
    import socket

    with socket.create_server(("127.0.0.1", 0)) as holder:
        port = holder.getsockname()[1]
        code, _, stderr = invoke("serve", "--host", "127.0.0.1", "--port", str(port))
    assert code == 2
    assert f"cannot listen on 127.0.0.1:{port}" in stderr


def test_a_released_generation_writes_nothing_on_stderr(genseal_home: Path, tmp_path: Path) -> None:
    invoke("keys", "init")  # the development identity's one-time warning, out of the way
    code, _, stderr = invoke("generate", FOX, "--steps", "2", "--out", str(tmp_path / "out"))
    assert code == 0 and stderr == ""  # no library's chatter either


def test_serve_beyond_loopback_without_a_key_refuses_and_says_what_to_do(
    genseal_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GENSEAL_AUTH", raising=False)
    monkeypatch.delenv("GENSEAL_API_KEYS", raising=False)
    code, _, stderr = invoke("serve", "--host", "0.0.0.0", "--port", "0")
    assert code == 2
    assert "would serve anyone" in stderr
    for way_out in ("genseal tenants create", "GENSEAL_API_KEYS", "GENSEAL_AUTH=none"):
        assert way_out in stderr
