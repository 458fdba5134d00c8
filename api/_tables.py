"""Every table genseal keeps, gathered where every component is known: the models that the
schema at head must equal (``genseal db revision`` and the migration tests compare them)."""

from __future__ import annotations

from sqlalchemy import MetaData

from api._files import ImageFiles
from api.jobs._store import JobStore
from api.tenants._store import TenantStore
from gen import ReviewStore
from provenance import ManifestStore
from safety import BiasMonitor, FaceRegistry

__all__ = ["model_metadata"]


def model_metadata() -> list[MetaData]:
    """The table metadata of every store genseal has."""
    stores = (
        ManifestStore,
        JobStore,
        TenantStore,
        ImageFiles,
        BiasMonitor,
        FaceRegistry,
        ReviewStore,
    )
    return [store.metadata for store in stores]
