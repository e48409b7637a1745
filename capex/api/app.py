"""The FastAPI application: routers, problem handlers, HTTP middleware, docs, web client."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import importlib.resources
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp

from capex import __version__
from capex.api import logs, problems
from capex.api.middleware import (
    BodyLimitMiddleware,
    BodyLimits,
    HeadAsGetMiddleware,
    SecurityHeadersMiddleware,
    content_security_policy,
    security_headers,
)
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
from capex.api.schemas.profiles import ProfileReplace, ProfileUpdate
from capex.config import Settings, SettingsError, get_settings
from capex.db import get_session_factory
from capex.services import maintenance
from capex.services.matches import MatchingService
from capex.web import routes as web_routes

API_PREFIX = "/api/v1"
DOCS_ASSETS = "/static/docs"
WEB_ASSETS = "/static/web"


class CapexAPI(FastAPI):
    """FastAPI with the security headers outside everything, the 500 handler included."""

    def build_middleware_stack(self) -> ASGIApp:
        headers = security_headers(self.state.settings.hsts_seconds)
        return SecurityHeadersMiddleware(super().build_middleware_stack(), headers)


def create_app(
    settings: Settings | None = None, session_factory: sessionmaker[Session] | None = None
) -> FastAPI:
    """Build the app; tests pass their own settings and session factory."""
    if settings is None:
        try:
            settings = get_settings()
        except SettingsError as error:
            # Say which variable is wrong, not a traceback, when a server loads the factory.
            raise SystemExit(f"capex: {error}") from None
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
    app.state.session_factory = session_factory or get_session_factory()
    app.state.matching = MatchingService(app.state.session_factory)
    problems.install(app)
    for module in (auth, me, matches, notifications, volunteers, skills, exchanges):
        app.include_router(module.router, prefix=API_PREFIX)
    app.include_router(ops.router)
    _serve_docs(app)
    app.include_router(web_routes.router)
    app.mount(WEB_ASSETS, StaticFiles(directory=web_routes.STATIC), name="web-assets")
    # The first added runs innermost: HEAD is answered as GET by the routes, the body
    # limits apply before any route reads, the log sees every answer, 413 included.
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
    _document_manual_bodies(app)
    return app


def _inline_hashes(html: str, tag: str) -> str:
    blocks = re.findall(rf"<{tag}>(.*?)</{tag}>", html, flags=re.DOTALL)
    digests = (base64.b64encode(hashlib.sha256(b.encode()).digest()).decode() for b in blocks)
    return " ".join(f"'sha256-{digest}'" for digest in digests)


def _serve_docs(app: FastAPI) -> None:
    # Swagger UI and ReDoc from the fastapi-offline package rather than a CDN: /docs works
    # with no internet, and the CSP needs no outside origin. Their pages keep FastAPI's small
    # inline start-up script and style, allowed by hash on those two pages only; ReDoc
    # also writes its styles into <style> elements at run time (styled-components), which
    # only 'unsafe-inline' allows: on /redoc, for styles, never for scripts.
    assets = Path(str(importlib.resources.files("fastapi_offline") / "static"))
    app.mount(DOCS_ASSETS, StaticFiles(directory=assets), name="docs-assets")
    title = app.title

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        page = get_swagger_ui_html(
            openapi_url="/openapi.json",
            title=f"{title}: API",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon.png",
            # The validator badge would send the schema to an outside service.
            swagger_ui_parameters={"validatorUrl": None, "persistAuthorization": False},
        )
        return _with_inline_hashes(page)

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        page = get_redoc_html(
            openapi_url="/openapi.json",
            title=f"{title}: API reference",
            redoc_js_url=f"{DOCS_ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{DOCS_ASSETS}/favicon.png",
            with_google_fonts=False,
        )
        return _with_inline_hashes(page, style_src="'unsafe-inline'")


def _with_inline_hashes(page: HTMLResponse, **extra: str) -> HTMLResponse:
    html = bytes(page.body).decode()
    if scripts := _inline_hashes(html, "script"):
        extra["script_src"] = scripts
    if "style_src" not in extra and (styles := _inline_hashes(html, "style")):
        extra["style_src"] = styles
    page.headers["Content-Security-Policy"] = content_security_policy(**extra)
    return page


def _document_manual_bodies(app: FastAPI) -> None:
    # The profile endpoints validate their body themselves (to name unknown skills in the
    # same 422); put those models into the OpenAPI components they reference.
    generate = app.openapi

    def openapi() -> dict[str, object]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = generate()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for model in (ProfileReplace, ProfileUpdate):
            document = model.model_json_schema(ref_template="#/components/schemas/{model}")
            components.update(document.pop("$defs", {}))
            components[model.__name__] = document
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
