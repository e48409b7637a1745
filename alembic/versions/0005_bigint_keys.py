"""64-bit integer keys on PostgreSQL

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 11:10:00

The API publishes ids up to 2^63-1 (what SQLite's INTEGER holds). PostgreSQL's INTEGER
stops at 2^31-1, so a larger id in a path, a body or a cursor could not even be compared
with a key and was answered as unstorable (422) where SQLite said 404. Every integer key
and every foreign key to one becomes BIGINT, and so do the sequences behind the ids. SQLite
is left alone: its INTEGER is already 64-bit, and only INTEGER PRIMARY KEY is the rowid.
Each ALTER rewrites its table under an exclusive lock, quick at capex's sizes.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Each table's integer key columns (its own id first, where it has one).
KEY_COLUMNS: dict[str, tuple[str, ...]] = {
    "volunteers": ("id",),
    "access_tokens": ("id", "volunteer_id"),
    "login_failures": ("id",),
    "volunteer_languages": ("volunteer_id",),
    "availability_slots": ("id", "volunteer_id"),
    "skill_offers": ("volunteer_id",),
    "skill_wants": ("volunteer_id",),
    "exchanges": ("id", "learner_id", "mentor_id"),
    "exchange_events": ("id", "exchange_id", "actor_id"),
    "feedback": ("id", "exchange_id", "author_id", "subject_id"),
    "notifications": ("id", "volunteer_id", "exchange_id"),
    "idempotency_keys": ("id", "volunteer_id", "exchange_id"),
}


def _retype(sql_type: str) -> None:
    for table, columns in KEY_COLUMNS.items():
        changes = ", ".join(f"ALTER COLUMN {column} TYPE {sql_type}" for column in columns)
        op.execute(f"ALTER TABLE {table} {changes}")
        if columns[0] == "id":
            # A serial's sequence keeps its own type (and so its maximum) when the column
            # changes; pg_get_serial_sequence finds it whatever it was named.
            op.execute(
                f"DO $$ BEGIN EXECUTE format('ALTER SEQUENCE %s AS {sql_type}', "
                f"pg_get_serial_sequence('{table}', 'id')); END $$"
            )


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _retype("bigint")


def downgrade() -> None:
    # Fails, and changes nothing, if an id above 2^31-1 has been stored meanwhile.
    if op.get_bind().dialect.name == "postgresql":
        _retype("integer")
