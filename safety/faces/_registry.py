"""Protected identities: people whose likeness must not be generated or edited, by descriptor.

Only 128-d face descriptors are stored (as float32), with the name, a note and the sha256 of
each photo's bytes (so the same photo is not enrolled twice) — never pixels. A descriptor is not
a photo, but it is biometric data: the table is the operator's to protect like the audit log.

Tables live in the genseal database (the manifest store's URL, SQLite or PostgreSQL), brought
to its schema on open. The checks read the registry on every screened image, so it is cached in
memory; a one-row generation counter, bumped in the same transaction as every enrolment and
removal, tells a reader when to reload. That read doubles as the reachability probe: an
unreachable registry raises `StoreError` and the check reports an error, never "clean".
"""

from __future__ import annotations

import datetime as dt
import threading
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, Field
from sqlalchemy import (
    DateTime,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    delete,
    func,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from genseal.db import Database, Tables
from genseal.errors import InputError, NotFoundError, StoreError

__all__ = ["EnrolledIdentity", "Enrollment", "FaceRegistry", "IdentityMatch", "RegistrySnapshot"]

_DIMENSIONS = 128
_MAX_NAME = 128
_MAX_NOTE = 2000
_STATE_ID = 1


class _Base(DeclarativeBase):
    pass


class _IdentityRow(_Base):
    __tablename__ = "genseal_face_identities"

    name: Mapped[str] = mapped_column(String(_MAX_NAME), primary_key=True)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class _DescriptorRow(_Base):
    __tablename__ = "genseal_face_descriptors"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # No foreign key: SQLite enforces none unless asked per connection; removal deletes both.
    name: Mapped[str] = mapped_column(String(_MAX_NAME), index=True)
    model: Mapped[str] = mapped_column(String(128))
    descriptor: Mapped[bytes] = mapped_column(LargeBinary)
    source_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class _StateRow(_Base):
    __tablename__ = "genseal_face_registry_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    generation: Mapped[int] = mapped_column(Integer)


class EnrolledIdentity(BaseModel):
    """An enrolled person as the CLI lists them (never their descriptors)."""

    name: str
    note: str | None = None
    photos: int = Field(description="Descriptors enrolled (one per photo).")
    created_at: dt.datetime
    updated_at: dt.datetime


class Enrollment(BaseModel):
    """What one enrolment did."""

    identity: EnrolledIdentity
    added: int = Field(description="Descriptors stored by this enrolment.")
    duplicates: int = Field(description="Photos already enrolled under this name (skipped).")


@dataclass(frozen=True)
class IdentityMatch:
    """An enrolled name and the distance of its closest descriptor."""

    name: str
    distance: float


@dataclass(frozen=True)
class RegistrySnapshot:
    """Every enrolled descriptor at one generation, ready to match against."""

    generation: int
    names: tuple[str, ...]  # one per row of `descriptors`
    models: tuple[str, ...]
    descriptors: npt.NDArray[np.float64]  # (n, 128)

    @property
    def identities(self) -> int:
        return len(set(self.names))

    def usable(self, model: str) -> int:
        """How many descriptors were made by `model` (others cannot be compared)."""
        return sum(1 for m in self.models if m == model)

    def match(self, descriptor: npt.ArrayLike, *, model: str) -> list[IdentityMatch]:
        """Each enrolled name with its closest descriptor's distance, nearest first."""
        probe = np.asarray(descriptor, dtype=np.float64).reshape(-1)
        if probe.shape != (_DIMENSIONS,):
            raise ValueError(f"a face descriptor has {_DIMENSIONS} values, not {probe.size}")
        mask = np.array([m == model for m in self.models], dtype=bool)
        if not mask.any():
            return []
        distances = np.linalg.norm(self.descriptors[mask] - probe, axis=1)
        best: dict[str, float] = {}
        for name, distance in zip(
            (n for n, keep in zip(self.names, mask, strict=True) if keep),
            distances.tolist(),
            strict=True,
        ):
            if distance < best.get(name, np.inf):
                best[name] = distance
        return sorted(
            (IdentityMatch(n, d) for n, d in best.items()), key=lambda m: (m.distance, m.name)
        )


def validate_name(name: str) -> str:
    """A display name such as 'Jane Doe': 1-128 printable characters, no outer spaces."""
    if not name or name != name.strip():
        raise InputError(f"invalid identity name {name!r}: empty or with leading/trailing spaces")
    if len(name) > _MAX_NAME:
        raise InputError(f"identity name is {len(name)} characters; at most {_MAX_NAME}")
    if any(unicodedata.category(c).startswith("C") for c in name):
        raise InputError(f"invalid identity name {name!r}: control or unprintable characters")
    return name


class FaceRegistry:
    """Protected identities in the genseal database; safe to share between threads."""

    metadata: ClassVar[MetaData] = _Base.metadata
    """The store's tables, for schema comparison and revision autogenerate."""

    def __init__(self, database: Database | str, *, auto_upgrade: bool = True) -> None:
        self._tables = Tables(database, "protected-identity registry", auto_upgrade=auto_upgrade)
        self._transaction = self._tables.transaction
        self._lock = threading.Lock()
        self._snapshot: RegistrySnapshot | None = None
        self._ensure_state()

    validate_name = staticmethod(validate_name)

    @property
    def display(self) -> str:
        return self._tables.display

    def close(self) -> None:
        self._tables.close()

    def enroll(
        self,
        name: str,
        descriptors: Sequence[npt.ArrayLike],
        *,
        model: str,
        sources: Sequence[str],
        note: str | None = None,
    ) -> Enrollment:
        """Add descriptors (one per photo, `sources` their sha256) under `name`, atomically.

        An existing name gains the new photos; `note`, when given, replaces its note.
        """
        validate_name(name)
        if note is not None and len(note) > _MAX_NOTE:
            raise InputError(f"note is {len(note)} characters; at most {_MAX_NOTE}")
        if not descriptors or len(descriptors) != len(sources):
            raise InputError("enrolment needs one descriptor per photo, and at least one photo")
        blobs = [_encode(d) for d in descriptors]
        try:
            return self._enroll(name, blobs, model, sources, note)
        except StoreError as exc:
            if not isinstance(exc.__cause__, IntegrityError):
                raise
        # The same new name enrolled concurrently by another process: it exists now, so the
        # second attempt appends to it.
        return self._enroll(name, blobs, model, sources, note)

    def _enroll(
        self,
        name: str,
        blobs: Sequence[bytes],
        model: str,
        sources: Sequence[str],
        note: str | None,
    ) -> Enrollment:
        now = dt.datetime.now(dt.UTC)
        with self._transaction("enrol the identity") as session:
            row = session.get(_IdentityRow, name)
            if row is None:
                row = _IdentityRow(name=name, note=note, created_at=now, updated_at=now)
                session.add(row)
            elif note is not None:
                row.note = note
            known = set(
                session.scalars(
                    select(_DescriptorRow.source_sha256).where(
                        _DescriptorRow.name == name, _DescriptorRow.model == model
                    )
                )
            )
            added = 0
            for blob, source in zip(blobs, sources, strict=True):
                if source in known:
                    continue
                known.add(source)
                session.add(
                    _DescriptorRow(
                        name=name,
                        model=model,
                        descriptor=blob,
                        source_sha256=source,
                        created_at=now,
                    )
                )
                added += 1
            row.updated_at = now
            session.flush()
            self._bump(session)
            identity = self._identity(session, row)
        return Enrollment(identity=identity, added=added, duplicates=len(blobs) - added)

    def remove(self, name: str) -> None:
        """Forget a name and every descriptor enrolled under it."""
        with self._transaction("remove the identity") as session:
            row = session.get(_IdentityRow, name)
            if row is None:
                raise NotFoundError(f"no protected identity named {name!r}")
            session.execute(delete(_DescriptorRow).where(_DescriptorRow.name == name))
            session.delete(row)
            self._bump(session)

    def identities(self) -> list[EnrolledIdentity]:
        with self._transaction("list protected identities") as session:
            rows = session.scalars(select(_IdentityRow).order_by(_IdentityRow.name)).all()
            counts = dict(
                session.execute(
                    select(_DescriptorRow.name, func.count()).group_by(_DescriptorRow.name)
                ).all()
            )
            return [_to_identity(row, int(counts.get(row.name, 0))) for row in rows]

    def snapshot(self) -> RegistrySnapshot:
        """The enrolled descriptors, reloaded only when an enrolment or removal happened."""
        with self._transaction("read the protected-identity registry") as session:
            generation = session.scalar(
                select(_StateRow.generation).where(_StateRow.id == _STATE_ID)
            )
            current = self._snapshot
            if current is not None and current.generation == generation:
                return current
            rows = session.execute(
                select(_DescriptorRow.name, _DescriptorRow.model, _DescriptorRow.descriptor)
            ).all()
        snapshot = RegistrySnapshot(
            generation=int(generation or 0),
            names=tuple(r.name for r in rows),
            models=tuple(r.model for r in rows),
            descriptors=(
                np.stack([_decode(r.descriptor) for r in rows])
                if rows
                else np.zeros((0, _DIMENSIONS), dtype=np.float64)
            ),
        )
        with self._lock:
            self._snapshot = snapshot
        return snapshot

    # --- internals ----------------------------------------------------------------------------

    def _ensure_state(self) -> None:
        try:
            with self._transaction("initialise the protected-identity registry") as session:
                if session.get(_StateRow, _STATE_ID) is None:
                    session.add(_StateRow(id=_STATE_ID, generation=0))
        except StoreError as exc:
            if not isinstance(exc.__cause__, IntegrityError):  # another process made it first
                raise

    @staticmethod
    def _bump(session: Session) -> None:
        session.execute(
            update(_StateRow)
            .where(_StateRow.id == _STATE_ID)
            .values(generation=_StateRow.generation + 1)
        )

    @staticmethod
    def _identity(session: Session, row: _IdentityRow) -> EnrolledIdentity:
        count = session.scalar(
            select(func.count()).select_from(_DescriptorRow).where(_DescriptorRow.name == row.name)
        )
        return _to_identity(row, int(count or 0))


def _to_identity(row: _IdentityRow, photos: int) -> EnrolledIdentity:
    return EnrolledIdentity(
        name=row.name,
        note=row.note,
        photos=photos,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _encode(descriptor: npt.ArrayLike) -> bytes:
    vector = np.asarray(descriptor, dtype="<f4").reshape(-1)
    if vector.shape != (_DIMENSIONS,) or not np.isfinite(vector).all():
        raise InputError(f"a face descriptor must be {_DIMENSIONS} finite values")
    return vector.tobytes()


def _decode(blob: bytes) -> npt.NDArray[np.float64]:
    vector = np.frombuffer(blob, dtype="<f4")
    if vector.shape != (_DIMENSIONS,):
        raise StoreError(f"a stored face descriptor has {vector.size} values, not {_DIMENSIONS}")
    return vector.astype(np.float64)
