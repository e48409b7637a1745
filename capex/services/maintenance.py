"""Periodic work that every server process runs: idempotent, in short transactions."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from sqlalchemy.orm import Session, sessionmaker

from capex.config import Settings
from capex.db import log_failure
from capex.models.base import utcnow
from capex.services import accounts, exchanges, notifications, write_limits

logger = logging.getLogger("capex.maintenance")
EXPIRY_BATCH = 500


def run_once(session_factory: sessionmaker[Session], settings: Settings) -> int:
    """Drop expired tokens, sign-in failures that left the throttling window and the write
    counts of windows that ended."""
    with session_factory() as session, session.begin():
        purged = accounts.purge_expired(session, settings)
        return purged + write_limits.prune(session, settings, utcnow())


def expire_requests(session_factory: sessionmaker[Session], settings: Settings) -> int:
    """Write ``expired`` on every request unanswered for ``request_ttl_days``."""
    total = 0
    while True:
        with session_factory() as session, session.begin():
            done = exchanges.expire_stale(session, settings, limit=EXPIRY_BATCH)
        total += done
        if done < EXPIRY_BATCH:
            return total


async def _every(seconds: float, name: str, work: Callable[[], int]) -> None:
    while True:
        await asyncio.sleep(seconds)
        try:
            done = await asyncio.to_thread(work)
            if done:
                logger.info('{"event": "%s", "count": %d}', name, done)
        except Exception as error:  # a failed round must not stop the next one
            log_failure(logger, f"{name} failed", error)


async def run_all(session_factory: sessionmaker[Session], settings: Settings) -> None:
    """Every periodic task of a server process, until cancelled."""
    await asyncio.gather(
        _every(
            settings.maintenance_interval_seconds,
            "housekeeping",
            lambda: run_once(session_factory, settings),
        ),
        _every(
            min(settings.maintenance_interval_seconds, 300),
            "requests_expired",
            lambda: expire_requests(session_factory, settings),
        ),
        _every(
            settings.mail_interval_seconds,
            "mail_sent",
            lambda: notifications.deliver_pending(session_factory, settings),
        ),
    )
