"""exchange messages: the thread between an exchange's learner and mentor

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 19:45:00

Notifications of the new kind ``message_received`` need no schema change: ``notifications.kind``
is a VARCHAR(32) without a check constraint (the ORM type refuses an unknown word).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import capex.models.base

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEY = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "exchange_messages",
        sa.Column("id", KEY, nullable=False),
        sa.Column("exchange_id", KEY, nullable=False),
        sa.Column("author_id", KEY, nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", capex.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["author_id"],
            ["volunteers.id"],
            name=op.f("fk_exchange_messages_author_id_volunteers"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["exchange_id"],
            ["exchanges.id"],
            name=op.f("fk_exchange_messages_exchange_id_exchanges"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_exchange_messages")),
    )
    with op.batch_alter_table("exchange_messages", schema=None) as batch_op:
        batch_op.create_index(
            "ix_exchange_messages_exchange_id", ["exchange_id", "id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("exchange_messages", schema=None) as batch_op:
        batch_op.drop_index("ix_exchange_messages_exchange_id")

    op.drop_table("exchange_messages")
