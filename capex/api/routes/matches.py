"""Ranked mentors for what I want, or learners for what I offer."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from capex.api.deps import CurrentUser, MatchingDep, SessionDep
from capex.schemas.common import DEFAULT_LIMIT, MAX_LIMIT, Problem
from capex.schemas.matches import MatchList
from capex.schemas.skills import SkillId
from capex.services.profiles import volunteer_refs

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
        Literal["learner", "mentor"],
        Query(
            alias="as", description="learner: mentors for my wants; mentor: learners for my offers"
        ),
    ] = "learner",
    skill: Annotated[SkillId | None, Query(description="only this one of my skills")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> dict[str, Any]:
    """Ranked candidates, best first, each with the reasons for its score."""
    found = matching.matches(session, me, role=role, skill=skill, limit=limit)
    refs = volunteer_refs(session, (match.volunteer_id for match in found))
    return {
        "role": role,
        "items": [
            {
                "volunteer": refs[match.volunteer_id],
                "skill": match.skill,
                "score": match.score,
                "reasons": {
                    "skill_similarity": match.skill_similarity,
                    "level_fit": match.level_fit,
                    "overlap_minutes_per_week": match.overlap_minutes_per_week,
                    "shared_languages": list(match.shared_languages),
                    "wanted_skill": match.wanted_skill,
                },
            }
            for match in found
            if match.volunteer_id in refs
        ],
    }
