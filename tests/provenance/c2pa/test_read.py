"""Third-party C2PA files (shared/c2pa-conformance) read as their fixtures.tsv expects.

Every row is read three ways: with the C2PA test roots as PEM anchors plus the allowed-EKU
file, with the same roots as c2pa's settings-JSON trust list, and with no anchors at all.
``confirmed`` and ``observed-only`` rows must give their expected state and failure codes
(the reference reader is c2pa-python 0.38.1, which genseal pins); ``DISPUTED`` rows, where
validators disagree, are tabled and warned about but never fail; ``RAISES`` rows (no
manifest, remote-only, unsupported algorithm, pre-release) must give a report with a clear
state and reason. Reading is c2pa's alone here (pixels would only slow the big camera files);
the whole verifier, and the ``genseal verify`` command, run over the small files.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.cli import app
from provenance import C2paReport, DwtDctSvdWatermarker, IngredientReport, TrustConfig, Verifier
from provenance._media import sniff_mime
from provenance.c2pa import C2paReader

CONFORMANCE = Path(
    os.environ.get(
        "GENSEAL_C2PA_CONFORMANCE",
        Path(__file__).resolve().parents[4] / "shared" / "c2pa-conformance",
    )
)

pytestmark = pytest.mark.skipif(
    not (CONFORMANCE / "fixtures.tsv").is_file(), reason=f"no conformance fixtures at {CONFORMANCE}"
)

# Small enough to verify in full (pixels, watermark, fingerprint) in a few seconds together.
SMALL = [
    "pt_adobe-20220124-A.jpg",
    "pt_adobe-20220124-CA.jpg",
    "pt_adobe-20220124-E-dat-CA.jpg",
    "pt_adobe-20220124-E-sig-CA.jpg",
    "rs_CA_ct.jpg",
    "rs_cloud.jpg",
    "rs_no_alg.jpg",
    "rs_libpng-test.png",
    "rs_libpng-test_with_url.png",
    "rs_update_manifest.jpg",
    "ts_trustnxt-icon-signed-timestamp.jpg",
]
TEST_SIGNER_DN = (
    "CN=C2PA Signer,OU=FOR TESTING_ONLY,O=C2PA Test Signing Cert,L=Somewhere,ST=CA,C=US"
)


def _rows() -> dict[str, dict[str, str]]:
    if not (CONFORMANCE / "fixtures.tsv").is_file():
        return {}
    with (CONFORMANCE / "fixtures.tsv").open(newline="") as fh:
        return {row["filename"]: row for row in csv.DictReader(fh, delimiter="\t")}


ROWS = _rows()
TRUST_MODES = ["pem-and-ekus", "trust-list-json", "no-anchors"]


def _codes(value: str) -> set[str]:
    return {c.strip() for c in value.split(",") if c.strip()}


@pytest.fixture(scope="module")
def readers() -> dict[str, C2paReader]:
    anchored = TrustConfig.from_files(
        [CONFORMANCE / "test-anchors.pem"],
        allowed_ekus=CONFORMANCE / "test-trust-config.txt",
    )
    listed = TrustConfig.from_files(trust_list=CONFORMANCE / "trust_config_test_settings.json")
    return {
        "pem-and-ekus": C2paReader(trust=anchored),
        "trust-list-json": C2paReader(trust=listed),
        "no-anchors": C2paReader(None),
    }


@pytest.fixture(scope="module")
def reports(readers: dict[str, C2paReader]) -> dict[tuple[str, str], C2paReport]:
    out = {}
    for filename in ROWS:
        data = (CONFORMANCE / filename).read_bytes()
        for mode, reader in readers.items():
            out[(filename, mode)] = reader.read(data, sniff_mime(data))
    return out


def _walk(ingredients: list[IngredientReport]) -> Iterator[IngredientReport]:
    for ingredient in ingredients:
        yield ingredient
        yield from _walk(ingredient.ingredients)


def _expected(row: dict[str, str], mode: str) -> tuple[str, set[str]]:
    if mode == "no-anchors":
        return row["expected_state_no_anchors"], _codes(row["failure_codes_no_anchors"])
    return row["expected_state_test_anchors"], _codes(row["expected_failure_codes"])


@pytest.mark.parametrize("mode", TRUST_MODES)
@pytest.mark.parametrize("filename", sorted(ROWS))
def test_fixture_reads_as_expected(
    reports: dict[tuple[str, str], C2paReport], filename: str, mode: str
) -> None:
    row = ROWS[filename]
    report = reports[(filename, mode)]
    expected, failure_codes = _expected(row, mode)
    # Whatever the row, the report explains itself.
    for status in (*report.status_codes, *report.informational, *report.successes):
        assert status.meaning, status
    if report.state in ("absent", "invalid"):
        assert report.reason, filename
    if expected.startswith("RAISES"):
        _check_unreadable(report, expected)
        return
    if row["confidence"] == "DISPUTED":
        pytest.skip("validators disagree on this file: see test_disputed_rows_are_tabled")
    assert report.state == expected.lower(), (filename, row["confidence"], report.reason)
    codes = {s.code for s in report.status_codes}
    assert failure_codes <= codes, (filename, report.status_codes)
    if report.state == "trusted":
        assert codes == set()
        assert report.signer and report.signing_certificate is not None
        assert not any("not in the trust list" in w for w in report.warnings)
    if report.state == "valid":
        assert any("not in the trust list" in w for w in report.warnings), report.warnings
    if mode == "no-anchors" and row["untrusted_without_anchors"] == "yes":
        assert "signingCredential.untrusted" in codes
    if mode != "no-anchors":
        informational = {s.code for s in report.informational}
        assert _codes(row["expected_informational_codes"]) <= informational, filename
        _check_ingredient_deltas(report, row["ingredient_delta_codes"])


def _check_unreadable(report: C2paReport, expected: str) -> None:
    codes = {s.code for s in report.status_codes}
    if "ManifestNotFound" in expected:
        assert report.state == "absent" and codes == set()
        assert report.reason is not None and "no C2PA manifest" in report.reason
    elif "Remote:" in expected:
        assert report.state == "absent" and codes == {"manifest.inaccessible"}
        assert report.remote_manifest is not None
        assert report.remote_manifest.startswith("http")
        assert any("GENSEAL_VERIFY_REMOTE_MANIFESTS" in w for w in report.warnings)
    elif "unknown algorithm" in expected:
        assert report.state == "invalid" and codes == {"algorithm.unsupported"}
    elif "prerelease" in expected:
        assert report.state == "invalid" and codes == {"general.error"}
        assert report.reason is not None and "pre-release" in report.reason
    else:
        pytest.fail(f"a RAISES row of a kind this suite does not know: {expected}")


def _check_ingredient_deltas(report: C2paReport, column: str) -> None:
    failures, informational = set(), set()
    for ingredient in _walk(report.ingredients):
        failures.update(ingredient.failures)
        informational.update(s.code for s in ingredient.informational)
    for entry in _codes(column):
        kind, _, code = entry.partition(":")
        assert code in (failures if kind == "f" else informational), (entry, report.ingredients)


def test_disputed_rows_are_tabled(
    reports: dict[tuple[str, str], C2paReport], capsys: pytest.CaptureFixture[str]
) -> None:
    """Where validators disagree genseal pins c2pa-rs's answer; this shows both, never fails."""
    lines = []
    for filename, row in sorted(ROWS.items()):
        if row["confidence"] != "DISPUTED":
            continue
        for mode in TRUST_MODES:
            report = reports[(filename, mode)]
            expected, failure_codes = _expected(row, mode)
            codes = {s.code for s in report.status_codes}
            agrees = report.state == expected.lower() and failure_codes <= codes
            lines.append(
                f"{'as pinned' if agrees else 'DIFFERS'}  {filename} [{mode}]: expected {expected} "
                f"{sorted(failure_codes)}, got {report.state} {sorted(codes)}"
            )
            if not agrees:
                warnings.warn(f"disputed fixture reads otherwise: {lines[-1]}", stacklevel=1)
    with capsys.disabled():
        print("\nDISPUTED fixtures (validators disagree; reported, not judged):")
        print("\n".join(f"  {line}" for line in lines))
    assert lines, "fixtures.tsv lists no DISPUTED row any more"


def test_signer_and_issuer_are_distinguished_names(
    reports: dict[tuple[str, str], C2paReport],
) -> None:
    report = reports[("pt_adobe-20220124-C.jpg", "pem-and-ekus")]
    cert = report.signing_certificate
    assert cert is not None
    assert cert.subject == TEST_SIGNER_DN
    assert cert.issuer == (
        "CN=Intermediate CA,OU=FOR TESTING_ONLY,O=C2PA Test Intermediate Root CA,"
        "L=Somewhere,ST=CA,C=US"
    )
    assert (report.signer, report.signer_organization) == ("C2PA Signer", "C2PA Test Signing Cert")
    assert report.issuer == "Intermediate CA (C2PA Test Intermediate Root CA)"
    assert cert.not_after == dt.datetime(2030, 8, 26, 18, 46, 28, tzinfo=dt.UTC)
    nikon = reports[("pt_nikon-20221019-building.jpeg", "pem-and-ekus")].signing_certificate
    assert nikon is not None and nikon.subject is not None
    assert "O=NIKON CORPORATION" in nikon.subject and nikon.subject.endswith("C=JP")


def test_time_stamps_are_reported_apart_from_the_signature(
    reports: dict[tuple[str, str], C2paReport],
) -> None:
    # A third-party (TypeScript) signer whose TSA token is signed by its own signing cert.
    ts = reports[("ts_trustnxt-icon-signed-timestamp.jpg", "pem-and-ekus")]
    stamp = ts.time_stamp
    assert stamp.present and stamp.validated and stamp.trusted
    assert stamp.time == dt.datetime(2026, 1, 13, 12, 35, 40, 669000, tzinfo=dt.UTC)
    assert stamp.authority == "C2PA Signer"
    assert ts.signed_at == stamp.time
    # DigiCert's TSA, full names.
    rs = reports[("rs_C.jpg", "pem-and-ekus")].time_stamp
    assert rs.authority == "DigiCert Timestamp 2023"
    assert rs.authority_subject == r"CN=DigiCert Timestamp 2023,O=DigiCert\, Inc.,C=US"
    assert rs.authority_issuer is not None and "TimeStamping CA" in rs.authority_issuer
    assert rs.time == dt.datetime(2024, 8, 6, 21, 53, 37, tzinfo=dt.UTC)
    # A tampered token: there, but it proves nothing, and the report says so.
    ct = reports[("rs_CA_ct.jpg", "pem-and-ekus")]
    assert ct.state == "trusted"
    assert ct.time_stamp.present and not ct.time_stamp.validated
    assert "timeStamp.malformed" in {s.code for s in ct.time_stamp.status_codes}
    assert ct.signed_at is None
    assert any("time-stamp does not hold" in w for w in ct.warnings)
    # No time-stamp at all (a 2022 camera): nothing proves when it was signed.
    nikon = reports[("pt_nikon-20221019-building.jpeg", "pem-and-ekus")]
    assert not nikon.time_stamp.present and nikon.signed_at is None


def test_the_ingredient_tree_is_nested(reports: dict[tuple[str, str], C2paReport]) -> None:
    chain = reports[("pt_adobe-20220124-CACAICAICICA.jpg", "pem-and-ekus")]

    def shape(ingredients: list[IngredientReport]) -> list[object]:
        return [(i.title, i.validation_state, shape(i.ingredients)) for i in ingredients]

    assert shape(chain.ingredients) == [
        (
            "CAICA.jpg",
            "trusted",
            [("A.jpg", "absent", []), ("CA.jpg", "trusted", [("A.jpg", "absent", [])])],
        ),
        ("CICA.jpg", "trusted", [("CA.jpg", "trusted", [("A.jpg", "absent", [])])]),
    ]
    nested = chain.ingredients[0].ingredients[1]
    assert nested.signer == "C2PA Signer" and nested.claim_generator
    assert nested.manifest_label is not None and nested.signed_at is not None
    # A broken link deep down: the ingredient's own manifest is missing from the store.
    broken = reports[("pt_adobe-20220124-E-clm-CAICAI.jpg", "pem-and-ekus")]
    cai = next(i for i in broken.ingredients if i.title == "CAI.jpg")
    assert cai.validation_state == "invalid"
    assert cai.failures == ["ingredient.manifest.missing"]
    assert "not in the manifest store" in cai.status_codes[0].meaning
    # Validated today, but recorded broken when it was taken in.
    recorded = reports[("pt_adobe-20220124-CIE-sig-CA.jpg", "pem-and-ekus")]
    (esig,) = recorded.ingredients
    assert esig.recorded_failures == ["claimSignature.mismatch"]
    assert any("E-sig-CA.jpg" in w and "when it was taken in" in w for w in recorded.warnings)
    # A model as an ingredient.
    model = reports[("node_ingredient-with-data-types.jpg", "pem-and-ekus")].ingredients[0]
    assert model.data_types == ["c2pa.types.model"] and model.relationship == "inputTo"


def test_creator_training_mining_and_source_type(
    reports: dict[tuple[str, str], C2paReport],
) -> None:
    cawg = reports[("rs_C_with_CAWG_data.jpg", "pem-and-ekus")]
    assert cawg.training_mining == {
        "entries": {
            "cawg.ai_inference": {"use": "notAllowed"},
            "cawg.ai_generative_training": {"use": "notAllowed"},
        }
    }
    assert cawg.creator is not None
    (identity,) = cawg.creator.identities
    assert identity.sig_type == "cawg.x509.cose" and identity.well_formed and not identity.trusted
    assert identity.referenced_assertions == [
        "self#jumbf=c2pa.assertions/cawg.training-mining",
        "self#jumbf=c2pa.assertions/c2pa.hash.data",
    ]
    assert identity.signer == "C2PA Signer"
    assert "cawg.x509.credential.untrusted" in {s.code for s in identity.status_codes}
    assert any("identity assertion" in w for w in cawg.warnings)

    ica = reports[("rs_identity_ica_success.jpg", "pem-and-ekus")].creator
    assert ica is not None
    (aggregated,) = ica.identities
    assert aggregated.sig_type == "cawg.identity_claims_aggregation"
    assert aggregated.issuer is not None and aggregated.issuer.startswith("did:")
    assert aggregated.signer == "First-Name Last-Name"
    assert {i["type"] for i in aggregated.verified_identities} >= {"cawg.social_media"}

    work = reports[("pt_adobe-20220124-CAICAI.jpg", "pem-and-ekus")].creator
    assert work is not None and work.identities == []
    assert work.authors == [{"@type": "Person", "name": "Adobe make_test"}]

    titan = reports[("ts_amazon-titan-g1.png", "pem-and-ekus")]
    assert titan.digital_source_type == (
        "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
    )
    assert titan.signer == "Amazon Web Services, Inc." and titan.claim_generator
    assert titan.state == "valid"


def test_small_fixtures_verify_in_full() -> None:
    trust = TrustConfig.from_files([CONFORMANCE / "test-anchors.pem"])
    verifier = Verifier(None, None, DwtDctSvdWatermarker(), trust=trust)
    for filename in SMALL:
        row = ROWS[filename]
        report = verifier.verify((CONFORMANCE / filename).read_bytes(), filename)
        expected = row["expected_state_test_anchors"]
        if expected.startswith("RAISES"):
            assert report.c2pa.state in ("absent", "invalid"), filename
        else:
            assert report.c2pa.state == expected.lower(), filename
        assert report.summary and report.width and report.height, filename
        assert set(report.c2pa.warnings) <= set(report.warnings)
        again = type(report).model_validate_json(report.model_dump_json())
        assert again == report


def test_genseal_verify_command_reads_the_fixtures(
    genseal_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = [str(CONFORMANCE / name) for name in SMALL]
    runner = CliRunner()
    for env in ({}, {"GENSEAL_TRUST_LIST": str(CONFORMANCE / "trust_config_test_settings.json")}):
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        trust = [] if env else ["--trust", str(CONFORMANCE / "test-anchors.pem")]
        result = runner.invoke(app, ["verify", "--json", *trust, *files])
        assert result.exit_code in (0, 3), result.stderr  # 3: some file is not trusted
        payload = json.loads(result.stdout)
        assert [r["file"] for r in payload] == files
        for report in payload:
            row = ROWS[Path(report["file"]).name]
            expected = row["expected_state_test_anchors"]
            state = report["c2pa"]["state"]
            if expected.startswith("RAISES"):
                assert state in ("absent", "invalid")
            else:
                assert state == expected.lower(), report["file"]
            for status in report["c2pa"]["status_codes"]:
                assert status["meaning"]
    monkeypatch.setenv("GENSEAL_TRUST_CONFIG", str(CONFORMANCE / "fixtures.tsv"))
    result = runner.invoke(app, ["verify", files[0]])
    assert result.exit_code == 2
    assert "not an OID" in result.stderr and "Traceback" not in result.stderr
