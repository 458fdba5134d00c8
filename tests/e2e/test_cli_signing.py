"""Signing identities through the command line, as an operator configures them: PEM files, a
KMS signer plugin, a time-stamp authority, key rotation, and refusals at start-up."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.cli import app
from tests._pki import DOCUMENT_SIGNING, NOW, CertificateAuthority
from tests._tsa import LocalTsa

runner = CliRunner()
PROMPT = "a ceramic figurine of a lighthouse"
FAST = ["--size", "256x256", "--steps", "2", "--seed", "3"]


def invoke(*args: str) -> tuple[int, str, str]:
    """Exit code, stdout and stderr, with the terminal's line wrapping undone in stderr."""
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, " ".join(result.stderr.split())


def generate(out: Path) -> tuple[int, dict[str, object] | None, str]:
    code, stdout, stderr = invoke("generate", PROMPT, *FAST, "--out", str(out), "--json")
    return code, json.loads(stdout) if code == 0 else None, stderr


def verify(path: str, *extra: str) -> dict[str, object]:
    code, stdout, stderr = invoke("verify", path, "--json", *extra)
    assert "Traceback" not in stderr
    report = json.loads(stdout)
    assert isinstance(report, dict)
    assert code == (0 if report["c2pa"]["state"] == "trusted" else 3)
    return report


def configure_pem(
    monkeypatch: pytest.MonkeyPatch,
    directory: Path,
    authority: CertificateAuthority,
    **leaf: object,
) -> dict[str, Path]:
    chain, key = authority.issue(common_name="Example Platform signer", **leaf)  # type: ignore[arg-type]
    files = authority.write(directory, chain, key)
    monkeypatch.setenv("GENSEAL_SIGNING_CERT", str(files["chain"]))
    monkeypatch.setenv("GENSEAL_SIGNING_KEY", str(files["key"]))
    monkeypatch.setenv("GENSEAL_SIGNING_ROOT", str(files["root"]))
    return files


def test_production_pem_identity_signs_and_verifies_trusted(
    genseal_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca = CertificateAuthority(name="Example Platform root")
    configure_pem(monkeypatch, tmp_path / "pki", ca, kind="p384")
    monkeypatch.setenv("GENSEAL_TRAINING_MINING", "notAllowed")
    monkeypatch.setenv("GENSEAL_CREATOR_NAME", "Example Platform")

    code, stdout, _ = invoke("keys", "check", "--json")
    assert code == 0, stdout
    check = json.loads(stdout)
    assert check["ok"] and check["algorithm"] == "ES384" and check["key"] == "local"

    code, result, stderr = generate(tmp_path / "out")
    assert code == 0, stderr
    assert "development signing identity" not in stderr, "no dev identity is made"
    assert not (genseal_home / "keys" / "root.pem").exists()
    assert result is not None
    path = result["images"][0]["path"]  # type: ignore[index]
    report = verify(path)  # the deployment's own verifier trusts GENSEAL_SIGNING_ROOT
    c2pa = report["c2pa"]
    assert isinstance(c2pa, dict)
    assert c2pa["state"] == "trusted" and c2pa["signer"] == "Example Platform signer"
    assert c2pa["signature_algorithm"] == "es384"
    assert [a["name"] for a in c2pa["creator"]["authors"]] == ["Example Platform"]
    assert c2pa["training_mining"]["entries"]["cawg.ai_training"]["use"] == "notAllowed"

    code, stdout, _ = invoke("keys", "root")
    assert code == 0 and stdout.strip() == ca.root_pem.decode().strip()


@pytest.mark.parametrize(
    ("leaf", "message"),
    [
        ({"not_after": NOW - dt.timedelta(days=1)}, "expired at"),
        ({"ca": True}, "is a CA"),
        ({"eku": []}, "ExtendedKeyUsage"),
    ],
)
def test_unusable_identity_stops_generation_before_anything_is_made(
    genseal_home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    leaf: dict[str, object],
    message: str,
) -> None:
    configure_pem(monkeypatch, tmp_path / "pki", CertificateAuthority(), **leaf)
    out = tmp_path / "out"
    code, _, stderr = generate(out)
    assert code == 1 and message in stderr and "Traceback" not in stderr
    assert not out.exists()
    code, stdout, _ = invoke("keys", "check")
    assert code == 2 and message in " ".join(stdout.split())


def test_missing_root_or_key_is_a_configuration_error(
    genseal_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure_pem(monkeypatch, tmp_path / "pki", CertificateAuthority())
    monkeypatch.delenv("GENSEAL_SIGNING_ROOT")
    code, _, stderr = generate(tmp_path / "out")
    assert code == 2 and "GENSEAL_SIGNING_ROOT" in stderr
    monkeypatch.setenv("GENSEAL_SIGNING_ROOT", str(tmp_path / "pki" / "root.pem"))
    monkeypatch.delenv("GENSEAL_SIGNING_KEY")
    code, _, stderr = generate(tmp_path / "out")
    assert code == 2 and "GENSEAL_SIGNING_KEY" in stderr


def test_kms_signer_plugin_signs_without_a_key_file(
    genseal_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kms = tmp_path / "kms"
    monkeypatch.setenv("GENSEAL_SIGNER_PLUGIN", "tests.provenance._kms_plugin:make_signer")
    monkeypatch.setenv("GENSEAL_TEST_KMS_DIR", str(kms))
    monkeypatch.setenv("GENSEAL_SIGNING_ROOT", str(kms / "root.pem"))
    code, stdout, _ = invoke("keys", "check", "--json")
    assert code == 0, stdout
    assert json.loads(stdout)["key"].startswith("remote signer tests.provenance._kms_plugin")
    code, result, stderr = generate(tmp_path / "out")
    assert code == 0, stderr
    assert result is not None
    report = verify(result["images"][0]["path"])  # type: ignore[index]
    assert report["c2pa"]["state"] == "trusted"  # type: ignore[index]
    assert report["c2pa"]["signer"] == "genseal test KMS signer"  # type: ignore[index]


def test_time_stamped_manifests_and_an_unreachable_tsa(
    genseal_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with LocalTsa() as tsa:
        (tmp_path / "tsa-root.pem").write_bytes(tsa.root_pem)
        monkeypatch.setenv("GENSEAL_TSA_URL", tsa.url)
        code, result, stderr = generate(tmp_path / "out")
        assert code == 0, stderr
        assert tsa.requests >= 2, "the start-up self-test and the image were time-stamped"
        assert result is not None
        path = result["images"][0]["path"]  # type: ignore[index]
        report = verify(path, "--trust", str(tmp_path / "tsa-root.pem"))
        stamp = report["c2pa"]["time_stamp"]  # type: ignore[index]
        assert stamp["present"] and stamp["trusted"] and stamp["time"]

        tsa.fail()
        out = tmp_path / "refused"
        code, _, stderr = generate(out)
        assert code == 1 and tsa.url in stderr and "Traceback" not in stderr
        assert not out.exists(), "never an image signed without the configured time-stamp"


def test_key_rotation_keeps_old_images_trusted(genseal_home: Path, tmp_path: Path) -> None:
    code, first, stderr = generate(tmp_path / "first")
    assert code == 0, stderr
    code, stdout, _ = invoke("keys", "renew", "--json")
    assert code == 0 and json.loads(stdout)["not_after"]
    code, second, _ = generate(tmp_path / "second")
    assert code == 0
    assert first is not None and second is not None
    old, new = (verify(r["images"][0]["path"]) for r in (first, second))  # type: ignore[index]
    assert old["c2pa"]["state"] == new["c2pa"]["state"] == "trusted"  # type: ignore[index]
    old_cert = old["c2pa"]["signing_certificate"]["serial_number"]  # type: ignore[index]
    assert old_cert != new["c2pa"]["signing_certificate"]["serial_number"]  # type: ignore[index]


def test_document_signing_certificate_needs_the_deployment_trust_configuration(
    genseal_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure_pem(monkeypatch, tmp_path / "pki", CertificateAuthority(), eku=[DOCUMENT_SIGNING])
    code, stdout, _ = invoke("keys", "check")
    assert code == 2 and "GENSEAL_TRUST_CONFIG" in " ".join(stdout.split())

    ekus = tmp_path / "store.cfg"
    ekus.write_text(f"# the C2PA trust list's allowed EKUs\n{DOCUMENT_SIGNING.dotted_string}\n")
    monkeypatch.setenv("GENSEAL_TRUST_CONFIG", str(ekus))
    code, result, stderr = generate(tmp_path / "out")
    assert code == 0, stderr
    assert result is not None
    report = verify(result["images"][0]["path"])  # type: ignore[index]
    assert report["c2pa"]["state"] == "trusted"  # type: ignore[index]
