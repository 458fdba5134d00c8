"""Third-party C2PA files (shared/c2pa-conformance) read as their fixtures.tsv expects.

With the C2PA test roots as anchors; reference reader c2pa-python 0.38.1. Rows whose expected
outcome is "RAISES" (no readable manifest) must map to `absent` or `invalid`, never crash.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest

from provenance import DwtDctSvdWatermarker, Verifier
from provenance._c2pa_read import C2paReader
from provenance._media import sniff_mime

CONFORMANCE = Path(
    os.environ.get(
        "GENSEAL_C2PA_CONFORMANCE",
        Path(__file__).resolve().parents[3] / "shared" / "c2pa-conformance",
    )
)

pytestmark = pytest.mark.skipif(
    not (CONFORMANCE / "fixtures.tsv").is_file(), reason=f"no conformance fixtures at {CONFORMANCE}"
)

# A spread: trusted, trusted with ingredients, each kind of break, no manifest, remote-only,
# unsupported algorithm, and the non-JPEG containers.
CASES: dict[str, tuple[str, str | None]] = {
    "pt_adobe-20220124-C.jpg": ("trusted", None),
    "pt_adobe-20220124-CAICAI.jpg": ("trusted", None),
    "pt_adobe-20220124-E-dat-CA.jpg": ("invalid", "assertion.dataHash.mismatch"),
    "pt_adobe-20220124-E-sig-CA.jpg": ("invalid", "claimSignature.mismatch"),
    "pt_adobe-20220124-E-clm-CAICAI.jpg": ("invalid", "ingredient.manifest.missing"),
    "pt_nikon-20221019-building.jpeg": ("invalid", "signingCredential.expired"),
    "pt_adobe-20220124-A.jpg": ("absent", None),
    "rs_cloud.jpg": ("absent", "manifest.inaccessible"),
    "rs_no_alg.jpg": ("invalid", "algorithm.unsupported"),
    "ts_amazon-titan-g1.png": ("valid", None),
    "rs_sample1.webp": ("absent", None),
}


def _rows() -> dict[str, dict[str, str]]:
    with (CONFORMANCE / "fixtures.tsv").open(newline="") as fh:
        return {row["filename"]: row for row in csv.DictReader(fh, delimiter="\t")}


@pytest.fixture(scope="module")
def verifier() -> Verifier:
    anchors = (CONFORMANCE / "test-anchors.pem").read_bytes()
    return Verifier(None, anchors, DwtDctSvdWatermarker())


@pytest.mark.parametrize("filename", sorted(CASES))
def test_fixture_reads_as_expected(verifier: Verifier, filename: str) -> None:
    state, code = CASES[filename]
    row = _rows()[filename]
    expected = row["expected_state_test_anchors"]
    if not expected.startswith("RAISES"):
        assert state == expected.lower(), "CASES disagrees with fixtures.tsv"
    report = verifier.verify((CONFORMANCE / filename).read_bytes(), filename)
    assert report.c2pa.state == state
    codes = {s.code for s in report.c2pa.status_codes}
    if code is not None:
        assert code in codes
    for expected_code in filter(None, row["expected_failure_codes"].split(",")):
        assert expected_code in codes
    if state == "trusted":
        assert codes == set()
        assert report.c2pa.signer
    assert report.summary


def test_every_fixture_reads_without_crashing() -> None:
    # The C2PA reading alone (pixels of the large camera files would only slow this down).
    reader = C2paReader((CONFORMANCE / "test-anchors.pem").read_bytes())
    for filename, row in _rows().items():
        data = (CONFORMANCE / filename).read_bytes()
        report = reader.read(data, sniff_mime(data))
        expected = row["expected_state_test_anchors"]
        if expected.startswith("RAISES"):
            assert report.state in ("absent", "invalid"), filename
        elif row["confidence"] != "DISPUTED":
            assert report.state == expected.lower(), filename
