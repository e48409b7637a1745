"""Write limits: every write counted per account and per client address, in the database.

A fixed window: time is cut into windows of ``CAPEX_WRITE_LIMIT_WINDOW_SECONDS`` from the
Unix epoch, the same cut on every host, and each subject (``account:<volunteer id>``,
``address:<client address>``) may make so many writes in one window. A write past a limit is
refused until its window ends, which is what ``Retry-After`` says. (A window allows a burst
of up to twice the limit across its boundary; that is the price of one row per subject and
window and of an exact ``Retry-After``.)

The counts live in ``write_counts``, one row per subject and window, raised by one atomic
``INSERT ... ON CONFLICT DO UPDATE ... RETURNING`` (SQLite and PostgreSQL alike), so that the
worker processes of one host and the hosts behind one proxy share them. Counting is a short
write transaction of its own that has committed before the request's own transaction begins:
on SQLite two write transactions of one request at once would wait for each other until the
lock timeout. A refused write rolls that transaction back: only accepted writes count, so an
account hammering past its limit does not use up its address's allowance.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from capex.config import Settings
from capex.db import session_scope
from capex.errors import WriteLimitReached
from capex.models import AccessToken, WriteCount
from capex.models.base import utcnow
from capex.services.accounts import hash_token
from capex.vocabulary import LimitScope

SUBJECT_LENGTH = 80


@dataclass(frozen=True)
class Window:
    """One window of the fixed cut: when it started and when it ends."""

    start: datetime
    end: datetime

    @classmethod
    def around(cls, moment: datetime, seconds: int) -> Window:
        epoch = int(moment.timestamp()) // seconds * seconds
        start = datetime.fromtimestamp(epoch, UTC)
        return cls(start, start + timedelta(seconds=seconds))

    def seconds_left(self, moment: datetime) -> int:
        """Whole seconds from ``moment`` until the window ends (at least 1)."""
        left = (self.end - moment).total_seconds()
        return max(1, int(left) + (0 if left.is_integer() else 1))


def limits_on(settings: Settings) -> bool:
    return bool(settings.write_limit_per_account or settings.write_limit_per_address)


def count_write(
    sessions: sessionmaker[Session],
    settings: Settings,
    *,
    token: str | None,
    address: str,
    now: datetime,
) -> None:
    """Count one write of ``token``'s volunteer (if it names one) and of ``address``.

    In a write transaction of its own, committed when this returns. Raises
    ``WriteLimitReached`` (429, nothing counted) when the write would pass either limit.
    """
    if not limits_on(settings):
        return
    window = Window.around(now, settings.write_limit_window_seconds)
    with session_scope(sessions, write=True) as session:
        if session.get_bind().dialect.name == "postgresql":
            # A count lost in a crash costs nothing; waiting for the WAL to reach the disk
            # would be most of what counting costs a write.
            session.execute(text("SET LOCAL synchronous_commit = off"))
        subjects: list[tuple[LimitScope, str, int]] = []
        if settings.write_limit_per_account and token:
            volunteer_id = _volunteer_of(session, settings, token)
            if volunteer_id is not None:
                limit = settings.write_limit_per_account
                subjects.append((LimitScope.ACCOUNT, f"account:{volunteer_id}", limit))
        if settings.write_limit_per_address:
            limit = settings.write_limit_per_address
            subjects.append((LimitScope.ADDRESS, f"address:{address}", limit))
        for scope, subject, limit in subjects:
            if _count(session, subject[:SUBJECT_LENGTH], window.start) > limit:
                # Raised inside the transaction: it rolls back, and nothing is counted.
                raise WriteLimitReached(
                    scope, limit, settings.write_limit_window_seconds, window.seconds_left(now)
                )


def _volunteer_of(session: Session, settings: Settings, token: str) -> int | None:
    """The volunteer a live token belongs to: many tokens of one volunteer share a count."""
    return session.scalar(
        select(AccessToken.volunteer_id).where(
            AccessToken.token_hash == hash_token(token, settings.secret_key),
            AccessToken.expires_at > utcnow(),
        )
    )


def _count(session: Session, subject: str, window_start: datetime) -> int:
    """Add one write to ``subject``'s count in the window; the count with it."""
    dialect = session.get_bind().dialect.name
    insert: Callable[..., Any] = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = (
        insert(WriteCount)
        .values(subject=subject, window_start=window_start, writes=1)
        .on_conflict_do_update(
            index_elements=[WriteCount.subject, WriteCount.window_start],
            set_={"writes": WriteCount.writes + 1},
        )
        .returning(WriteCount.writes)
    )
    return int(session.execute(statement).scalar_one())


def prune(session: Session, settings: Settings, now: datetime) -> int:
    """Drop the counts of windows that have ended; how many rows went."""
    current = Window.around(now, settings.write_limit_window_seconds)
    result = session.execute(delete(WriteCount).where(WriteCount.window_start < current.start))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
