"""matching: PostgreSQL notifies the servers of every change to volunteers and skills

Statement-level triggers send one notification on the channel ``capex_matching`` per
statement (PostgreSQL folds the same notification sent twice in one transaction into one,
and delivers it only at commit), so each server's matching index catches up as soon as a
change is committed instead of polling. SQLite has no notifications: its servers poll.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 18:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = {"volunteers": "INSERT OR UPDATE OR DELETE", "skills": "INSERT OR UPDATE OR DELETE"}


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        """
        CREATE FUNCTION capex_notify_matching() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('capex_matching', TG_TABLE_NAME);
            RETURN NULL;
        END
        $$
        """
    )
    for table, events in TABLES.items():
        op.execute(
            f"CREATE TRIGGER {table}_notify_matching AFTER {events} ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION capex_notify_matching()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:
        op.execute(f"DROP TRIGGER {table}_notify_matching ON {table}")
    op.execute("DROP FUNCTION capex_notify_matching()")
