"""Writing the demo population: Core bulk inserts of ``generate``'s rows, in batches."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, insert, select, text
from sqlalchemy.orm import Session

from capex.demo.rows import TABLES, generate
from capex.errors import Conflict, Invalid
from capex.models import Skill, Volunteer
from capex.models.base import utcnow
from capex.services.accounts import hash_password

DEFAULT_DEMO_PASSWORD = "capex-demo-2026"

_DEMO_USERNAME = re.compile(r"demo([1-9][0-9]*)")
_TABLES = tuple(Volunteer.metadata.tables[name] for name in TABLES)


@dataclass(frozen=True, slots=True)
class DemoResult:
    created: int
    first_id: int
    last_id: int
    seconds: float


def populate(
    session: Session,
    *,
    volunteers: int,
    seed: int = 1,
    password: str = DEFAULT_DEMO_PASSWORD,
    progress: Callable[[int], None] | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> DemoResult:
    """Write volunteers ``demo1`` .. ``demo{volunteers}``, all signing in with ``password``.

    The same ``seed`` and ``volunteers`` give the same population (dates relative to
    ``clock()``). ``progress`` is called with the number of volunteers written so far, after
    each batch. Raises ``Conflict`` when any of these usernames exists. Flushes but does not
    commit: the caller does.
    """
    started = time.perf_counter()
    if volunteers < 1:
        raise Invalid("the number of demo volunteers must be at least 1")
    session.flush()
    _refuse_existing(session, volunteers)
    skills = session.execute(select(Skill.id, Skill.parent_id, Skill.name).order_by(Skill.id)).all()
    if not skills:
        raise Invalid("the skill taxonomy is empty; run the migrations first")

    first_id = _reserve_ids(session, volunteers)
    for stop, batch in generate(
        [(row.id, row.parent_id, row.name) for row in skills],
        volunteers=volunteers,
        seed=seed,
        first_id=first_id,
        password_hash=hash_password(password),
        clock=clock,
    ):
        for table, rows in zip(_TABLES, batch, strict=True):
            if rows:
                session.execute(insert(table), rows)
        if progress is not None:
            progress(stop)
    session.flush()
    return DemoResult(
        created=volunteers,
        first_id=first_id,
        last_id=first_id + volunteers - 1,
        seconds=time.perf_counter() - started,
    )


def _refuse_existing(session: Session, count: int) -> None:
    taken = [
        int(match.group(1))
        for key in session.scalars(
            select(Volunteer.username_key).where(Volunteer.username_key.like("demo%"))
        )
        if (match := _DEMO_USERNAME.fullmatch(key)) and int(match.group(1)) <= count
    ]
    if taken:
        raise Conflict(f"demo volunteers already exist (demo{min(taken)}); use a fresh database")


def _reserve_ids(session: Session, count: int) -> int:
    """The first of ``count`` consecutive free volunteer ids, given explicitly on insert.

    On PostgreSQL the block is also taken from the id sequence, so that accounts registered
    afterwards (or meanwhile) get ids after it.
    """
    max_id = session.scalar(select(func.max(Volunteer.id))) or 0
    if session.get_bind().dialect.name != "postgresql":
        return max_id + 1
    sequence = "pg_get_serial_sequence('volunteers', 'id')"
    next_value = session.scalar(text(f"SELECT nextval({sequence})")) or 1
    first_id = max(max_id + 1, int(next_value))
    session.execute(text(f"SELECT setval({sequence}, :last)"), {"last": first_id + count - 1})
    return first_id
