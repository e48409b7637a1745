"""The FastAPI application: routers, problem handlers, HTTP middleware, docs, web client."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker
from starlette.types import ASGIApp

from capex import __version__
from capex.api import docs_pages, logs, openapi, problems
from capex.api.middleware import (
    BodyLimitMiddleware,
    BodyLimits,
    HeadAsGetMiddleware,
    SecurityHeadersMiddleware,
    WriteLimitMiddleware,
    security_headers,
)
from capex.api.routes import (
    auth,
    exchanges,
    matches,
    me,
    notifications,
    ops,
    rounds,
    skills,
    stats,
    swaps,
    volunteers,
)
from capex.config import Settings, SettingsError, get_settings
from capex.db import engine_for, make_session_factory
from capex.deps import Clock
from capex.models.base import utcnow
from capex.services import accounts, maintenance
from capex.services.matches import GenerationBuilder, MatchingService
from capex.services.matching_index import Generations, postgres_dsn
from capex.services.stats_snapshot import StatsIndex
from capex.web import routes as web_routes

API_PREFIX = "/api/v1"
WEB_ASSETS = "/static/web"


class CapexAPI(FastAPI):
    """FastAPI with the security headers outside everything, the 500 handler included."""

    def build_middleware_stack(self) -> ASGIApp:
        headers = security_headers(self.state.settings.hsts_seconds)
        return SecurityHeadersMiddleware(super().build_middleware_stack(), headers)


def matching_service(
    settings: Settings, session_factory: sessionmaker[Session], *, own_engine: bool
) -> MatchingService:
    """The app's matching service: shared with the host's other workers through
    ``matching_index_dir`` and woken by PostgreSQL's notifications, when the app has an
    engine of its own (the tests' shared connection sees neither)."""
    generations = None
    listen_dsn = None
    if own_engine:
        if settings.matching_index_dir is not None:
            generations = Generations(
                settings.matching_index_dir,
                build=GenerationBuilder(session_factory, settings.database_url),
            )
        if settings.matching_listen:
            listen_dsn = postgres_dsn(settings.database_url)
    return MatchingService(
        session_factory,
        wait_for_first_build=not settings.warm_matching_index,
        generations=generations,
        listen_dsn=listen_dsn,
        retry_after_seconds=settings.db_retry_after_seconds,
    )


def create_app(
    settings: Settings | None = None,
    session_factory: sessionmaker[Session] | None = None,
    clock: Clock = utcnow,
) -> FastAPI:
    """Build the app on the database ``settings`` name (default: the CAPEX_* variables).

    Given a ``session_factory`` (the tests'), the app uses it instead and leaves its engine
    alone; otherwise the app makes an engine of its own and disposes it at shutdown.
    ``clock`` tells the routes that take the time of the request (``NowDep``) what it is.
    """
    if settings is None:
        try:
            settings = get_settings()
        except SettingsError as error:
            # Say which variable is wrong, not a traceback, when a server loads the factory.
            raise SystemExit(f"capex: {error}") from None
    logs.configure(settings.log_level)
    accounts.limit_concurrent_hashes(
        settings.password_hash_slots, settings.password_hash_wait_seconds
    )
    engine: Engine | None = None
    if session_factory is None:
        engine = engine_for(settings)
        session_factory = make_session_factory(engine)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        tasks = []
        if app.state.settings.periodic_tasks:
            work = maintenance.run_all(app.state.session_factory, app.state.settings)
            tasks.append(asyncio.create_task(work))
        if app.state.settings.warm_matching_index:
            # Starts the first build (or maps the host's index) without waiting for it.
            await asyncio.to_thread(app.state.matching.start)
        if app.state.settings.periodic_tasks:
            # The statistics snapshot: built now, then refreshed within its maximum age.
            app.state.stats.start()
        try:
            yield
        finally:
            await asyncio.to_thread(app.state.stats.stop)
            await asyncio.to_thread(app.state.matching.stop)
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            if engine is not None:
                engine.dispose()

    app = CapexAPI(
        lifespan=lifespan,
        title="capex",
        version=__version__,
        summary="A capacity exchange: volunteers share skills, learn, and are matched.",
        openapi_url="/openapi.json",
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.session_factory = session_factory
    app.state.clock = clock
    app.state.matching = matching_service(settings, session_factory, own_engine=engine is not None)
    app.state.stats = StatsIndex(
        app.state.session_factory, settings, max_age_seconds=settings.stats_max_age_seconds
    )
    problems.install(app)
    for module in (
        auth,
        me,
        matches,
        notifications,
        volunteers,
        skills,
        exchanges,
        stats,
        rounds,
        swaps,
    ):
        app.include_router(module.router, prefix=API_PREFIX)
    app.include_router(ops.router)
    docs_pages.install(app)
    app.include_router(web_routes.router)
    app.mount(WEB_ASSETS, StaticFiles(directory=web_routes.STATIC), name="web-assets")
    # The first added runs innermost: a write is counted against its limits once its body
    # is read (and within the bounds), an unexpected error is answered 500 there as any
    # other answer, HEAD is answered as GET by the routes, the body limits apply before any
    # route reads, the log sees every answer, 413 and 429 included.
    app.add_middleware(WriteLimitMiddleware, api_prefix=API_PREFIX)
    app.add_middleware(problems.UnexpectedErrorMiddleware)
    app.add_middleware(HeadAsGetMiddleware)
    app.add_middleware(BodyLimitMiddleware, limits=BodyLimits(max_bytes=settings.max_body_bytes))
    app.add_middleware(logs.AccessLogMiddleware)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key"],
            expose_headers=["Retry-After", "Idempotent-Replayed", "X-Capex-Worker"],
            max_age=600,
        )
    openapi.install(app)
    return app
