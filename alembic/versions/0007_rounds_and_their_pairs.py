"""rounds and their pairs: coordinators' matching rounds, kept as run, published once

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 17:04:53.285710
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import capex.models.base

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "rounds",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column(
            "created_by_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("created_at", capex.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("published_at", capex.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("skills", sa.JSON(), nullable=True),
        sa.Column("learner_ids", sa.JSON(), nullable=True),
        sa.Column("mentor_ids", sa.JSON(), nullable=True),
        sa.Column("min_score", sa.Float(), nullable=False),
        sa.Column("max_per_learner", sa.SmallInteger(), nullable=False),
        sa.Column("learners", sa.Integer(), nullable=False),
        sa.Column("matched", sa.Integer(), nullable=False),
        sa.Column("total_score", sa.Float(), nullable=False),
        sa.Column("mean_score", sa.Float(), nullable=True),
        sa.Column("mentor_load_gini", sa.Float(), nullable=True),
        sa.Column("blocking_pairs", sa.Integer(), nullable=False),
        sa.Column("unmatched_learner_ids", sa.JSON(), nullable=False),
        sa.CheckConstraint("mode IN ('optimal', 'stable')", name=op.f("ck_rounds_mode_known")),
        sa.CheckConstraint("status IN ('draft', 'published')", name=op.f("ck_rounds_status_known")),
        sa.CheckConstraint("max_per_learner >= 1", name=op.f("ck_rounds_max_per_learner_positive")),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["volunteers.id"],
            name=op.f("fk_rounds_created_by_id_volunteers"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rounds")),
    )
    op.create_table(
        "round_pairs",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("round_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "learner_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "mentor_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("skill_id", sa.String(length=64), nullable=False),
        sa.Column("wanted_skill_id", sa.String(length=64), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column(
            "exchange_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("not_published", sa.Text(), nullable=True),
        sa.CheckConstraint("learner_id <> mentor_id", name=op.f("ck_round_pairs_not_self")),
        sa.ForeignKeyConstraint(
            ["exchange_id"],
            ["exchanges.id"],
            name=op.f("fk_round_pairs_exchange_id_exchanges"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["learner_id"],
            ["volunteers.id"],
            name=op.f("fk_round_pairs_learner_id_volunteers"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["mentor_id"],
            ["volunteers.id"],
            name=op.f("fk_round_pairs_mentor_id_volunteers"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["round_id"],
            ["rounds.id"],
            name=op.f("fk_round_pairs_round_id_rounds"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["skill_id"],
            ["skills.id"],
            name=op.f("fk_round_pairs_skill_id_skills"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["wanted_skill_id"],
            ["skills.id"],
            name=op.f("fk_round_pairs_wanted_skill_id_skills"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_round_pairs")),
    )
    with op.batch_alter_table("round_pairs", schema=None) as batch_op:
        batch_op.create_index("ix_round_pairs_round_id", ["round_id", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("round_pairs", schema=None) as batch_op:
        batch_op.drop_index("ix_round_pairs_round_id")

    op.drop_table("round_pairs")
    op.drop_table("rounds")
