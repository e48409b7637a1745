"""Skill-swap rings: my own, and the best disjoint set for coordinators."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from capex.api.deps import Coordinator, CurrentUser, MatchingDep, SessionDep
from capex.schemas.common import Problem
from capex.schemas.rounds import RingList, RingRead, RingSetRead
from capex.services import swaps

router = APIRouter(tags=["rounds"])

_errors: dict[int | str, dict[str, Any]] = {401: {"model": Problem}, 422: {"model": Problem}}
MaxLength = Annotated[int, Query(ge=2, le=3, description="rings of two, or of two and three")]


@router.get("/me/swaps", response_model=RingList, responses=_errors)
def my_swaps(
    me: CurrentUser,
    session: SessionDep,
    matching: MatchingDep,
    max_length: MaxLength = 3,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> RingList:
    """The skill-swap rings I am in, best first: each member teaches the next."""
    rings = swaps.my_rings(session, matching, me, max_length=max_length, limit=limit)
    return RingList(items=[RingRead.model_validate(ring) for ring in rings])


@router.get("/swaps", response_model=RingSetRead, responses={**_errors, 403: {"model": Problem}})
def all_swaps(
    _coordinator: Coordinator,
    session: SessionDep,
    matching: MatchingDep,
    max_length: MaxLength = 3,
) -> RingSetRead:
    """Disjoint rings over everyone who can swap, with the greatest total score."""
    return RingSetRead.model_validate(swaps.best_rings(session, matching, max_length=max_length))
