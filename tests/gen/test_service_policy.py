"""The service acts on every policy action, per tenant, records enough to replay, hot-reloads."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PIL import Image, ImageFilter, ImageStat

from gen import (
    ConsentAttestation,
    DiffusersBackend,
    GenerationRequest,
    SealedGenerationService,
    build_parts,
)
from gen._images import decode_image
from genseal.errors import InputError, NotFoundError
from genseal.settings import Settings
from safety import Action, Policy, PolicySet, default_policy_path, replay_decisions
from tests._c2pa import c2pa_read

SMALL = GenerationRequest(prompt="a red fox", size=(256, 256), steps=2, seed=3)

OVERLAYS = {
    "blurry": "add:\n  - {id: blur-outputs, stage: output, when: 'true', action: blur}\n",
    "careful": "add:\n  - {id: review-outputs, stage: output, when: 'true', action: review}\n",
    "consent": (
        "add:\n  - id: consent-first\n    stage: prompt\n    when: 'true'\n"
        "    action: require_consent\n    message: consent please\n"
    ),
    "trial": (
        "mode: shadow\nadd:\n  - {id: block-outputs, stage: output, when: 'true',"
        " action: block, message: trial block}\n"
    ),
    "typo": (
        "add:\n  - id: block-tier\n    stage: prompt\n"
        "    when: 'request.n > 1 && request.tier == \"gold\"'\n"
        "    action: block\n    message: tier\n"
    ),
}


@pytest.fixture
def policy_dir(tmp_path: Path) -> Path:
    root = tmp_path / "policies"
    (root / "tenants").mkdir(parents=True)
    shutil.copy(default_policy_path(), root / "default.yaml")
    for tenant, body in OVERLAYS.items():
        (root / "tenants" / f"{tenant}.yaml").write_text(
            f'id: {tenant}\nversion: "1"\nextends: default\n{body}', encoding="utf-8"
        )
    return root


@pytest.fixture
def service(
    tmp_path: Path, policy_dir: Path, tiny_backend: DiffusersBackend
) -> SealedGenerationService:
    settings = Settings(home=tmp_path / "home", policy=policy_dir / "default.yaml")
    return SealedGenerationService(
        settings, build_parts(settings, backend_loader=lambda _: tiny_backend)
    )


def _edges(image: Image.Image) -> float:
    return float(ImageStat.Stat(image.convert("L").filter(ImageFilter.FIND_EDGES)).mean[0])


def test_blur_releases_only_the_blurred_variant_and_says_so(
    service: SealedGenerationService,
) -> None:
    plain = service.generate(SMALL)
    blurred = service.generate(SMALL.model_copy(update={"tenant": "blurry"}))

    assert blurred.status == "released" and blurred.decision.action is Action.BLUR
    sharp = decode_image(plain.images[0].data, max_bytes=10**8, max_pixels=10**8)
    soft = decode_image(blurred.images[0].data, max_bytes=10**8, max_pixels=10**8)
    assert _edges(soft) < _edges(sharp) / 2
    _, manifest = c2pa_read(
        blurred.images[0].data, blurred.images[0].mime, service.identity.root_cert_pem
    )
    assert manifest["moderation"]["blurred"] is True
    assert manifest["moderation"]["decision"] == "blur"
    assert manifest["moderation"]["policy"]["id"] == "blurry"
    entry = service.store.audit_entries(limit=1)[0]
    assert entry.event == "released" and entry.decision["blurred"] is True


def test_review_holds_the_image_until_a_reviewer_approves(
    service: SealedGenerationService,
) -> None:
    result = service.generate(SMALL.model_copy(update={"tenant": "careful", "n": 2}))

    assert result.status == "held" and result.images == []
    assert [h.index for h in result.held] == [0, 1]
    assert [e.decision["outcome"] for e in service.store.audit_entries()] == ["held", "held"]
    assert {r.id for r in service.reviews.list()} == {h.review_id for h in result.held}
    assert service.store.audit_entries()[0].event == "blocked"  # not released

    first, second = result.held
    record, sealed = service.approve_review(first.review_id, reviewer="ana", note="fine")
    assert record.status == "approved" and record.manifest_id == sealed.manifest_id
    assert service.store.get(sealed.manifest_id) is not None
    assert service.reviews.sealed(first.review_id) == sealed.data
    state, manifest = c2pa_read(sealed.data, sealed.mime, service.identity.root_cert_pem)
    assert state == "Trusted"
    assert manifest["moderation"]["review"] == {"outcome": "approved", "review_id": first.review_id}
    released = service.store.audit_entries(limit=1)[0]
    assert released.event == "released" and released.decision["review"]["reviewer"] == "ana"

    rejected = service.reject_review(second.review_id, reviewer="ana")
    assert rejected.status == "rejected"
    with pytest.raises(NotFoundError):
        service.reviews.candidate(second.review_id)  # the pixels are gone
    with pytest.raises(InputError, match="already rejected"):
        service.approve_review(second.review_id)
    assert service.reviews.list() == []
    assert service.store.verify_audit_chain()


def test_require_consent_blocks_without_an_attestation(service: SealedGenerationService) -> None:
    request = SMALL.model_copy(update={"tenant": "consent"})

    blocked = service.generate(request)
    consent = ConsentAttestation(subject="user-1", reference="consent-42")
    released = service.generate(request.model_copy(update={"consent": consent}))

    assert blocked.status == "blocked" and blocked.decision.action is Action.REQUIRE_CONSENT
    assert blocked.decision.message == "consent please"
    assert released.status == "released"
    assert released.images[0].decision.action is Action.ALLOW


def test_shadow_mode_releases_but_records_the_would_be_block(
    service: SealedGenerationService,
) -> None:
    result = service.generate(SMALL.model_copy(update={"tenant": "trial"}))

    assert result.status == "released"
    decision = result.images[0].decision
    assert decision.policy_id == "default"  # the base decided
    assert decision.shadow is not None
    assert (decision.shadow.action, decision.shadow.rule, decision.shadow.policy_id) == (
        Action.BLOCK,
        "block-outputs",
        "trial",
    )
    entry = service.store.audit_entries(limit=1)[0]
    assert entry.event == "released"
    assert entry.decision["shadow"]["action"] == "block"
    _, manifest = c2pa_read(
        result.images[0].data, result.images[0].mime, service.identity.root_cert_pem
    )
    assert manifest["moderation"]["shadow"] == {"decision": "block", "rule": "block-outputs"}


def test_a_condition_failing_at_run_time_fails_closed_and_is_recorded(
    service: SealedGenerationService,
) -> None:
    result = service.generate(SMALL.model_copy(update={"tenant": "typo", "n": 2}))

    assert result.status == "blocked" and result.images == []
    assert result.decision.rule == "block-tier"
    [error] = result.decision.errors
    assert "tier" in error.error
    [entry] = service.store.audit_entries()
    assert entry.event == "blocked" and entry.decision["errors"][0]["rule"] == "block-tier"


def test_the_audit_log_records_enough_to_replay_under_a_new_policy(
    service: SealedGenerationService, policy_dir: Path
) -> None:
    service.generate(SMALL.model_copy(update={"n": 2}))
    service.generate(SMALL.model_copy(update={"prompt": "a nude portrait"}))
    entries = service.store.audit_entries()
    assert [e.event for e in entries] == ["blocked", "released", "released"]
    for entry in entries:
        assert {"findings", "context", "stage", "policy_sha256"} <= set(entry.decision)
        assert "nude portrait" not in str(entry.decision)  # the prompt is never recorded
    assert entries[1].decision["context"]["stage"] == "output"

    # Under the base policy nothing changes; under a policy holding every output, 2 do.
    same = replay_decisions(reversed(entries), PolicySet.load(policy_dir / "default.yaml"))
    assert (same.replayed, same.changed) == (3, 0)
    new = Policy.load(policy_dir / "tenants" / "careful.yaml")
    report = replay_decisions(reversed(entries), new)
    assert (report.replayed, report.changed) == (3, 2)
    assert report.by_decision == {"allow → review": 2}
    assert report.by_rule == {"(default) → review-outputs": 2}


def test_hot_reload_keeps_the_old_policy_on_an_invalid_file(
    service: SealedGenerationService, policy_dir: Path
) -> None:
    path = policy_dir / "default.yaml"
    old = service.policies.sha256
    original = path.read_text(encoding="utf-8")

    path.write_text(original.replace("action: block", "action: blok", 1), encoding="utf-8")
    assert service.reload_policy() is False
    assert service.policies.sha256 == old
    assert service.generate(SMALL).status == "released"  # still served by the old policy

    # A valid change: "fox" becomes a hate term; the screener is rebuilt from the new lists.
    path.write_text(original.replace("  hate:\n", "  hate:\n    - fox\n", 1), encoding="utf-8")
    assert service.reload_policy() is True
    assert service.policies.sha256 != old
    blocked = service.generate(SMALL)
    assert blocked.status == "blocked" and blocked.decision.rule == "block-hate-prompt"
