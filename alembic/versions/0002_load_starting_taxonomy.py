"""load the starting skill taxonomy from capex/data/skills.json

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 13:40:00
"""

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib import resources

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The tables as they were at this revision: later model changes must not change this step.
skills = sa.table(
    "skills",
    sa.column("id", sa.String),
    sa.column("name", sa.String),
    sa.column("description", sa.Text),
    sa.column("parent_id", sa.String),
    sa.column("wikidata", sa.String),
    sa.column("created_at", sa.DateTime(timezone=True)),
    sa.column("updated_at", sa.DateTime(timezone=True)),
)
skill_aliases = sa.table(
    "skill_aliases",
    sa.column("skill_id", sa.String),
    sa.column("position", sa.Integer),
    sa.column("alias", sa.String),
)


def _starting_taxonomy() -> list[dict[str, object]]:
    text = (resources.files("capex") / "data" / "skills.json").read_text(encoding="utf-8")
    return json.loads(text)  # type: ignore[no-any-return]


def upgrade() -> None:
    conn = op.get_bind()
    existing = {row[0] for row in conn.execute(sa.select(skills.c.id))}
    now = datetime.now(UTC)
    rows = []
    aliases = []
    for entry in _starting_taxonomy():
        if entry["id"] in existing:
            continue
        rows.append(
            {
                "id": entry["id"],
                "name": entry["name"],
                "description": entry.get("description") or "",
                "parent_id": entry.get("parent"),
                "wikidata": entry.get("wikidata"),
                "created_at": now,
                "updated_at": now,
            }
        )
        for position, alias in enumerate(entry.get("aliases") or []):  # type: ignore[arg-type]
            aliases.append({"skill_id": entry["id"], "position": position, "alias": alias})
    if rows:
        op.bulk_insert(skills, rows)
    if aliases:
        op.bulk_insert(skill_aliases, aliases)


def downgrade() -> None:
    # Skills in use cannot be removed without losing profiles; the starting taxonomy stays
    # until 0001's downgrade drops the tables.
    pass
