"""genseal's Alembic migrations: one revision chain for every table genseal keeps.

Configured in code (``genseal.db``): no ``alembic.ini``. ``env.py`` runs on the connection it is
handed; ``versions/`` holds the revisions, each written against frozen table definitions of its
own, never against the models (which move on). The models' metadata, needed only to
autogenerate a revision or compare a database with them, is handed in by the caller (the layer
that knows every component) as ``config.attributes["target_metadata"]``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["SCRIPT_LOCATION", "TABLE_PREFIX", "include_name"]

SCRIPT_LOCATION = Path(__file__).resolve().parent
# Every table genseal keeps starts with this; other tables in a shared database are not ours.
TABLE_PREFIX = "genseal_"


def include_name(name: str | None, type_: str, _parents: Any) -> bool:
    """Compare only genseal's tables: a shared database may hold others."""
    return type_ != "table" or name is None or name.startswith(TABLE_PREFIX)
