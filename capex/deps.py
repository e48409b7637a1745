"""What both front doors need from a request: the settings, the session, the matching
service, paging. The JSON door adds bearer-token auth (``capex.api.deps``); the web door
its own sign-in. Both import from here, so neither imports the other."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, Path, Query, Request
from sqlalchemy.orm import Session, sessionmaker

from capex.config import Settings
from capex.db import session_scope
from capex.schemas.common import DEFAULT_LIMIT, MAX_ID, MAX_LIMIT, cursor_position
from capex.services.matches import MatchingService
from capex.services.stats import StatsSource

# An integer id in a path; out of range it is simply not found.
IdPath = Annotated[int, Path(ge=1, le=MAX_ID)]


# Dependencies that do no I/O are async: FastAPI runs them on the event loop instead of
# handing each to the thread pool (a hop per dependency per request).
async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_settings)]

Clock = Callable[[], datetime]


async def get_now(request: Request) -> datetime:
    """The time of the request, read once from the app's clock (tests give a fixed one)."""
    clock: Clock = request.app.state.clock
    return clock()


NowDep = Annotated[datetime, Depends(get_now)]


async def get_session_factory(request: Request) -> sessionmaker[Session]:
    factory: sessionmaker[Session] = request.app.state.session_factory
    return factory


# For work that runs transactions of its own (sign-in, readiness), not the request's one.
SessionFactoryDep = Annotated[sessionmaker[Session], Depends(get_session_factory)]


def get_session(request: Request) -> Iterator[Session]:
    """One request, one transaction: commit when the endpoint returns, else roll back."""
    factory: sessionmaker[Session] = request.app.state.session_factory
    # A request that may write takes SQLite's write lock from the start (see session_scope).
    writes = request.method not in ("GET", "HEAD", "OPTIONS")
    with session_scope(factory, write=writes) as session:
        yield session


# scope="function": the commit happens before the response is sent, so a client that
# reads right after a write sees it.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


async def get_matching(request: Request) -> MatchingService:
    matching: MatchingService = request.app.state.matching
    return matching


MatchingDep = Annotated[MatchingService, Depends(get_matching)]


async def get_stats(request: Request) -> StatsSource:
    source: StatsSource = request.app.state.stats
    return source


StatsDep = Annotated[StatsSource, Depends(get_stats)]


@dataclass(frozen=True)
class PageRequest:
    """Which page of a list: at most ``limit`` items after the position ``cursor`` holds."""

    limit: int
    cursor: str | None

    def position(self, key: str, kind: type[int] | type[str]) -> Any:
        """The ``key`` the cursor holds (None on the first page); 422 for a foreign cursor."""
        return cursor_position(self.cursor, key, kind)


async def get_page_request(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> PageRequest:
    return PageRequest(limit=limit, cursor=cursor)


PageDep = Annotated[PageRequest, Depends(get_page_request)]
