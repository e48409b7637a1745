"""index volunteers.updated_at for the matching index's change polling

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 14:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("volunteers", schema=None) as batch_op:
        batch_op.create_index("ix_volunteers_updated_at", ["updated_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("volunteers", schema=None) as batch_op:
        batch_op.drop_index("ix_volunteers_updated_at")
