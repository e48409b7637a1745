"""index exchanges.updated_at and feedback.created_at for the statistics snapshot's refresh

The snapshot (capex.services.stats_snapshot) rereads the exchanges and the feedback that
changed since its last look, every half of CAPEX_STATS_MAX_AGE_SECONDS in every server
process; without these indexes each look scans both tables.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 17:10:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("exchanges", schema=None) as batch_op:
        batch_op.create_index("ix_exchanges_updated_at", ["updated_at"], unique=False)
    with op.batch_alter_table("feedback", schema=None) as batch_op:
        batch_op.create_index("ix_feedback_created_at", ["created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("feedback", schema=None) as batch_op:
        batch_op.drop_index("ix_feedback_created_at")
    with op.batch_alter_table("exchanges", schema=None) as batch_op:
        batch_op.drop_index("ix_exchanges_updated_at")
