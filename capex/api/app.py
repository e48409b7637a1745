"""The FastAPI application: routers, problem handlers, access log, web client."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from capex import __version__
from capex.api import logs, openapi, problems
from capex.api.routes import (
    auth,
    exchanges,
    matches,
    me,
    notifications,
    ops,
    skills,
    volunteers,
)
from capex.config import Settings, get_settings
from capex.db import get_session_factory
from capex.services import maintenance
from capex.services.matches import MatchingService
from capex.web import routes as web_routes

API_PREFIX = "/api/v1"


def create_app(
    settings: Settings | None = None, session_factory: sessionmaker[Session] | None = None
) -> FastAPI:
    """Build the app; tests pass their own settings and session factory."""
    settings = settings or get_settings()
    logs.configure(settings.log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        tasks = []
        if app.state.settings.periodic_tasks:
            work = maintenance.run_all(app.state.session_factory, app.state.settings)
            tasks.append(asyncio.create_task(work))
        if app.state.settings.warm_matching_index:
            tasks.append(asyncio.create_task(run_in_threadpool(app.state.matching.index)))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    app = FastAPI(
        lifespan=lifespan,
        title="capex",
        version=__version__,
        summary="A capacity exchange: volunteers share skills, learn, and are matched.",
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.session_factory = session_factory or get_session_factory()
    app.state.matching = MatchingService(app.state.session_factory)
    problems.install(app)
    for module in (auth, me, matches, notifications, volunteers, skills, exchanges):
        app.include_router(module.router, prefix=API_PREFIX)
    app.include_router(ops.router)
    app.include_router(web_routes.router)
    app.add_middleware(logs.AccessLogMiddleware)
    openapi.install(app)
    return app
