"""Periodic housekeeping that every worker may run: idempotent, one short transaction."""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from capex.config import Settings
from capex.services import accounts

logger = logging.getLogger("capex.maintenance")


def run_once(session_factory: sessionmaker[Session], settings: Settings) -> int:
    """Drop expired tokens and sign-in failures that left the throttling window."""
    with session_factory() as session, session.begin():
        return accounts.purge_expired(session, settings)


async def run_forever(session_factory: sessionmaker[Session], settings: Settings) -> None:
    """Run :func:`run_once` every ``maintenance_interval_seconds`` until cancelled."""
    while True:
        await asyncio.sleep(settings.maintenance_interval_seconds)
        try:
            removed = await run_in_threadpool(run_once, session_factory, settings)
            logger.info('{"event": "maintenance", "removed": %d}', removed)
        except Exception:  # a failed round must not stop the next one
            logger.exception("maintenance failed")
