"""Damaged, hostile and odd files: the verifier answers each with a report that says what is
wrong (or, for bytes that are no image at all, an ImageInputError saying so), never with any
other exception, and never calls a file ``trusted`` unless its pixels are the signed ones.

What c2pa hashes decides what "changed" means. The hard binding covers every byte of the file
outside the manifest's own container (the PNG ``caBX`` chunk, the JPEG APP11 segments); inside
the manifest the claim is signed and each assertion is hashed by the claim, but the COSE
signature's unprotected header (padding, a time-stamp token) is covered by nothing. A flip
there may leave the manifest trusted, which is sound: the content is untouched. Hence the
property: trusted ⇒ the decoded pixels equal the original's.
"""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageFile

from genseal.errors import ImageInputError
from provenance import (
    C2paSigner,
    DwtDctSvdWatermarker,
    ProvenanceReport,
    SigningIdentity,
    Verifier,
)
from provenance._media import sniff_mime
from tests._media import photo
from tests.provenance.conftest import claim

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _chunks(png: bytes) -> list[tuple[bytes, int, int]]:
    """(type, start, end) of every chunk, end exclusive (length, type, data and CRC)."""
    out, offset = [], 8
    while offset + 8 <= len(png):
        length = int.from_bytes(png[offset : offset + 4], "big")
        end = offset + 12 + length
        out.append((png[offset + 4 : offset + 8], offset, end))
        offset = end
    return out


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _manifest_range(data: bytes) -> tuple[int, int]:
    """Where the embedded manifest sits in a signed PNG or JPEG."""
    if data.startswith(PNG_MAGIC):
        return next((s, e) for kind, s, e in _chunks(data) if kind == b"caBX")
    start = data.index(b"\xff\xeb")  # the first APP11 segment
    end = start
    while data[end : end + 2] == b"\xff\xeb":
        end += 2 + int.from_bytes(data[end + 2 : end + 4], "big")
    return start, end


def _pixels(data: bytes) -> np.ndarray | None:
    """The decoded pixels, or None. A bad CRC on an ancillary chunk (caBX is one) is skipped:
    the manifest chunk is outside the hard binding, CRC included, so a flip there leaves the
    signed content whole while a strict decoder refuses the file."""
    previous = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = True
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            return np.asarray(image.convert("RGB"))
    except Exception:  # any decoding failure means: not the signed pixels
        return None
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = previous


@pytest.fixture(scope="module")
def signed(signer: C2paSigner) -> dict[str, bytes]:
    return {
        "png": signer.sign(photo("astronaut", 128), "image/png", claim("gs_fuzz_png")).data,
        "jpeg": signer.sign(
            photo("coffee", 128, fmt="JPEG"), "image/jpeg", claim("gs_fuzz_jpeg")
        ).data,
    }


@pytest.fixture(scope="module")
def verifier(identity: SigningIdentity) -> Verifier:
    # No store: recovery is not what is under test, and it keeps each example fast.
    return Verifier(None, identity.root_cert_pem, DwtDctSvdWatermarker(), max_pixels=40_000_000)


def _report_or_refusal(verifier: Verifier, data: bytes) -> ProvenanceReport | None:
    """The report, or None for the ImageInputError the contract allows for bytes that are no
    image (no format genseal knows, and no manifest that holds for them)."""
    try:
        report = verifier.verify(data, "fuzz")
    except ImageInputError as exc:
        assert sniff_mime(data) is None, f"an image format was refused: {exc}"
        assert str(exc)
        return None
    assert report.summary
    if report.c2pa.state in ("absent", "invalid"):
        assert report.c2pa.reason, report.c2pa
    return report


def test_the_signed_images_are_trusted(verifier: Verifier, signed: dict[str, bytes]) -> None:
    for data in signed.values():
        assert verifier.verify(data).c2pa.state == "trusted"


@pytest.mark.parametrize("fmt", ["png", "jpeg"])
def test_truncated_files_get_a_report(
    verifier: Verifier, signed: dict[str, bytes], fmt: str
) -> None:
    data = signed[fmt]
    start, end = _manifest_range(data)
    for cut in (8, 40, (start + end) // 2, end, len(data) // 2, len(data) - 1):
        report = verifier.verify(data[:cut], f"cut-{cut}")
        assert report.c2pa.state in ("absent", "invalid"), (cut, report.c2pa)
        assert report.c2pa.reason and report.summary
        if report.c2pa.state == "invalid":
            assert report.c2pa.status_codes
        if report.width is None:
            assert any("could not be decoded" in w for w in report.warnings)


def test_garbage_and_empty_files_are_refused_with_a_reason(verifier: Verifier) -> None:
    rng = np.random.default_rng(7)
    for data, message in ((b"", "empty"), (rng.bytes(4096), "not an image")):
        with pytest.raises(ImageInputError, match=message):
            verifier.verify(data, "garbage.png")
    # Garbage behind an image signature is an image format gone bad: it gets a report.
    for magic, mime in ((PNG_MAGIC, "image/png"), (b"GIF89a", "image/gif")):
        report = verifier.verify(magic + rng.bytes(4096), "noise")
        assert report.c2pa.state == "absent" and report.format == mime
        assert report.c2pa.reason
        assert any("could not be decoded" in w for w in report.warnings)


def test_the_name_of_a_file_does_not_matter(verifier: Verifier, signed: dict[str, bytes]) -> None:
    report = verifier.verify(signed["png"], "really-a-png.jpg")
    assert report.c2pa.state == "trusted" and report.format == "image/png"
    report = verifier.verify(signed["jpeg"], "photo.webp")
    assert report.c2pa.state == "trusted" and report.format == "image/jpeg"


def test_a_header_claiming_a_huge_canvas_is_reported_undecoded(verifier: Verifier) -> None:
    # A 100000 x 100000 RGB PNG header with one empty IDAT: 30 GB if decoded.
    header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    data = (
        PNG_MAGIC
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(b""))
        + _chunk(b"IEND", b"")
    )
    report = verifier.verify(data, "huge.png")
    assert report.c2pa.state == "absent" and report.width is None
    assert any("100000x100000" in w or "too many pixels" in w for w in report.warnings), report
    assert "could not be decoded" in report.summary


def test_a_manifest_spliced_into_another_image_is_invalid(
    verifier: Verifier, signed: dict[str, bytes], signer: C2paSigner
) -> None:
    # PNG: the signed caBX chunk moved into another picture, at the same place.
    start, end = _manifest_range(signed["png"])
    other = photo("chelsea", 128)
    ihdr_end = _chunks(other)[0][2]
    spliced = other[:ihdr_end] + signed["png"][start:end] + other[ihdr_end:]
    report = verifier.verify(spliced, "spliced.png")
    assert report.c2pa.state == "invalid"
    mismatch = next(s for s in report.c2pa.status_codes if s.code == "assertion.dataHash.mismatch")
    assert "changed after signing" in mismatch.meaning
    assert report.c2pa.reason is not None and "assertion.dataHash.mismatch" in report.c2pa.reason
    # JPEG: the APP11 segments of one signed image in place of another's.
    second = signer.sign(
        photo("chelsea", 128, fmt="JPEG"), "image/jpeg", claim("gs_fuzz_other")
    ).data
    a_start, a_end = _manifest_range(signed["jpeg"])
    b_start, b_end = _manifest_range(second)
    swapped = second[:b_start] + signed["jpeg"][a_start:a_end] + second[b_end:]
    report = verifier.verify(swapped, "swapped.jpg")
    assert report.c2pa.state == "invalid"
    assert any(s.code.endswith("Hash.mismatch") for s in report.c2pa.status_codes)


_MUTATIONS = st.sampled_from(["flip", "truncate", "insert", "delete"])


# A few milliseconds an example on 128-pixel images: 400 of them take a few seconds.
@settings(
    max_examples=400,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    fmt=st.sampled_from(["png", "jpeg"]),
    mutation=_MUTATIONS,
    in_manifest=st.booleans(),
    where=st.floats(min_value=0.0, max_value=1.0, exclude_max=True),
    value=st.integers(min_value=1, max_value=255),
    extra=st.binary(min_size=1, max_size=64),
)
def test_mutated_signed_images_never_crash_or_pass_as_trusted(
    verifier: Verifier,
    signed: dict[str, bytes],
    fmt: str,
    mutation: str,
    in_manifest: bool,
    where: float,
    value: int,
    extra: bytes,
) -> None:
    original = signed[fmt]
    start, end = _manifest_range(original) if in_manifest else (0, len(original))
    position = start + int(where * (end - start))
    data = bytearray(original)
    if mutation == "flip":
        data[position] ^= value
    elif mutation == "truncate":
        del data[position:]
    elif mutation == "insert":
        data[position:position] = extra
    else:
        del data[position : position + len(extra)]
    mutated = bytes(data)
    report = _report_or_refusal(verifier, mutated)
    event(f"{fmt} {mutation}: {'refused' if report is None else report.c2pa.state}")
    if report is not None and report.c2pa.state == "trusted":
        before, after = _pixels(original), _pixels(mutated)
        assert before is not None and after is not None, "trusted, but the pixels are gone"
        assert np.array_equal(before, after), f"trusted, but the pixels differ ({mutation})"


# The keys c2pa's JSON uses, so generated documents reach deep into the mapping.
_KEYS = st.sampled_from(
    """active_manifest manifests ingredients label title relationship validation_results
    activeManifest ingredientDeltas ingredientAssertionURI validationDeltas failure success
    informational code url explanation assertions data actions digitalSourceType signature_info
    signature certificateInfo subject issuer validity notAfter CN O timeStampInfo timestamp time
    claim_generator_info name author signer_payload referenced_assertions validation_status
    validation_state""".split()  # noqa: SIM905 - a word list reads better than 40 quoted lines
)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=6) | st.sampled_from(["a", "b"]),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(_KEYS | st.text(max_size=4), children, max_size=5)
    ),
    max_leaves=40,
)


@settings(max_examples=300, deadline=None, database=None, derandomize=True)
@given(manifests=st.dictionaries(st.sampled_from(["a", "b"]), _JSON, max_size=2), other=_JSON)
def test_odd_manifest_json_never_breaks_the_report(
    manifests: dict[str, object], other: object
) -> None:
    """Whatever shape c2pa's JSON takes (a forged store can make it odd), a report comes out."""
    from provenance.c2pa._mapping import report_from_store as store_report

    store = {"active_manifest": "a", "manifests": manifests, "validation_results": other}
    report = store_report(store, {"manifests": [other]})
    assert report.state in ("trusted", "valid", "invalid", "absent")
    report.model_dump_json()
