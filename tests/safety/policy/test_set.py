"""Policy sets: a base and its tenant overlays, and hot reload that keeps the old set when the
new files do not load."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog.testing

from genseal.errors import PolicyError
from safety import PolicyReloader, PolicySet
from tests.safety.policy._policies import BASE, write_overlay


def test_policy_set_picks_the_tenant_overlay(policies: Path) -> None:
    write_overlay(policies, "acme", "disable: [flag-hate]\n")
    policy_set = PolicySet.load(policies / "base.yaml")
    assert policy_set.for_tenant("acme").id == "acme"
    assert policy_set.for_tenant("other").id == "base"
    assert policy_set.for_tenant(None).id == "base"
    assert set(policy_set.summary()["tenants"]) == {"acme"}  # type: ignore[arg-type]


def test_an_overlay_of_another_base_is_refused(policies: Path) -> None:
    (policies / "other.yaml").write_text(BASE.replace("id: base", "id: other"), encoding="utf-8")
    (policies / "tenants" / "acme.yaml").write_text(
        'id: acme\nversion: "1"\nextends: other\n', encoding="utf-8"
    )
    with pytest.raises(PolicyError, match="must extend the active base policy 'base'"):
        PolicySet.load(policies / "base.yaml")


# --- hot reload -------------------------------------------------------------------------------


def test_hot_reload_swaps_a_valid_change_and_keeps_the_old_policy_on_an_invalid_one(
    policies: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seen: list[str] = []
    reloader = PolicyReloader(policies / "base.yaml", on_change=lambda s: seen.append(s.sha256))
    first = reloader.current
    assert reloader.check() is False  # nothing changed

    (policies / "base.yaml").write_text(BASE.replace('version: "1"', 'version: "2"'), "utf-8")
    assert reloader.check() is True
    second = reloader.current
    assert second.base.version == "2" and seen == [second.sha256] != [first.sha256]

    (policies / "base.yaml").write_text(BASE.replace("action: flag", "action: flog"), "utf-8")
    assert reloader.check() is False
    assert reloader.current is second  # the old policy stays active
    assert reloader.last_error is not None and "flag-hate" in reloader.last_error
    assert reloader.check() is False  # the same broken file is not re-reported

    # A broken overlay is rejected the same way.
    (policies / "base.yaml").write_text(BASE, "utf-8")
    write_overlay(policies, "acme", "disable: [no-such-rule]\n")
    assert reloader.check() is False and reloader.current is second
    (policies / "tenants" / "acme.yaml").unlink()
    assert reloader.check() is True and reloader.current.base.version == "1"


@pytest.fixture
def every_log_level() -> Iterator[None]:
    """structlog passing every level: a command run earlier in the process may have set it to
    critical, and capture_logs replaces only the processors."""
    saved = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG))
    yield
    structlog.configure(**saved)


@pytest.mark.usefixtures("every_log_level")
def test_a_reload_is_logged_as_info_and_a_rejected_one_as_an_error(policies: Path) -> None:
    reloader = PolicyReloader(policies / "base.yaml")
    with structlog.testing.capture_logs() as logs:
        (policies / "base.yaml").write_text(BASE.replace('version: "1"', 'version: "2"'), "utf-8")
        assert reloader.check() is True
        (policies / "base.yaml").write_text(BASE.replace("action: flag", "action: flog"), "utf-8")
        assert reloader.check() is False
    assert [(entry["event"], entry["log_level"]) for entry in logs] == [
        ("policy reloaded", "info"),
        ("policy reload rejected; the old policy stays active", "error"),
    ]


def test_a_file_caught_half_written_is_not_rejected_but_read_once_it_holds_still(
    policies: Path,
) -> None:
    reloader = PolicyReloader(policies / "base.yaml", settle_seconds=0.3)
    path = policies / "base.yaml"
    path.write_text("", "utf-8")  # what a reader sees between truncate and write
    finisher = threading.Timer(
        0.05, lambda: path.write_text(BASE.replace('version: "1"', 'version: "2"'), "utf-8")
    )
    finisher.start()
    try:
        assert reloader.check() is False  # still changing: not judged
        finisher.join()
        assert reloader.last_error is None
        assert reloader.check() is True
        assert reloader.current.base.version == "2" and reloader.last_error is None
    finally:
        finisher.cancel()
