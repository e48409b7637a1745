"""Ranked mentors for what I want, or learners for what I offer."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from capex.api.deps import CurrentUser, MatchingDep, SessionDep
from capex.schemas.common import DEFAULT_LIMIT, MAX_LIMIT, Problem, SideWord
from capex.schemas.matches import MatchList, MatchRead, SkillExplainRead
from capex.schemas.skills import SkillId
from capex.services.matches import explained_matches
from capex.vocabulary import Side

router = APIRouter(tags=["matching"])


@router.get(
    "/me/matches",
    response_model=MatchList,
    responses={401: {"model": Problem}, 422: {"model": Problem}},
)
def my_matches(
    me: CurrentUser,
    session: SessionDep,
    matching: MatchingDep,
    role: Annotated[
        SideWord,
        Query(
            alias="as", description="learner: mentors for my wants; mentor: learners for my offers"
        ),
    ] = Side.LEARNER,
    skill: Annotated[SkillId | None, Query(description="only this one of my skills")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> MatchList:
    """Ranked candidates, best first, each with the reasons for its score, and why not more."""
    found = explained_matches(session, matching, me, side=role, skill=skill, limit=limit)
    return MatchList(
        role=role,
        items=[MatchRead.model_validate(view) for view in found.items],
        explain=[SkillExplainRead.model_validate(item) for item in found.explain],
    )
