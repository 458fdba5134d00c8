"""The review queue in the database (``genseal_reviews``), no longer files under GENSEAL_HOME.

Held images must be reviewable through any API replica whichever worker held them. Reviews an
earlier version kept as files are imported by ``ReviewStore.import_directory`` when the service
first opens the queue (the files live on a disk, not in this database).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04 19:51:15.392006
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "genseal_reviews",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("tenant", sa.String(length=128), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("record", sa.Text(), nullable=False),
        sa.Column("candidate", sa.LargeBinary(), nullable=True),
        sa.Column("ingredient", sa.LargeBinary(), nullable=True),
        sa.Column("sealed", sa.LargeBinary(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("genseal_reviews", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_genseal_reviews_created_at"), ["created_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_genseal_reviews_status"), ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_genseal_reviews_tenant"), ["tenant"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("genseal_reviews", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_genseal_reviews_tenant"))
        batch_op.drop_index(batch_op.f("ix_genseal_reviews_status"))
        batch_op.drop_index(batch_op.f("ix_genseal_reviews_created_at"))

    op.drop_table("genseal_reviews")
