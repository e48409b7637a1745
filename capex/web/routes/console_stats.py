"""The coordinators' console: stats pages (see docs/web.md)."""

from __future__ import annotations

from fastapi import APIRouter

from capex.web.pages import HtmlRoute

router = APIRouter(route_class=HtmlRoute)
