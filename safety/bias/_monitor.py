"""Bias monitoring of released images: opt-in per tenant, counts only, drift against a baseline.

For a tenant an operator opted in, every released image's subject (its largest face) adds one
to a count per UTC day, attribute and perceived category (the argmax of the estimator's
probabilities) and its probabilities to a soft sum beside it; an image without a face adds to
``no_face``. Nothing else is kept: no face, box, descriptor or pixel, and no link to a request.

A summary over a window compares each attribute's proportions with a baseline, the overall
proportions of a bias probe run (``results.json``): total variation distance (TVD) for the size
of the change and a chi-square goodness-of-fit test for whether it is more than chance. Drift is
flagged only when both say so (TVD ≥ the threshold, p < 0.01) and enough images were measured;
with few images the chi-square approximation is rough, which the minimum also guards against.

Counts live in the genseal database (SQLite or PostgreSQL); writers add with one
``INSERT … ON CONFLICT DO UPDATE`` per table, so concurrent releases never lose a count.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, Field
from sqlalchemy import Date, DateTime, Float, Integer, MetaData, String, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from genseal.db import Database, Tables
from genseal.errors import ConfigError, InputError, StoreError

from ._attributes import ATTRIBUTES

if TYPE_CHECKING:
    from ._attributes import ImageAttributes

__all__ = [
    "P_VALUE",
    "AttributeDrift",
    "AttributeSummary",
    "Baseline",
    "BiasMonitor",
    "BiasSummary",
    "BiasWindow",
    "MonitoredTenant",
    "drift_statistics",
    "load_baseline",
]

P_VALUE = 0.01
"""Drift needs a chi-square p-value below this."""

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")  # the tenant names of the tenant table
_SUM_TOLERANCE = 0.01


class _Base(DeclarativeBase):
    pass


class _OptInRow(_Base):
    __tablename__ = "genseal_bias_tenants"

    tenant: Mapped[str] = mapped_column(String(63), primary_key=True)
    enabled_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class _DayRow(_Base):
    __tablename__ = "genseal_bias_days"

    tenant: Mapped[str] = mapped_column(String(63), primary_key=True)
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    images: Mapped[int] = mapped_column(Integer)
    no_face: Mapped[int] = mapped_column(Integer)


class _CountRow(_Base):
    __tablename__ = "genseal_bias_counts"

    tenant: Mapped[str] = mapped_column(String(63), primary_key=True)
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    attribute: Mapped[str] = mapped_column(String(16), primary_key=True)
    category: Mapped[str] = mapped_column(String(32), primary_key=True)
    images: Mapped[int] = mapped_column(Integer)
    probability: Mapped[float] = mapped_column(Float)


# -- what a summary says ---------------------------------------------------------------------------


class MonitoredTenant(BaseModel):
    """Whether a tenant's releases are counted."""

    tenant: str | None = Field(description="Tenant id; null: requests made without a tenant.")
    enabled: bool
    enabled_at: dt.datetime | None = Field(default=None, description="Since when (UTC).")


class BiasWindow(BaseModel):
    start: dt.date = Field(description="First UTC day counted.")
    end: dt.date = Field(description="Last UTC day counted (today).")
    days: int


class AttributeDrift(BaseModel):
    """How far one attribute's observed proportions are from the baseline's."""

    baseline: dict[str, float] = Field(description="The baseline's proportion per category.")
    tvd: float | None = Field(
        description="Total variation distance from the baseline: half the sum of absolute "
        "differences of proportions, 0 (same) to 1 (disjoint); null when nothing was measured."
    )
    p_value: float | None = Field(
        description="Chi-square goodness-of-fit p-value of the counts against the baseline "
        "(categories the baseline never saw are left out, and any count in one gives 0); null "
        "when nothing was measured."
    )
    flagged: bool = Field(
        description="tvd ≥ the drift threshold, p_value < 0.01 and at least the minimum number "
        "of images measured."
    )


class AttributeSummary(BaseModel):
    measured: int = Field(description="Images whose subject this attribute was estimated on.")
    counts: dict[str, int] = Field(description="Images per perceived category (most probable).")
    proportions: dict[str, float] = Field(
        description="counts / measured; empty when nothing was measured."
    )
    soft_proportions: dict[str, float] = Field(
        description="Mean of the estimator's probabilities: carries its uncertainty."
    )
    drift: AttributeDrift | None = Field(
        default=None, description="Against the baseline; null without one for this attribute."
    )


class BiasSummary(BaseModel):
    """Perceived attributes of a tenant's released images over a window, and drift."""

    tenant: str | None = Field(description="Tenant id; null: requests made without a tenant.")
    enabled: bool = Field(description="Whether releases are being counted now.")
    window: BiasWindow
    images: int = Field(description="Released images counted.")
    no_face: int = Field(description="Of them, images in which no face was detected.")
    no_face_share: float | None = Field(description="no_face / images; null without images.")
    attributes: dict[str, AttributeSummary] = Field(
        description="gender, age (band), monk (Monk Skin Tone 1-10), ita (skin tone class)."
    )
    baseline: str | None = Field(
        description="The baseline's file name, with the model and date of its probe run; "
        "null: no baseline."
    )
    drift_tvd: float = Field(description="The TVD threshold of drift.")
    min_images: int = Field(description="Images needed before drift can be flagged.")
    drift: bool = Field(description="Whether any attribute's drift is flagged.")


class Baseline(BaseModel):
    """Proportions per attribute and category, from a probe run's results.json."""

    source: str
    proportions: dict[str, dict[str, float]]


# -- the store -------------------------------------------------------------------------------------


class BiasMonitor:
    """Opt-ins and counts in the genseal database (the same URL as the manifest store)."""

    metadata: ClassVar[MetaData] = _Base.metadata
    """The store's tables, for schema comparison and revision autogenerate."""

    def __init__(
        self,
        database: Database | str,
        *,
        drift_tvd: float = 0.1,
        min_images: int = 30,
        auto_upgrade: bool = True,
    ) -> None:
        self._tables = Tables(database, "bias monitoring tables", auto_upgrade=auto_upgrade)
        self._transaction = self._tables.transaction
        self.drift_tvd = drift_tvd
        self.min_images = min_images

    def close(self) -> None:
        self._tables.close()

    # -- opt-in ----------------------------------------------------------------------------------

    def enable(self, tenant: str | None) -> MonitoredTenant:
        """Start counting a tenant's releases (kept as it is when already on)."""
        key = _key(tenant)
        row = {"tenant": key, "enabled_at": dt.datetime.now(dt.UTC)}
        with self._transaction("enable bias monitoring") as session:
            session.execute(_insert(session, _OptInRow, [row]).on_conflict_do_nothing())
        return self.status(tenant)

    def disable(self, tenant: str | None, *, purge: bool = False) -> MonitoredTenant:
        """Stop counting; the counts so far stay unless ``purge``."""
        key = _key(tenant)
        with self._transaction("disable bias monitoring") as session:
            session.execute(delete(_OptInRow).where(_OptInRow.tenant == key))
            if purge:
                session.execute(delete(_DayRow).where(_DayRow.tenant == key))
                session.execute(delete(_CountRow).where(_CountRow.tenant == key))
        return MonitoredTenant(tenant=_public(key), enabled=False)

    def status(self, tenant: str | None) -> MonitoredTenant:
        key = _key(tenant)
        with self._transaction("read bias monitoring") as session:
            row = session.get(_OptInRow, key)
            at = _utc(row.enabled_at) if row is not None else None
        return MonitoredTenant(tenant=_public(key), enabled=at is not None, enabled_at=at)

    def enabled(self, tenant: str | None) -> bool:
        with self._transaction("read bias monitoring") as session:
            return session.get(_OptInRow, tenant or "") is not None

    def tenants(self) -> list[MonitoredTenant]:
        """Every opted-in tenant."""
        with self._transaction("list bias monitoring") as session:
            rows = session.scalars(select(_OptInRow).order_by(_OptInRow.tenant)).all()
            return [
                MonitoredTenant(
                    tenant=_public(r.tenant), enabled=True, enabled_at=_utc(r.enabled_at)
                )
                for r in rows
            ]

    # -- counting --------------------------------------------------------------------------------

    def record(
        self, tenant: str | None, attributes: ImageAttributes, *, at: dt.datetime | None = None
    ) -> None:
        """Count one released image (whether or not the tenant opted in: the caller checks)."""
        self.record_distributions(tenant, attributes.subject_distributions(), at=at)

    def record_distributions(
        self,
        tenant: str | None,
        distributions: Mapping[str, Mapping[str, float]] | None,
        *,
        at: dt.datetime | None = None,
    ) -> None:
        """Count one image from its subject's probabilities per attribute (None: no face)."""
        key = _key(tenant)
        day = (at or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).date()
        counts: list[dict[str, Any]] = []
        for attribute, probabilities in sorted((distributions or {}).items()):
            categories = ATTRIBUTES.get(attribute)
            if categories is None:
                continue
            top = max(categories, key=lambda c: probabilities.get(c, 0.0))
            for category in categories:
                p = float(probabilities.get(category, 0.0))
                if p > 0 or category == top:
                    counts.append(
                        {
                            "tenant": key,
                            "day": day,
                            "attribute": attribute,
                            "category": category,
                            "images": int(category == top),
                            "probability": p,
                        }
                    )
        images = {"tenant": key, "day": day, "images": 1, "no_face": int(distributions is None)}
        # Rows in one fixed order: concurrent writers lock them in that order and never deadlock.
        with self._transaction("record bias counts") as session:
            _add(session, _DayRow, [images], ("images", "no_face"))
            if counts:
                _add(session, _CountRow, counts, ("images", "probability"))

    # -- summaries -------------------------------------------------------------------------------

    def summary(
        self,
        tenant: str | None,
        days: int = 30,
        baseline: Baseline | None = None,
        *,
        today: dt.date | None = None,
    ) -> BiasSummary:
        """Counts, proportions and drift over the last ``days`` UTC days (today included)."""
        if not 1 <= days <= 366:
            raise InputError(f"days must be between 1 and 366, not {days}")
        key = _key(tenant)
        end = today or dt.datetime.now(dt.UTC).date()
        start = end - dt.timedelta(days=days - 1)
        with self._transaction("read bias counts") as session:
            enabled = session.get(_OptInRow, key) is not None
            images, no_face = session.execute(
                select(func.sum(_DayRow.images), func.sum(_DayRow.no_face)).where(
                    _DayRow.tenant == key, _DayRow.day >= start, _DayRow.day <= end
                )
            ).one()
            grouped = session.execute(
                select(
                    _CountRow.attribute,
                    _CountRow.category,
                    func.sum(_CountRow.images),
                    func.sum(_CountRow.probability),
                )
                .where(_CountRow.tenant == key, _CountRow.day >= start, _CountRow.day <= end)
                .group_by(_CountRow.attribute, _CountRow.category)
            ).all()
        hard: dict[str, dict[str, int]] = {a: dict.fromkeys(c, 0) for a, c in ATTRIBUTES.items()}
        soft: dict[str, dict[str, float]] = {
            a: dict.fromkeys(c, 0.0) for a, c in ATTRIBUTES.items()
        }
        for attribute, category, count, probability in grouped:
            if category in hard.get(attribute, {}):
                hard[attribute][category] = int(count or 0)
                soft[attribute][category] = float(probability or 0.0)
        reference = baseline.proportions if baseline is not None else {}
        attributes = {a: self._attribute(hard[a], soft[a], reference.get(a)) for a in ATTRIBUTES}
        images, no_face = int(images or 0), int(no_face or 0)
        return BiasSummary(
            tenant=_public(key),
            enabled=enabled,
            window=BiasWindow(start=start, end=end, days=days),
            images=images,
            no_face=no_face,
            no_face_share=no_face / images if images else None,
            attributes=attributes,
            baseline=baseline.source if baseline else None,
            drift_tvd=self.drift_tvd,
            min_images=self.min_images,
            drift=any(a.drift is not None and a.drift.flagged for a in attributes.values()),
        )

    def summaries(self, days: int = 30, baseline: Baseline | None = None) -> list[BiasSummary]:
        """The summary of every opted-in tenant."""
        return [self.summary(t.tenant, days, baseline) for t in self.tenants()]

    def _attribute(
        self, counts: dict[str, int], soft: dict[str, float], baseline: Mapping[str, float] | None
    ) -> AttributeSummary:
        measured = sum(counts.values())
        proportions = {c: n / measured for c, n in counts.items()} if measured else {}
        # The probabilities of one image sum to 1, so their sums do to `measured`.
        total = sum(soft.values())
        soft_proportions = {c: p / total for c, p in soft.items()} if total > 0 else {}
        drift = None
        if baseline is not None:
            tvd, p_value = drift_statistics(counts, baseline)
            drift = AttributeDrift(
                baseline=dict(baseline),
                tvd=tvd,
                p_value=p_value,
                flagged=measured >= self.min_images
                and tvd is not None
                and tvd >= self.drift_tvd
                and p_value is not None
                and p_value < P_VALUE,
            )
        return AttributeSummary(
            measured=measured,
            counts=counts,
            proportions=proportions,
            soft_proportions=soft_proportions,
            drift=drift,
        )


def drift_statistics(
    counts: Mapping[str, int], baseline: Mapping[str, float]
) -> tuple[float | None, float | None]:
    """(total variation distance, chi-square goodness-of-fit p-value) of counts vs baseline."""
    from scipy.stats import chisquare

    n = sum(counts.values())
    if n == 0:
        return None, None
    categories = sorted(set(counts) | set(baseline))
    tvd = 0.5 * sum(abs(counts.get(c, 0) / n - baseline.get(c, 0.0)) for c in categories)
    # A zero expected count makes the statistic infinite: observations the baseline calls
    # impossible are as strong evidence as there is (p = 0); otherwise the category drops out.
    if any(counts.get(c, 0) > 0 and baseline.get(c, 0.0) <= 0 for c in categories):
        return tvd, 0.0
    kept = [c for c in categories if baseline.get(c, 0.0) > 0]
    if len(kept) < 2:
        return tvd, 1.0
    weight = sum(baseline[c] for c in kept)
    observed = [counts.get(c, 0) for c in kept]
    expected = [n * baseline[c] / weight for c in kept]
    p_value = float(chisquare(observed, expected).pvalue)
    return tvd, p_value if math.isfinite(p_value) else None


# -- the baseline ----------------------------------------------------------------------------------


def load_baseline(path: Path, *, setting: str | None = None) -> Baseline:
    """The baseline of a probe's results.json: ``overall.metrics[attribute].proportions``.

    InputError when the file is missing or malformed; ConfigError naming ``setting`` instead
    when the path came from the settings.
    """
    try:
        stat = path.stat()
        return _load_baseline(str(path), stat.st_mtime_ns, stat.st_size)
    except FileNotFoundError:
        problem = f"bias baseline {path} does not exist"
    except IsADirectoryError:
        problem = f"bias baseline {path} is a directory, not a results.json"
    except OSError as exc:
        problem = f"cannot read bias baseline {path}: {exc.strerror or exc}"
    except InputError as exc:
        if setting is None:
            raise
        problem = exc.message
    if setting is not None:
        raise ConfigError(f"{setting}: {problem}")
    raise InputError(problem)


@lru_cache(maxsize=8)
def _load_baseline(path: str, _mtime_ns: int, _size: int) -> Baseline:
    # Keyed on mtime and size: a summary per request or scrape re-reads only a changed file.
    try:
        with open(path, encoding="utf-8") as file:
            data = json.load(file)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"bias baseline {path} is not JSON: {exc}") from exc
    metrics = data.get("overall", {}).get("metrics") if isinstance(data, dict) else None
    if not isinstance(metrics, dict):
        raise InputError(
            f"bias baseline {path} has no overall.metrics: give the results.json of "
            "`genseal probe bias`"
        )
    proportions: dict[str, dict[str, float]] = {}
    for attribute, categories in ATTRIBUTES.items():
        entry = metrics.get(attribute)
        if entry is None:
            continue
        found = _proportions(path, attribute, categories, entry)
        if found is not None:
            proportions[attribute] = found
    if not proportions:
        raise InputError(
            f"bias baseline {path} has no measured proportions for any of {', '.join(ATTRIBUTES)}"
        )
    return Baseline(source=_describe(path, data), proportions=proportions)


def _describe(path: str, data: dict[str, Any]) -> str:
    # The file name and what the run was, never the server's directories (callers see this).
    run = data.get("run")
    model = run.get("model") if isinstance(run, dict) else None
    about = []
    if isinstance(model, dict) and isinstance(model.get("id"), str):
        about.append(f"model {model['id']}")
    if isinstance(data.get("created"), str):
        about.append(f"created {data['created']}")
    name = Path(path).name
    return f"{name} ({', '.join(about)})" if about else name


def _proportions(
    path: str, attribute: str, categories: Sequence[str], entry: Any
) -> dict[str, float] | None:
    where = f"bias baseline {path}: overall.metrics.{attribute}.proportions"
    values = entry.get("proportions") if isinstance(entry, dict) else None
    if not isinstance(values, dict):
        raise InputError(f"{where} is missing or not an object")
    unknown = sorted(set(values) - set(categories))
    if unknown:
        raise InputError(
            f"{where} has unknown categories {unknown}; known: {', '.join(categories)}"
        )
    if not all(
        isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and v >= 0
        for v in values.values()
    ):
        raise InputError(f"{where} must hold numbers ≥ 0")
    total = float(sum(values.values()))
    if total == 0:
        return None  # the probe measured nothing for this attribute: no baseline for it
    if abs(total - 1) > _SUM_TOLERANCE:
        raise InputError(f"{where} sums to {total:.3f}, not 1")
    return {c: float(values.get(c, 0.0)) / total for c in categories}


# -- helpers ---------------------------------------------------------------------------------------


def _key(tenant: str | None) -> str:
    """The stored key: "" for requests made without a tenant."""
    if tenant is None or tenant == "":
        return ""
    if not _NAME.match(tenant):
        raise InputError(
            f"invalid tenant name {tenant!r}: lowercase letters, digits, '-' and '_', "
            "starting with a letter or digit, at most 63 characters"
        )
    return tenant


def _public(key: str) -> str | None:
    return key or None


def _utc(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value


def _insert(session: Session, row: type[_Base], values: list[dict[str, Any]]) -> Any:
    dialect = session.get_bind().dialect.name
    inserts: dict[str, Any] = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}
    if dialect not in inserts:
        raise StoreError(f"bias monitoring needs SQLite or PostgreSQL, not {dialect}")
    return inserts[dialect](row).values(values)


def _add(
    session: Session, row: type[_Base], values: list[dict[str, Any]], added: Sequence[str]
) -> None:
    """Insert the rows, or add their ``added`` columns to the rows already there (atomically)."""
    statement = _insert(session, row, values)
    table = row.__table__
    keys = [column.name for column in table.primary_key.columns]  # type: ignore[attr-defined]
    session.execute(
        statement.on_conflict_do_update(
            index_elements=keys,
            set_={name: table.c[name] + statement.excluded[name] for name in added},  # type: ignore[attr-defined]
        )
    )
