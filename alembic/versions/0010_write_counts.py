"""write limits: writes counted per account or address per window

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 18:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import capex.models.base

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "write_counts",
        sa.Column("subject", sa.String(length=80), nullable=False),
        sa.Column("window_start", capex.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("writes", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("subject", "window_start", name=op.f("pk_write_counts")),
    )
    with op.batch_alter_table("write_counts") as batch_op:
        batch_op.create_index(batch_op.f("ix_write_counts_window_start"), ["window_start"])


def downgrade() -> None:
    with op.batch_alter_table("write_counts") as batch_op:
        batch_op.drop_index(batch_op.f("ix_write_counts_window_start"))
    op.drop_table("write_counts")
