"""The start page and the language switcher."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import HTMLResponse, RedirectResponse

from capex.deps import SessionDep
from capex.services import skills as skill_service
from capex.web import i18n, security
from capex.web.pages import FormDep, HtmlRoute, VisitDep

router = APIRouter(route_class=HtmlRoute)


@router.get("/", response_class=HTMLResponse)
def landing(visit: VisitDep, session: SessionDep) -> HTMLResponse:
    """The landing page: what capex is and where to start."""
    roots = skill_service.list_skills(session, parent="", limit=20)
    return visit.render("index.html", {"roots": roots})


@router.post("/language")
def choose_language(visit: VisitDep, session: SessionDep, form: FormDep) -> RedirectResponse:
    """Remember the language chosen (in a cookie, and on the profile when signed in)."""
    chosen = form.get("language")
    code = i18n.supported(chosen if isinstance(chosen, str) else None) or i18n.DEFAULT_LOCALE
    visit.cookies[security.LANGUAGE_COOKIE] = (code, security.YEAR_SECONDS)
    if visit.user is not None:
        visit.user.locale = code
    target = form.get("next")
    return visit.redirect(security.safe_next(target if isinstance(target, str) else None))
