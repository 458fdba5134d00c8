"""Trust configuration: anchors, allowed EKUs, c2pa trust lists, network fetching, bad files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gen import build_verifier
from gen._verification import trust_anchors, trust_config
from genseal.errors import ConfigError
from genseal.settings import Settings
from provenance import C2paSigner, SigningIdentity, TrustConfig, load_pem_identity
from provenance.c2pa import C2paReader
from tests._media import photo
from tests._pki import DOCUMENT_SIGNING, CertificateAuthority
from tests.provenance.conftest import claim

PNG = "image/png"
EKU_FILE = "//id-kp-emailProtection\n1.3.6.1.5.5.7.3.4\n// documentSigning\n1.3.6.1.5.5.7.3.36\n"


@pytest.fixture(scope="module")
def sealed(identity: SigningIdentity) -> bytes:
    return C2paSigner(identity).sign(photo("coffee", 64), PNG, claim("gs_trust")).data


def _write(path: Path, text: str | bytes) -> Path:
    if isinstance(text, str):
        path.write_text(text)
    else:
        path.write_bytes(text)
    return path


def test_network_fetching_is_off_unless_asked_for() -> None:
    assert TrustConfig().c2pa_settings() == {
        "verify": {"remote_manifest_fetch": False, "ocsp_fetch": False}
    }
    online = TrustConfig(fetch_remote_manifests=True, fetch_ocsp=True).c2pa_settings()
    assert online["verify"] == {"remote_manifest_fetch": True, "ocsp_fetch": True}


def test_anchors_ekus_and_a_trust_list_merge(identity: SigningIdentity, tmp_path: Path) -> None:
    other = CertificateAuthority(name="another root")
    anchors = _write(tmp_path / "roots.pem", identity.root_cert_pem)
    ekus = _write(tmp_path / "ekus.txt", EKU_FILE)
    listed = _write(
        tmp_path / "list.json",
        json.dumps(
            {
                "version": 1,
                "trust": {"trust_anchors": other.root_pem.decode(), "trust_config": "1.2.3.4\n"},
                # A trust list cannot switch the network on.
                "verify": {"remote_manifest_fetch": True},
            }
        ),
    )
    trust = TrustConfig.from_files([anchors], allowed_ekus=ekus, trust_list=listed)
    assert trust.allowed_ekus == ("1.3.6.1.5.5.7.3.4", "1.3.6.1.5.5.7.3.36", "1.2.3.4")
    settings = trust.c2pa_settings()
    assert settings["verify"]["remote_manifest_fetch"] is False
    pem = settings["trust"]["trust_anchors"]
    assert identity.root_cert_pem.decode().strip() in pem and other.root_pem.decode() in pem
    assert settings["trust"]["trust_config"] == "1.3.6.1.5.5.7.3.4\n1.3.6.1.5.5.7.3.36\n1.2.3.4\n"


def test_a_trust_list_may_be_toml(identity: SigningIdentity, tmp_path: Path) -> None:
    pem = identity.root_cert_pem.decode()
    listed = _write(tmp_path / "list.toml", f'[trust]\ntrust_anchors = """\n{pem}"""\n')
    assert TrustConfig.from_files(trust_list=listed).has_anchors


def test_the_reader_trusts_by_a_trust_list(
    identity: SigningIdentity, sealed: bytes, tmp_path: Path
) -> None:
    listed = _write(
        tmp_path / "list.json",
        json.dumps({"trust": {"trust_anchors": identity.root_cert_pem.decode()}}),
    )
    assert C2paReader(trust=TrustConfig.from_files(trust_list=listed)).read(sealed, PNG).state == (
        "trusted"
    )
    assert C2paReader(None).read(sealed, PNG).state == "valid"
    # The old positional form still works, and adds to a trust configuration.
    assert C2paReader(identity.root_cert_pem).read(sealed, PNG).state == "trusted"
    assert C2paReader(identity.root_cert_pem, trust=TrustConfig()).trust.has_anchors


def test_document_signing_leaves_need_the_allowed_eku_file(tmp_path: Path) -> None:
    ca = CertificateAuthority()
    chain, key = ca.issue(eku=[DOCUMENT_SIGNING])
    files = ca.write(tmp_path / "ca", chain, key)
    signer = load_pem_identity(
        files["chain"], files["root"], files["key"], allowed_ekus=[DOCUMENT_SIGNING.dotted_string]
    )
    data = C2paSigner(signer).sign(photo("astronaut", 64), PNG, claim("gs_docsign")).data
    anchors = TrustConfig().with_anchors(ca.root_pem)
    refused = C2paReader(trust=anchors).read(data, PNG)
    assert refused.state == "invalid"
    assert "signingCredential.invalid" in {s.code for s in refused.status_codes}
    ekus = TrustConfig.from_files(allowed_ekus=_write(tmp_path / "ekus.txt", EKU_FILE))
    assert C2paReader(trust=anchors.merged(ekus)).read(data, PNG).state == "trusted"


@pytest.mark.parametrize(
    ("kind", "content", "message"),
    [
        ("anchors", b"not a certificate", "no PEM certificate could be read"),
        ("anchors", b"", "no PEM certificate could be read"),
        ("ekus", "1.3.6.1.5.5.7.3.4\nemailProtection\n", "line 2 of the allowed-EKU file"),
        ("ekus", "// only comments\n", "lists no OID"),
        ("ekus", b"\xff\xfe\x00", "not UTF-8"),
        ("list", "{not json", "is not a c2pa settings file"),
        ("list", '{"verify": {}}', "has no `trust` table"),
        ("list", '{"trust": {"trust_anchors": 42}}', "must be a string"),
        ("list", '{"trust": {}}', "names no trust anchors"),
        ("list", '{"trust": {"trust_anchors": "garbage"}}', "`trust.trust_anchors` in the"),
        ("list", '{"trust": {"trust_config": "x.y"}}', "is not an OID"),
    ],
)
def test_bad_trust_files_are_config_errors(
    tmp_path: Path, kind: str, content: str | bytes, message: str
) -> None:
    path = _write(tmp_path / f"bad.{'json' if kind == 'list' else 'txt'}", content)
    with pytest.raises(ConfigError, match=message) as caught:
        if kind == "anchors":
            TrustConfig.from_files([path])
        elif kind == "ekus":
            TrustConfig.from_files(allowed_ekus=path)
        else:
            TrustConfig.from_files(trust_list=path)
    assert str(path) in str(caught.value)


def test_a_missing_trust_file_names_itself(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.json"
    with pytest.raises(ConfigError, match=r"cannot read trust list .*nowhere\.json"):
        TrustConfig.from_files(trust_list=missing)
    with pytest.raises(ConfigError, match="extra trust anchors"):
        TrustConfig().with_anchors(
            b"-----BEGIN CERTIFICATE-----\nnope\n", "the extra trust anchors"
        )


def test_settings_build_the_verifier_trust(
    genseal_home: Path, identity: SigningIdentity, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = CertificateAuthority(name="auditor's root")
    monkeypatch.setenv(
        "GENSEAL_TRUST_ANCHORS", json.dumps([str(_write(tmp_path / "r.pem", other.root_pem))])
    )
    monkeypatch.setenv("GENSEAL_TRUST_CONFIG", str(_write(tmp_path / "ekus.txt", EKU_FILE)))
    monkeypatch.setenv(
        "GENSEAL_TRUST_LIST",
        str(
            _write(
                tmp_path / "list.json",
                json.dumps({"trust": {"trust_anchors": identity.root_cert_pem.decode()}}),
            )
        ),
    )
    monkeypatch.setenv("GENSEAL_VERIFY_OCSP", "true")
    settings = Settings()
    assert settings.verify_ocsp and not settings.verify_remote_manifests
    trust = trust_config(settings)
    assert trust.fetch_ocsp and not trust.fetch_remote_manifests
    assert DOCUMENT_SIGNING.dotted_string in trust.allowed_ekus
    pem = trust.anchors_pem
    assert other.root_pem in pem and identity.root_cert_pem.strip() in pem
    assert trust_anchors(settings) == pem
    # A bad file in the settings stops the verifier from being built, saying which file.
    monkeypatch.setenv("GENSEAL_TRUST_CONFIG", str(_write(tmp_path / "bad.txt", "hello\n")))
    with pytest.raises(ConfigError, match=r"bad\.txt"):
        build_verifier(Settings())
