"""The service counts the released images of opted-in tenants, and nothing else, and a failing
monitor never holds a release back.

Real photographs are sealed through the service's release path (the tiny model draws noise,
which has no face); the real face models estimate their attributes.
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import text

from gen import GenerationRequest, SealedGenerationService, build_parts
from genseal.errors import CheckError
from genseal.settings import Settings
from safety import AttributeEstimator, default_policy_path
from tests._media import photo


@pytest.fixture
def service(tmp_path: Path) -> SealedGenerationService:
    return SealedGenerationService(Settings(home=tmp_path / "home"))


def _argmax(distribution: dict[str, float]) -> str:
    return max(distribution, key=lambda category: distribution[category])


def test_an_opted_in_tenant_s_releases_are_counted(service: SealedGenerationService) -> None:
    service.bias_monitor.enable("acme")
    astronaut = photo("astronaut")
    assert service.seal(astronaut, source_model="elsewhere", tenant="acme").released
    assert service.seal(photo("coffee"), source_model="elsewhere", tenant="acme").released

    summary = service.bias_monitor.summary("acme", 1)
    assert (summary.images, summary.no_face) == (2, 1)
    # The counts are the subject's most probable categories, as the estimator sees the photo.
    expected = AttributeEstimator().estimate(Image.open(io.BytesIO(astronaut)).convert("RGB"))
    distributions = expected.subject_distributions()
    assert distributions is not None and {"gender", "age"} <= set(distributions)
    for attribute, found in summary.attributes.items():
        if attribute in distributions:
            assert found.measured == 1
            assert found.counts[_argmax(distributions[attribute])] == 1
        else:
            assert found.measured == 0
    assert service.bias_monitor_failures == 0


def test_a_tenant_that_did_not_opt_in_is_not_estimated_or_counted(
    service: SealedGenerationService,
) -> None:
    service.bias_monitor.enable("acme")
    assert service.seal(photo("astronaut"), source_model="elsewhere", tenant="other").released
    assert service.seal(photo("astronaut"), source_model="elsewhere").released  # no tenant
    assert not service.bias_estimator_loaded, "nothing was estimated"
    assert service.bias_monitor.summary("other", 1).images == 0
    assert service.bias_monitor.summary(None, 1).images == 0
    assert service.bias_monitor.summary("acme", 1).images == 0


def test_generated_images_are_counted(service: SealedGenerationService) -> None:
    service.bias_monitor.enable("acme")
    request = GenerationRequest(
        prompt="a red fox", size=(256, 256), steps=2, seed=1, n=2, tenant="acme"
    )
    assert len(service.generate(request).images) == 2
    assert service.bias_monitor.summary("acme", 1).images == 2


class _BrokenEstimator:
    def estimate(self, image: Image.Image) -> None:
        raise CheckError("the age model could not be loaded")


def test_an_estimator_failure_never_blocks_the_release(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    broken: Any = _BrokenEstimator()
    service = SealedGenerationService(
        settings, build_parts(settings, bias_estimator=lambda: broken)
    )
    service.bias_monitor.enable("acme")
    result = service.seal(photo("astronaut"), source_model="elsewhere", tenant="acme")
    assert result.released and len(result.images) == 1
    assert service.store.get(result.images[0].manifest_id) is not None
    assert [e.event for e in service.store.audit_entries()] == ["released"]
    assert service.bias_monitor_failures == 1
    assert service.bias_monitor.summary("acme", 1).images == 0


def test_a_database_failure_never_blocks_the_release(service: SealedGenerationService) -> None:
    service.bias_monitor.enable("acme")
    with service.bias_monitor._tables.engine.begin() as connection:
        connection.execute(text("DROP TABLE genseal_bias_days"))
    result = service.seal(photo("astronaut"), source_model="elsewhere", tenant="acme")
    assert result.released and len(result.images) == 1
    assert service.bias_monitor_failures == 1


def test_an_approved_review_is_counted_when_released(tmp_path: Path) -> None:
    policies = tmp_path / "policies"
    (policies / "tenants").mkdir(parents=True)
    shutil.copy(default_policy_path(), policies / "default.yaml")
    (policies / "tenants" / "acme.yaml").write_text(
        'id: acme\nversion: "1"\nextends: default\nadd:\n'
        "  - {id: review-outputs, stage: output, when: 'true', action: review}\n",
        encoding="utf-8",
    )
    service = SealedGenerationService(
        Settings(home=tmp_path / "home", policy=policies / "default.yaml")
    )
    service.bias_monitor.enable("acme")
    held = service.seal(photo("astronaut"), source_model="elsewhere", tenant="acme")
    assert held.status == "held"
    assert service.bias_monitor.summary("acme", 1).images == 0, "held is not released"
    service.approve_review(held.held[0].review_id, reviewer="ops")
    summary = service.bias_monitor.summary("acme", 1)
    assert summary.images == 1 and summary.attributes["gender"].measured == 1
