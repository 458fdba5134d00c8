"""The sealed-generation service fails closed: nothing unchecked, undecided or unsigned leaves."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from gen import GenerationRequest, SealedGenerationService, build_parts
from genseal.db import upgrade
from genseal.errors import SigningError, StoreError, WatermarkError
from genseal.settings import Settings
from provenance import SealClaim, SignedAsset, WatermarkReading
from safety import OpenNsfwCheck, Policy, Screener, TermListCheck
from tests._tsa import LocalTsa

FOX = GenerationRequest(prompt="a red fox", size=(256, 256), steps=2, seed=1)


@pytest.fixture
def service(tmp_path: Path) -> SealedGenerationService:
    return SealedGenerationService(Settings(home=tmp_path / "home"))


class _RefusingSigner:
    """Stands in for a signer whose HSM or certificate fails at signing time."""

    def sign(self, image: bytes, mime: str, claim: SealClaim) -> SignedAsset:
        raise SigningError("the signing service refused the request")


def test_signing_failure_releases_nothing_and_is_recorded(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    service = SealedGenerationService(settings, build_parts(settings, signer=_RefusingSigner()))
    with pytest.raises(SigningError):
        service.generate(FOX)
    [entry] = service.store.audit_entries()
    assert entry.event == "error"
    assert entry.decision["error"] == "signing_failed"
    assert service.store.verify_audit_chain()


def test_time_stamp_authority_down_mid_service_fails_closed_and_is_recorded(
    tmp_path: Path,
) -> None:
    with LocalTsa() as tsa:
        url = tsa.url
        service = SealedGenerationService(Settings(home=tmp_path / "home", tsa_url=url))
        assert service.generate(FOX).released
        tsa.fail()
        with pytest.raises(SigningError, match=url):
            service.generate(FOX)
    failed, released = service.store.audit_entries()  # newest first
    assert (released.event, failed.event) == ("released", "error")
    assert failed.decision["error"] == "signing_failed" and url in failed.decision["message"]
    assert service.store.get(str(released.manifest_id)) is not None
    assert failed.manifest_id is None, "the second image was never stored or released"
    assert service.store.verify_audit_chain()


def test_a_classifier_that_cannot_run_blocks_the_output(tmp_path: Path) -> None:
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"this is not an onnx model")

    def screener_for(policy: Policy) -> Screener:
        return Screener(
            prompt_checks=[TermListCheck.from_policy(policy)],
            image_checks=[OpenNsfwCheck(model_path=broken)],
        )

    settings = Settings(home=tmp_path / "home")
    service = SealedGenerationService(settings, build_parts(settings, screener_for=screener_for))
    result = service.generate(FOX)
    assert result.status == "blocked"
    assert result.images == []
    [withheld] = result.withheld
    assert withheld.decision.stage.value == "output"
    assert any(f.state.value == "error" for f in withheld.findings)
    assert [e.event for e in service.store.audit_entries()] == ["blocked"]


def test_released_images_are_stored_and_audited_with_a_chain(
    service: SealedGenerationService,
) -> None:
    result = service.generate(FOX.model_copy(update={"n": 2}))
    assert [image.index for image in result.images] == [0, 1]
    assert result.images[0].seed == 1 and result.images[1].seed == 2
    for image in result.images:
        record = service.store.get(image.manifest_id)
        assert record is not None
        assert record.manifest_label == image.manifest_label
        assert record.watermark_payload == image.watermark.split(":")[1]
    assert [e.event for e in service.store.audit_entries()] == ["released", "released"]
    assert service.store.verify_audit_chain()


def test_the_prompt_is_never_written_into_the_manifest(service: SealedGenerationService) -> None:
    secret = "a red fox named Zorblax"
    result = service.generate(FOX.model_copy(update={"prompt": secret}))
    assert b"Zorblax" not in result.images[0].data


def test_rivagan_sealed_image_is_recovered_after_a_crop(tmp_path: Path) -> None:
    from tests._media import photo

    service = SealedGenerationService(Settings(home=tmp_path / "home", watermark="rivagan"))
    sealed = service.seal(photo("astronaut", size=512), source_model="elsewhere").images[0]
    image = Image.open(io.BytesIO(sealed.data)).convert("RGB")
    cropped = image.crop((0, 0, int(512 * 0.9), int(512 * 0.9)))  # 10 % off a corner
    buffer = io.BytesIO()
    cropped.save(buffer, format="JPEG", quality=90)

    recovery = service.verifier().verify(buffer.getvalue(), "cropped.jpg").recovery
    assert recovery.found
    assert recovery.manifest_id == sealed.manifest_id
    assert "watermark" in recovery.evidence
    assert {"fingerprint", "crop_fingerprint"} & set(recovery.evidence)


def test_a_picture_rivagan_cannot_mark_is_sealed_with_the_fallback(
    service: SealedGenerationService,
) -> None:
    # The tiny model draws noise, which rivaGan reads as a confident payload of its own.
    assert service.sealer.watermarker.name == "rivagan"
    sealed = service.generate(FOX).images[0]
    algorithm, payload = sealed.watermark.split(":")
    assert algorithm == "dwtdctsvd"
    record = service.store.get(sealed.manifest_id)
    assert record is not None and record.watermark_alg == "dwtdctsvd"
    assert record.watermark_payload == payload
    manifest = service.verifier().verify(sealed.data).c2pa
    assert manifest.soft_binding is not None
    assert manifest.soft_binding["alg"] == "org.genseal.dwtdctsvd.1"
    # Stripped: the verifier reads every backend, so the fallback's mark is found.
    buffer = io.BytesIO()
    Image.open(io.BytesIO(sealed.data)).save(buffer, format="PNG")
    report = service.verifier().verify(buffer.getvalue())
    assert report.watermark.algorithm == "dwtdctsvd" and report.watermark.payload == payload
    assert report.recovery.manifest_id == sealed.manifest_id
    assert report.recovery.evidence == ["watermark", "fingerprint"]


class _UnreadableMark:
    """A backend whose mark never reads back (as rivaGan on noise)."""

    name = "unreadable"
    version = "1"
    min_side = 1

    def embed(self, image: Image.Image, payload: str) -> Image.Image:
        return image.copy()

    def detect(self, image: Image.Image, *, thorough: bool = False) -> WatermarkReading:
        return WatermarkReading(algorithm=self.name, detected=False, confidence=0.0)


def test_an_image_no_backend_can_mark_is_not_released(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    marks = [_UnreadableMark(), _UnreadableMark()]
    service = SealedGenerationService(settings, build_parts(settings, watermarkers=marks))
    with pytest.raises(WatermarkError, match="reads its own mark back"):
        service.generate(FOX)
    [entry] = service.store.audit_entries()
    assert entry.event == "error" and entry.decision["error"] == "watermark_failed"
    assert entry.manifest_id is None


def test_with_auto_upgrade_off_a_database_behind_is_refused_at_start(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", database_auto_upgrade=False)
    with pytest.raises(StoreError, match="genseal db upgrade"):
        SealedGenerationService(settings)
    upgrade(settings.store_url)
    SealedGenerationService(settings).store.verify_audit_chain()


def test_a_retried_request_seals_and_audits_each_image_once(
    service: SealedGenerationService,
) -> None:
    request = GenerationRequest(
        prompt="a lighthouse", n=2, steps=2, size=(256, 256), seed=3, request_id="job_retried"
    )
    first = service.generate(request)
    again = service.generate(request)  # as a job retried after its worker died
    ids = [image.manifest_id for image in first.images]
    assert [image.manifest_id for image in again.images] == ids
    released = [
        e.manifest_id
        for e in service.store.audit_entries(limit=50)
        if e.event == "released" and e.request_id == "job_retried"
    ]
    assert sorted(released) == sorted(ids)
    for image in again.images:  # the record kept is the retry's, the one delivered
        record = service.store.get(image.manifest_id)
        assert record is not None and record.sha256 == image.sha256
    assert service.store.verify_audit_chain()
