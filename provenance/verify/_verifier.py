"""Verification: C2PA state, watermark, fingerprint, and recovery through the manifest store.

Recovery rules (DESIGN: a 32-bit watermark collides after ~65k images):

- the manifest (embedded, or the sidecar given with the file) names a stored record only
  when it is *trusted*; an untrusted or broken manifest could carry a copied label;
- a watermark payload is a lead: a record it points to must also look like the file
  (fingerprint within ``corroboration_distance``, loose, since the watermark already narrowed
  the candidates to a handful; or, for crops, which move PDQ as far as an unrelated picture,
  the file matching a crop of the sealed thumbnail, see ``provenance.fingerprints._crop``);
- a fingerprint alone names a record within ``fingerprint_distance`` (strict, PDQ's published
  match threshold of 31 bits), and only when the file has enough detail for PDQ to mean
  something (quality >= ``_MIN_PDQ_QUALITY``).

A watermark lead only points to records sealed with the backend that read it. The verifier
reads with the configured backend first and then with every other one it was given
(``also_read``), so images sealed before a deployment changed backends are still recovered.
A backend without a checksum (rivaGan) may also offer other likely payloads
(``WatermarkReading.candidates``, from its least confident bits); they are tried after the
hard decision, each still needing the fingerprint or crop print to agree.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from PIL import Image

from genseal.errors import ImageInputError, PayloadTooLargeError
from provenance._media import decode_image, sniff_mime
from provenance.c2pa import MODERATION_LABEL, C2paReader, C2paReport, read_assertion
from provenance.fingerprints import (
    CROP_MATCH_THRESHOLD,
    FINGERPRINT_BITS,
    Fingerprint,
    Fingerprinter,
    crop_match,
    fingerprint,
    hamming,
)
from provenance.identity import TrustConfig
from provenance.store import ManifestLookup, ManifestRecord
from provenance.verify._report import Evidence, ProvenanceReport, Recovery
from provenance.watermark import Watermarker, WatermarkReading

__all__ = ["Verifier"]

# PDQ's own guidance: below 50 the hash of a near-featureless image is not a reliable match.
_MIN_PDQ_QUALITY = 50
_NEAREST_LIMIT = 5


@dataclass
class _Candidate:
    record: ManifestRecord
    distance: int | None
    evidence: set[Evidence] = field(default_factory=set)
    crop_score: float | None = None
    watermark_bits: int = 0  # how many payload bits the lookup allowed to differ


class Verifier:
    """Verify any image: the C2PA manifest, the watermark, and recovery from the store.

    ``store`` None verifies without recovery; ``trust_anchors_pem`` None (and no anchors in
    ``trust``) can at best report ``valid`` (no signer is trusted). ``max_pixels``: images
    whose header claims more are reported without decoding their pixels.
    """

    def __init__(
        self,
        store: ManifestLookup | None,
        trust_anchors_pem: bytes | None,
        watermarker: Watermarker,
        *,
        also_read: Sequence[Watermarker] = (),
        fingerprint_distance: int = 31,
        corroboration_distance: int = 90,
        watermark_tolerance: int = 2,
        fingerprinter: Fingerprinter = fingerprint,
        trust: TrustConfig | None = None,
        max_pixels: int | None = None,
    ) -> None:
        if not 0 <= fingerprint_distance <= corroboration_distance <= FINGERPRINT_BITS:
            raise ValueError("need 0 <= fingerprint_distance <= corroboration_distance <= 256")
        self._store = store
        self._reader = C2paReader(trust_anchors_pem, trust=trust)
        self._max_pixels = max_pixels
        self._watermarker = watermarker
        self._others = [w for w in also_read if w.name != watermarker.name]
        self._strict = fingerprint_distance
        self._loose = corroboration_distance
        self._tolerance = watermark_tolerance
        self._fingerprint = fingerprinter

    def verify(
        self, data: bytes, name: str = "", manifest: bytes | None = None
    ) -> ProvenanceReport:
        """Report on one file.

        A file in an image format whose pixels cannot be decoded (truncated, corrupt, too many
        pixels) still gets a report, saying so in ``warnings`` and the summary, as does any
        file c2pa finds a manifest in. ImageInputError only for bytes that are no image at all
        (empty, or no format genseal knows) and carry no manifest that holds for them.

        ``manifest``: the bytes of a ``.c2pa`` sidecar (as ``GET /v1/manifests/{id}`` serves
        it) to validate the file against instead of any embedded manifest; the report's
        ``c2pa.source`` says which was used. InputError if the sidecar cannot be read.
        """
        mime = sniff_mime(data)
        c2pa_report = self._reader.read(data, mime, manifest)
        problem: str | None = None
        try:
            image = self._decode(data)
        except (ImageInputError, PayloadTooLargeError) as exc:
            if mime is None and not _holds_without_pixels(c2pa_report):
                raise
            # An image format, or bytes c2pa vouches for: report what could be read.
            image, problem = None, exc.message
        sha256 = hashlib.sha256(data).hexdigest()
        if image is None:
            reading = WatermarkReading(
                algorithm=self._watermarker.name, detected=False, confidence=0.0
            )
            print_ = None
            recovery = self._recover(c2pa_report, reading, print_, sha256, image)
        else:
            if mime is None and image.format:
                mime = f"image/{image.format.lower()}"
            print_ = self._fingerprint(image)
            reading, recovery = self._read_and_recover(c2pa_report, print_, sha256, image)
        notes = list(c2pa_report.warnings)
        if problem is not None:
            notes.append(
                f"the pixels could not be decoded ({problem}): no watermark or fingerprint was read"
            )
        return ProvenanceReport(
            file=name,
            format=mime,
            size_bytes=len(data),
            sha256=sha256,
            width=image.width if image is not None else None,
            height=image.height if image is not None else None,
            c2pa=c2pa_report,
            watermark=reading,
            fingerprint=print_,
            recovery=recovery,
            summary=_summary(c2pa_report, reading, recovery, problem),
            warnings=notes,
        )

    def _read_and_recover(
        self, c2pa_report: C2paReport, print_: Fingerprint, sha256: str, image: Image.Image
    ) -> tuple[WatermarkReading, Recovery]:
        """Read the configured backend, then the others, until a reading recovers a manifest;
        then the same again thoroughly (perhaps an edited copy, a crop, that a backend reads
        by trying harder). A backend can read a confident payload where another's mark is
        (rivaGan on noise), so one detection does not stop the others.

        Returns the reading that led to the recovery (else the configured backend's, or the
        first that detected anything) and the recovery."""
        best: tuple[WatermarkReading, Recovery] | None = None
        if self._store is None:
            # Nothing to recover from: the configured backend's quick reading is the report.
            reading = self._watermarker.detect(image)
            return reading, self._recover(c2pa_report, reading, print_, sha256, image)
        neighbours = self._neighbours(print_)
        for thorough in (False, True):
            if thorough and not (best is not None and best[0].detected):
                # No backend sees a mark at all: nothing a thorough reading could build on
                # (a 20 % crop still reads at a third of an untouched mark's strength).
                break
            for watermarker in (self._watermarker, *self._others):
                reading = watermarker.detect(image, thorough=thorough)
                recovery = self._recover(c2pa_report, reading, print_, sha256, image, neighbours)
                if recovery.found and "watermark" in recovery.evidence:
                    return reading, recovery
                if best is None or (
                    reading.detected and not best[0].detected and not best[1].found
                ):
                    best = (reading, recovery)
            if best is not None and best[1].found:
                # Found by the manifest or the fingerprint: nothing to look harder for.
                return best
        assert best is not None
        return best

    def _neighbours(self, print_: Fingerprint | None) -> list[ManifestRecord]:
        """Stored records within the strict fingerprint distance, nearest first; none for an
        image too flat for PDQ to mean something."""
        if self._store is None or print_ is None or print_.quality < _MIN_PDQ_QUALITY:
            return []
        return [r for r, _ in self._store.nearest(print_.hex, self._strict, _NEAREST_LIMIT)]

    def _decode(self, data: bytes) -> Image.Image:
        """The pixels, refused from the header alone when there are more than ``max_pixels``
        (a small file can claim a huge canvas)."""
        if self._max_pixels is not None and data:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                    width, height = Image.open(io.BytesIO(data)).size
            except Exception:  # decode_image below says what is wrong
                width = height = 0
            if width * height > self._max_pixels:
                raise PayloadTooLargeError(
                    f"the image claims {width}x{height} pixels, more than the "
                    f"{self._max_pixels:,} allowed"
                )
        try:
            return decode_image(data)
        except (ImageInputError, PayloadTooLargeError):
            raise
        except Exception as exc:
            # Pillow raises more kinds than it documents on hostile bytes (struct.error,
            # EOFError, IndexError...): still an unreadable file, not a verifier failure.
            raise ImageInputError(f"the image is unreadable: {type(exc).__name__}: {exc}") from exc

    def _corroborate(
        self,
        records: list[ManifestRecord],
        candidate: Callable[[ManifestRecord], _Candidate],
        image: Image.Image | None,
        payload: str,
        algorithm: str,
    ) -> list[_Candidate]:
        """Give watermark evidence to the records that also look like the file; return the
        rest (a watermark alone never names a manifest)."""
        rejected = []
        for record in records:
            if record.watermark_alg != algorithm:
                continue  # the same id from another backend is another image's mark
            found = candidate(record)
            found.watermark_bits = (
                int(record.watermark_payload, 16) ^ int(payload, 16)
            ).bit_count()
            close = found.distance is not None and found.distance <= self._strict
            if not close and image is not None and record.fingerprint_crop is not None:
                # PDQ moved a lot: a crop? The crop print says so far more surely than a
                # PDQ distance in the loose zone, which a crop can reach only by chance.
                found.crop_score = crop_match(record.fingerprint_crop, image)
                if found.crop_score is not None and found.crop_score >= CROP_MATCH_THRESHOLD:
                    found.evidence.update(("watermark", "crop_fingerprint"))
                    continue
            if found.distance is not None and found.distance <= self._loose:
                found.evidence.add("watermark")
                continue
            if not found.evidence:
                rejected.append(found)
        return rejected

    def _recover(
        self,
        c2pa_report: C2paReport,
        reading: WatermarkReading,
        print_: Fingerprint | None,
        sha256: str,
        image: Image.Image | None,
        neighbours: list[ManifestRecord] | None = None,
    ) -> Recovery:
        """``neighbours``: the records whose fingerprint is within the strict distance, when
        the caller already looked them up (they do not depend on the reading)."""
        decoded = image is not None
        store = self._store
        if store is None:
            return Recovery(attempted=False, reason="no manifest store was given to look in")
        candidates: dict[str, _Candidate] = {}

        def candidate(record: ManifestRecord) -> _Candidate:
            if record.id not in candidates:
                distance = (
                    hamming(print_.hex, record.fingerprint_hex)
                    if print_ is not None and len(print_.hex) == len(record.fingerprint_hex)
                    else None
                )
                candidates[record.id] = _Candidate(record, distance)
            return candidates[record.id]

        if c2pa_report.state == "trusted" and c2pa_report.manifest_label:
            record = store.by_label(c2pa_report.manifest_label)
            if record is not None:
                candidate(record).evidence.add("manifest")
        rejected: list[_Candidate] = []
        if reading.detected and reading.payload:
            # Exact payload first; a learned watermark (rivaGan) can lose bits to a heavy
            # crop, so then the payloads its reading offers (or, from a backend that offers
            # none, those within ``watermark_tolerance`` bits) are tried. More candidates,
            # but each still has to look like the file to count.
            alg = reading.algorithm
            exact = store.by_watermark(reading.payload)
            rejected = self._corroborate(exact, candidate, image, reading.payload, alg)
            if not any(r.id in candidates and candidates[r.id].evidence for r in exact):
                others = list(reading.candidates) or _neighbours(reading.payload, self._tolerance)
                if others:
                    # Near payloads that do not look like the file are just other images.
                    near = store.by_watermarks(others)
                    self._corroborate(near, candidate, image, reading.payload, alg)
        flat = print_ is not None and print_.quality < _MIN_PDQ_QUALITY
        for record in self._neighbours(print_) if neighbours is None else neighbours:
            candidate(record)
        for found in candidates.values():
            # Strict fingerprint agreement counts as evidence on its own, except for flat
            # images, where PDQ says little.
            if found.distance is not None and found.distance <= self._strict and not flat:
                found.evidence.add("fingerprint")
        named = [c for c in candidates.values() if c.evidence]
        if not named:
            return Recovery(
                attempted=True,
                reason=_not_found_reason(
                    reading, print_, rejected, self._loose, self._strict, decoded=decoded
                ),
            )
        named.sort(key=lambda c: (-len(c.evidence), 999 if c.distance is None else c.distance))
        best = named[0]
        record = best.record
        altered: bool | None = None
        if record.sha256 == sha256:
            altered = False
        elif best.distance is not None and best.distance > 0:
            altered = True
        # Same fingerprint, other bytes: stripped metadata or a (near-)lossless re-encode;
        # PDQ cannot tell those apart, so the answer stays unknown (None).
        evidence: list[Evidence] = [
            e
            for e in ("manifest", "watermark", "fingerprint", "crop_fingerprint")
            if e in best.evidence
        ]
        reason = _found_reason(best, evidence, self._loose, self._strict)
        if len(named) > 1:
            reason += f"; {len(named) - 1} weaker candidate(s) set aside"
        return Recovery(
            attempted=True,
            found=True,
            manifest_id=record.id,
            manifest_label=record.manifest_label,
            evidence=evidence,
            fingerprint_distance=best.distance,
            crop_match=round(best.crop_score, 4) if best.crop_score is not None else None,
            pixels_altered=altered,
            sealed_at=record.created_at,
            moderation=read_assertion(record.manifest_store, MODERATION_LABEL),
            reason=reason,
        )


def _holds_without_pixels(report: C2paReport) -> bool:
    """Whether the report means something for a file whose pixels cannot be decoded."""
    if report.source == "sidecar":
        # A sidecar is always there to read; only one that binds to these bytes says anything
        # about them.
        return report.state in ("trusted", "valid")
    return report.manifest_label is not None


def _neighbours(payload: str, radius: int) -> list[str]:
    """Every other 32-bit payload within ``radius`` bits of ``payload``."""
    value = int(payload, 16)
    out = []
    for k in range(1, radius + 1):
        for bits in itertools.combinations(range(32), k):
            out.append(f"{value ^ sum(1 << b for b in bits):08x}")
    return out


def _found_reason(best: _Candidate, evidence: list[Evidence], loose: int, strict: int) -> str:
    record, distance = best.record, best.distance
    parts = []
    if "manifest" in evidence:
        parts.append("the trusted manifest in the file is the stored one")
    if "watermark" in evidence:
        within = f" (within {best.watermark_bits} bits)" if best.watermark_bits else ""
        parts.append(f"the watermark payload {record.watermark_payload} matches{within}")
    if distance is not None:
        if "fingerprint" in evidence:
            parts.append(f"the fingerprint is {distance}/256 bits away (<= {strict})")
        elif "crop_fingerprint" in evidence:
            parts.append(
                f"the file matches a crop of the sealed image (correlation "
                f"{best.crop_score:.2f} >= {CROP_MATCH_THRESHOLD}), which corroborates the "
                f"watermark (PDQ is {distance}/256 bits away: cropped)"
            )
        elif "watermark" in evidence:
            parts.append(
                f"the fingerprint, {distance}/256 bits away (<= {loose}), corroborates the "
                "watermark"
            )
    return f"manifest {record.id}: " + "; ".join(parts)


def _not_found_reason(
    reading: WatermarkReading,
    print_: Fingerprint | None,
    rejected: list[_Candidate],
    loose: int,
    strict: int,
    *,
    decoded: bool,
) -> str:
    if not decoded:
        return "the pixels could not be decoded, so neither watermark nor fingerprint was read"
    if rejected:
        distances = [c.distance for c in rejected if c.distance is not None]
        nearest = f" (nearest fingerprint {min(distances)}/256 bits > {loose})" if distances else ""
        return (
            f"a genseal watermark ({reading.payload}) was found, but no manifest with that "
            f"payload looks like this image{nearest}: a watermark alone never names a manifest"
        )
    if print_ is not None and print_.quality < _MIN_PDQ_QUALITY:
        wm = "no genseal watermark was found and " if not reading.detected else ""
        return (
            f"{wm}the image is too flat for its fingerprint to identify it "
            f"(PDQ quality {print_.quality} < {_MIN_PDQ_QUALITY})"
        )
    if reading.detected:
        return (
            f"a genseal watermark ({reading.payload}) was found but no stored manifest carries it, "
            f"and no stored fingerprint is within {strict} bits"
        )
    return f"no genseal watermark, and no stored fingerprint within {strict} bits"


def _summary(
    c2pa_report: C2paReport,
    reading: WatermarkReading,
    recovery: Recovery,
    problem: str | None = None,
) -> str:
    state = c2pa_report.state
    signer = c2pa_report.signer or "an unknown signer"
    sidecar = c2pa_report.source == "sidecar"
    credentials = "The sidecar's Content Credentials" if sidecar else "Content Credentials"
    if state == "trusted":
        first = f"{credentials} are valid and signed by a trusted signer ({signer})"
    elif state == "valid":
        first = f"{credentials} are intact but signed by {signer}, who is not trusted here"
    elif state == "invalid":
        # c2pa may report one code several times (one per way the hash failed).
        unique = list(dict.fromkeys(s.code for s in c2pa_report.status_codes))
        codes = ", ".join(unique[:3]) or "unknown failure"
        if sidecar and any(s.code.endswith("Hash.mismatch") for s in c2pa_report.status_codes):
            first = (
                f"The sidecar's Content Credentials do not hold for this file ({codes}): they "
                "were made for other bytes (another file, or this one before it was stripped "
                "or re-encoded)"
            )
        else:
            first = f"{credentials} are present but invalid ({codes})"
    elif c2pa_report.remote_manifest:
        first = (
            "The file carries no embedded Content Credentials; it points to a remote manifest "
            f"that was not read ({c2pa_report.remote_manifest})"
        )
    else:
        first = "The file carries no Content Credentials"
    if recovery.found:
        via = " and ".join(recovery.evidence)
        if recovery.pixels_altered is None:
            change = " (its pixels look unchanged, but the file is not the one sealed)"
        elif recovery.pixels_altered:
            change = ", and its pixels have changed since sealing"
        else:
            change = ", byte for byte as sealed"
        second = f"it traces back to genseal manifest {recovery.manifest_id} by {via}{change}"
    elif problem is not None:
        second = f"its pixels could not be decoded ({problem}), so no watermark was looked for"
    elif reading.detected:
        second = (
            f"a genseal watermark ({reading.payload}) is present but no sealed manifest matches it"
        )
    elif recovery.attempted:
        second = "no genseal watermark or sealed manifest matches it"
    else:
        second = "no genseal watermark was found"
    return f"{first}; {second}."
