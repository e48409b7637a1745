"""Matches, explained: the ranked mentors (or learners) with their reasons in words, and why
there are so few and what would add more."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from starlette.responses import HTMLResponse

from capex.deps import MatchingDep, NowDep, SessionDep
from capex.schemas.common import SideWord
from capex.schemas.skills import SkillId
from capex.services.match_cards import matches_page
from capex.vocabulary import Side
from capex.web.pages import HtmlRoute, VisitDep
from capex.web.words import SKILL_LEVELS

router = APIRouter(route_class=HtmlRoute)


@router.get("/matches", response_class=HTMLResponse)
def matches(
    visit: VisitDep,
    session: SessionDep,
    matching: MatchingDep,
    now: NowDep,
    role: Annotated[SideWord, Query(alias="as")] = Side.LEARNER,
    skill: Annotated[SkillId | None, Query()] = None,
) -> HTMLResponse:
    """The ranked counterparts, each with its reasons, and the explanation of the count."""
    me = visit.signed_in
    page = matches_page(session, matching, me, side=role, skill=skill, limit=20, now=now)
    context = {"page": page, "levels": SKILL_LEVELS, "nav": "matches", "skill": skill}
    return visit.render("matches.html", context)
