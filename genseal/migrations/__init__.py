"""genseal's Alembic migrations: one revision chain for every table genseal keeps.

Configured in code (``genseal.db``): no ``alembic.ini``. ``env.py`` runs on the connection it is
handed; ``versions/`` holds the revisions, each written against frozen table definitions of its
own, never against the models (which move on).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import MetaData

__all__ = ["SCRIPT_LOCATION", "TABLE_PREFIX", "include_name", "target_metadata"]

SCRIPT_LOCATION = Path(__file__).resolve().parent
# Every table genseal keeps starts with this; other tables in a shared database are not ours.
TABLE_PREFIX = "genseal_"


def target_metadata() -> list[MetaData]:
    """The MetaData of every component's models, what head must equal (imports them all)."""
    from api._files import _Base as Files
    from api._jobs import _Base as Jobs
    from api._tenants import _Base as Tenants
    from gen._reviews import _Base as Reviews
    from provenance._store import _Base as Store
    from safety._bias_monitor import _Base as BiasMonitor
    from safety._face_registry import _Base as FaceRegistry

    bases = (Store, Jobs, Tenants, Files, BiasMonitor, FaceRegistry, Reviews)
    return [base.metadata for base in bases]


def include_name(name: str | None, type_: str, _parents: Any) -> bool:
    """Compare only genseal's tables: a shared database may hold others."""
    return type_ != "table" or name is None or name.startswith(TABLE_PREFIX)
