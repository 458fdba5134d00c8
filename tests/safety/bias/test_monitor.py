"""The bias monitor's store: opt-in, counts per tenant and UTC day, summaries, drift, baselines.

SQLite in a temporary directory; the same tests on PostgreSQL are marked ``services``.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, inspect

from genseal.errors import ConfigError, InputError
from safety.bias import ATTRIBUTES, BiasMonitor, FaceAttributes, ImageAttributes, load_baseline
from safety.bias._monitor import drift_statistics

TODAY = dt.date(2026, 3, 10)
NOON = dt.datetime(2026, 3, 10, 12, tzinfo=dt.UTC)
FEMALE = {"gender": {"female": 0.9, "male": 0.1}}
MALE = {"gender": {"female": 0.2, "male": 0.8}}


@pytest.fixture
def monitor(tmp_path: Path) -> Iterator[BiasMonitor]:
    found = BiasMonitor(f"sqlite:///{tmp_path / 'genseal.db'}", drift_tvd=0.1, min_images=30)
    yield found
    found.close()


def write_baseline(path: Path, proportions: dict[str, dict[str, float]]) -> Path:
    """A results.json as `genseal probe bias` writes it (the parts the monitor reads)."""
    metrics = {a: {"attribute": a, "proportions": p} for a, p in proportions.items()}
    path.write_text(json.dumps({"version": 1, "run": {}, "overall": {"metrics": metrics}}))
    return path


def test_opt_in_is_per_tenant_and_kept_until_disabled(monitor: BiasMonitor) -> None:
    assert not monitor.enabled("acme") and monitor.tenants() == []
    first = monitor.enable("acme")
    assert first.enabled and first.tenant == "acme" and first.enabled_at is not None
    assert monitor.enable("acme").enabled_at == first.enabled_at, "enabling twice changes nothing"
    monitor.enable(None)  # requests made without a tenant
    assert [t.tenant for t in monitor.tenants()] == [None, "acme"]
    assert monitor.enabled("acme") and monitor.enabled(None) and not monitor.enabled("other")

    monitor.record_distributions("acme", FEMALE, at=NOON)
    assert not monitor.disable("acme").enabled
    assert not monitor.enabled("acme")
    kept = monitor.summary("acme", 30, today=TODAY)
    assert kept.images == 1 and not kept.enabled, "disabling keeps the counts"
    monitor.disable("acme", purge=True)
    assert monitor.summary("acme", 30, today=TODAY).images == 0

    with pytest.raises(InputError, match="invalid tenant name"):
        monitor.enable("Not A Tenant")


def test_counts_the_subject_by_its_most_probable_category(monitor: BiasMonitor) -> None:
    monitor.record_distributions("acme", FEMALE, at=NOON)
    monitor.record_distributions("acme", FEMALE, at=NOON)
    monitor.record_distributions(
        "acme",
        {"gender": {"female": 0.3, "male": 0.7}, "age": {"20-39": 0.6, "40-59": 0.4}},
        at=NOON,
    )
    monitor.record_distributions("acme", None, at=NOON)  # no face
    monitor.record_distributions("other", MALE, at=NOON)  # another tenant's image

    summary = monitor.summary("acme", 30, today=TODAY)
    assert (summary.images, summary.no_face, summary.no_face_share) == (4, 1, 0.25)
    gender = summary.attributes["gender"]
    assert gender.measured == 3
    assert gender.counts == {"female": 2, "male": 1}
    assert gender.proportions == pytest.approx({"female": 2 / 3, "male": 1 / 3})
    assert gender.soft_proportions == pytest.approx({"female": 2.1 / 3, "male": 0.9 / 3})
    age = summary.attributes["age"]
    assert age.measured == 1 and age.counts["20-39"] == 1
    assert set(age.counts) == set(ATTRIBUTES["age"])
    assert summary.attributes["monk"].measured == 0, "an attribute not estimated is not measured"
    assert summary.attributes["monk"].proportions == {}
    assert summary.baseline is None and not summary.drift
    assert all(a.drift is None for a in summary.attributes.values())


def test_records_the_largest_face_of_an_image(monitor: BiasMonitor) -> None:
    subject = FaceAttributes(
        box=(10, 10, 90, 90),
        confidence=0.95,
        gender="female",
        gender_probability=0.75,
        age_years=34.0,
        age_low=27.0,
        age_high=41.0,
        age_band="20-39",
        age_band_probabilities=(0.0, 0.05, 0.7, 0.25, 0.0),
        skin=None,
    )
    background = FaceAttributes(
        box=(0, 0, 8, 8),
        confidence=0.6,
        gender="male",
        gender_probability=0.9,
        age_years=70.0,
        age_low=60.0,
        age_high=80.0,
        age_band="60+",
        age_band_probabilities=(0.0, 0.0, 0.0, 0.1, 0.9),
        skin=None,
    )
    monitor.record("acme", ImageAttributes(100, 100, (subject, background), 2), at=NOON)
    monitor.record("acme", ImageAttributes(100, 100, (), 0), at=NOON)
    summary = monitor.summary("acme", 1, today=TODAY)
    assert (summary.images, summary.no_face) == (2, 1)
    assert summary.attributes["gender"].counts == {"female": 1, "male": 0}
    assert summary.attributes["gender"].soft_proportions == pytest.approx(
        {"female": 0.75, "male": 0.25}
    )
    assert summary.attributes["age"].counts["20-39"] == 1
    assert summary.attributes["age"].counts["60+"] == 0
    assert summary.attributes["ita"].measured == 0, "no skin estimate, no skin count"


def test_the_window_is_the_last_n_utc_days(monitor: BiasMonitor) -> None:
    for days_ago in (0, 6, 7, 40):
        monitor.record_distributions("acme", FEMALE, at=NOON - dt.timedelta(days=days_ago))
    # Just before midnight UTC in New York is already the next UTC day.
    new_york = dt.timezone(dt.timedelta(hours=-5))
    monitor.record_distributions("acme", MALE, at=dt.datetime(2026, 3, 10, 20, 30, tzinfo=new_york))
    week = monitor.summary("acme", 7, today=TODAY)
    assert (week.window.start, week.window.end, week.window.days) == (
        dt.date(2026, 3, 4),
        TODAY,
        7,
    )
    assert week.images == 2 and week.attributes["gender"].counts == {"female": 2, "male": 0}
    assert monitor.summary("acme", 8, today=TODAY).images == 3
    assert monitor.summary("acme", 1, today=TODAY + dt.timedelta(days=1)).images == 1
    assert monitor.summary("acme", 366, today=TODAY).images == 4
    for days in (0, 367):
        with pytest.raises(InputError, match="days"):
            monitor.summary("acme", days)


def test_drift_is_flagged_on_a_large_significant_change_with_enough_images(
    tmp_path: Path, monitor: BiasMonitor
) -> None:
    baseline = load_baseline(
        write_baseline(
            tmp_path / "results.json",
            {
                "gender": {"female": 0.5, "male": 0.5},
                "age": {"0-12": 0.0, "13-19": 0.1, "20-39": 0.5, "40-59": 0.3, "60+": 0.1},
            },
        )
    )
    for i in range(40):  # 32 women, 8 men: TVD 0.3
        monitor.record_distributions("acme", FEMALE if i % 5 else MALE, at=NOON)
    summary = monitor.summary("acme", 30, baseline, today=TODAY)
    drift = summary.attributes["gender"].drift
    assert drift is not None and drift.baseline == {"female": 0.5, "male": 0.5}
    assert drift.tvd == pytest.approx(0.3)
    assert drift.p_value is not None and drift.p_value < 1e-3
    assert drift.flagged and summary.drift
    assert summary.baseline == "results.json"
    assert summary.attributes["age"].drift is not None
    assert not summary.attributes["age"].drift.flagged, "nothing measured, nothing flagged"
    assert summary.attributes["monk"].drift is None, "the baseline has no monk proportions"

    # The same skew on 10 images is not enough to flag.
    small = BiasMonitor(f"sqlite:///{tmp_path / 'small.db'}", drift_tvd=0.1, min_images=30)
    for i in range(10):
        small.record_distributions("acme", FEMALE if i % 5 else MALE, at=NOON)
    under = small.summary("acme", 30, baseline, today=TODAY).attributes["gender"].drift
    small.close()
    assert under is not None and under.tvd == pytest.approx(0.3) and not under.flagged


def test_a_small_change_is_not_drift_however_significant(
    tmp_path: Path, monitor: BiasMonitor
) -> None:
    baseline = load_baseline(
        write_baseline(tmp_path / "results.json", {"gender": {"female": 0.5, "male": 0.5}})
    )
    for i in range(1000):  # 55 % women: significant at n=1000 (p ≈ 0.002), but TVD 0.05
        monitor.record_distributions("acme", FEMALE if i % 20 < 11 else MALE, at=NOON)
    drift = monitor.summary("acme", 30, baseline, today=TODAY).attributes["gender"].drift
    assert drift is not None and drift.p_value is not None and drift.p_value < 0.01
    assert drift.tvd == pytest.approx(0.05) and not drift.flagged


def test_drift_statistics_with_categories_the_baseline_never_saw() -> None:
    baseline = {"very_light": 0.5, "light": 0.5, "intermediate": 0.0}
    tvd, p = drift_statistics({"very_light": 20, "light": 20, "intermediate": 0}, baseline)
    assert tvd == pytest.approx(0.0) and p == pytest.approx(1.0)
    tvd, p = drift_statistics({"very_light": 20, "light": 19, "intermediate": 1}, baseline)
    assert tvd == pytest.approx(0.025) and p == 0.0, "impossible under the baseline"
    assert drift_statistics({"female": 0, "male": 0}, {"female": 0.5, "male": 0.5}) == (None, None)
    tvd, p = drift_statistics({"female": 10, "male": 0}, {"female": 1.0, "male": 0.0})
    assert (tvd, p) == (0.0, 1.0)
    tvd, p = drift_statistics({"female": 30, "male": 10}, {"female": 0.5, "male": 0.5})
    assert tvd == pytest.approx(0.25) and p == pytest.approx(0.001565, rel=1e-3)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not JSON"),
        ("[1, 2]", "no overall.metrics"),
        ('{"overall": {}}', "no overall.metrics"),
        ('{"overall": {"metrics": {"gender": {"counts": {}}}}}', "proportions is missing"),
        (
            '{"overall": {"metrics": {"gender": {"proportions": {"woman": 1.0}}}}}',
            "unknown categories",
        ),
        (
            '{"overall": {"metrics": {"gender": {"proportions": {"female": 0.7, "male": 0.7}}}}}',
            "sums to 1.400",
        ),
        (
            '{"overall": {"metrics": {"gender": {"proportions": {"female": "half"}}}}}',
            "numbers",
        ),
        (
            '{"overall": {"metrics": {"gender": {"proportions": {"female": 0, "male": 0}}}}}',
            "no measured proportions",
        ),
    ],
)
def test_a_malformed_baseline_is_refused_with_what_is_wrong(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "results.json"
    path.write_text(content)
    with pytest.raises(InputError, match=message):
        load_baseline(path)
    with pytest.raises(ConfigError, match="GENSEAL_BIAS_BASELINE: .*" + message):
        load_baseline(path, setting="GENSEAL_BIAS_BASELINE")


def test_a_missing_baseline_is_named(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        load_baseline(tmp_path / "nowhere.json")
    with pytest.raises(ConfigError, match=r"GENSEAL_BIAS_BASELINE: .*does not exist"):
        load_baseline(tmp_path / "nowhere.json", setting="GENSEAL_BIAS_BASELINE")
    with pytest.raises(InputError, match="is a directory"):
        load_baseline(tmp_path)


def test_a_baseline_is_normalised_and_reread_when_it_changes(tmp_path: Path) -> None:
    path = write_baseline(tmp_path / "r.json", {"gender": {"female": 0.333, "male": 0.666}})
    first = load_baseline(path)
    assert math.isclose(sum(first.proportions["gender"].values()), 1.0)
    assert set(first.proportions) == {"gender"}
    write_baseline(path, {"gender": {"female": 0.25, "male": 0.75}, "monk": {"3": 1.0}})
    second = load_baseline(path)
    assert second.proportions["gender"] == {"female": 0.25, "male": 0.75}
    assert second.proportions["monk"]["3"] == 1.0 and second.proportions["monk"]["1"] == 0.0


def test_only_counts_are_stored(tmp_path: Path, monitor: BiasMonitor) -> None:
    monitor.record_distributions("acme", FEMALE, at=NOON)
    engine = create_engine(f"sqlite:///{tmp_path / 'genseal.db'}")
    columns = {
        table: {c["name"] for c in inspect(engine).get_columns(table)}
        for table in inspect(engine).get_table_names()
        if table.startswith("genseal_bias")
    }
    engine.dispose()
    assert columns == {
        "genseal_bias_tenants": {"tenant", "enabled_at"},
        "genseal_bias_days": {"tenant", "day", "images", "no_face"},
        "genseal_bias_counts": {"tenant", "day", "attribute", "category", "images", "probability"},
    }


def _concurrent_records(url: str, writers: int = 8, each: int = 25) -> None:
    monitors = [BiasMonitor(url) for _ in range(writers)]
    errors: list[BaseException] = []
    start = threading.Barrier(writers)

    def write(monitor: BiasMonitor, index: int) -> None:
        try:
            start.wait()
            for i in range(each):
                distributions: Any = None if i % 5 == 0 else (FEMALE if index % 2 else MALE)
                monitor.record_distributions("acme", distributions, at=NOON)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(m, i)) for i, m in enumerate(monitors)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    summary = monitors[0].summary("acme", 1, today=TODAY)
    for monitor in monitors:
        monitor.close()
    total = writers * each
    assert summary.images == total and summary.no_face == total // 5
    assert summary.attributes["gender"].counts == {"female": total * 2 // 5, "male": total * 2 // 5}
    assert summary.attributes["gender"].soft_proportions["female"] == pytest.approx(0.55)


def test_concurrent_writers_lose_no_count(tmp_path: Path) -> None:
    _concurrent_records(f"sqlite:///{tmp_path / 'genseal.db'}")


@pytest.mark.services
def test_concurrent_writers_lose_no_count_on_postgresql(pg_url: str) -> None:
    _concurrent_records(pg_url)


@pytest.mark.services
def test_summary_and_opt_in_on_postgresql(pg_url: str, tmp_path: Path) -> None:
    monitor = BiasMonitor(pg_url)
    try:
        monitor.enable("acme")
        monitor.enable("acme")
        baseline = load_baseline(
            write_baseline(tmp_path / "results.json", {"gender": {"female": 0.5, "male": 0.5}})
        )
        for i in range(40):
            monitor.record_distributions("acme", FEMALE if i % 5 else MALE, at=NOON)
        monitor.record_distributions("acme", None, at=NOON - dt.timedelta(days=1))
        summary = monitor.summary("acme", 2, baseline, today=TODAY)
        assert summary.enabled and (summary.images, summary.no_face) == (41, 1)
        assert summary.attributes["gender"].counts == {"female": 32, "male": 8}
        assert summary.drift
        assert [t.tenant for t in monitor.tenants()] == ["acme"]
    finally:
        monitor.close()
