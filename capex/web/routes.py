"""Pages of the web client."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from capex import __version__
from capex.deps import SessionDep
from capex.services import skills as skill_service

STATIC = Path(__file__).parent / "static"
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
def landing(request: Request, session: SessionDep) -> HTMLResponse:
    """The landing page: what capex is and where to start."""
    roots = skill_service.list_skills(session, parent="", limit=20)
    return templates.TemplateResponse(
        request, "index.html", {"roots": roots, "version": __version__}
    )
