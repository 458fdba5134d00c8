"""Alembic's environment for genseal: runs the revisions on the connection ``genseal.db`` hands
it (in that connection's transaction, under the lock ``genseal.db`` took), or on an engine made
from ``sqlalchemy.url`` when run without one."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from genseal.migrations import include_name

config = context.config


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        # The models only for autogenerate, handed in by the caller (genseal.db.new_revision).
        target_metadata=config.attributes.get("target_metadata"),
        render_as_batch=True,  # ALTERs that SQLite lacks become table copies
        include_name=include_name,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _main() -> None:
    if context.is_offline_mode():
        raise RuntimeError("genseal's revisions inspect the database: run them online")
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    from genseal.db import make_engine

    engine = make_engine(config.get_main_option("sqlalchemy.url") or "")
    try:
        with engine.begin() as connection:
            _run(connection)
    finally:
        engine.dispose()


_main()
