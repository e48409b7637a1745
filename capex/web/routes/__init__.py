"""The pages of the web client, one module per area, over the same services as the API."""

from __future__ import annotations

from fastapi import APIRouter

from capex.web.pages import STATIC
from capex.web.routes import (
    account,
    console_rounds,
    console_stats,
    console_taxonomy,
    exchanges,
    inbox,
    matches,
    profile,
    public,
)

__all__ = ["STATIC", "router"]

router = APIRouter(include_in_schema=False)
for module in (
    public,
    account,
    matches,
    profile,
    exchanges,
    inbox,
    console_stats,
    console_rounds,
    console_taxonomy,
):
    router.include_router(module.router)
