"""Swagger UI at /docs and ReDoc at /redoc, from assets installed with the package."""

from __future__ import annotations

import base64
import hashlib
import importlib.resources
import re
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from capex.api.middleware import content_security_policy

DOCS_ASSETS = "/static/docs"


def _inline_hashes(html: str, tag: str) -> str:
    blocks = re.findall(rf"<{tag}>(.*?)</{tag}>", html, flags=re.DOTALL)
    digests = (base64.b64encode(hashlib.sha256(b.encode()).digest()).decode() for b in blocks)
    return " ".join(f"'sha256-{digest}'" for digest in digests)


def install(app: FastAPI) -> None:
    """Serve /docs and /redoc and their assets."""
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
