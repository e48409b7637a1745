"""Matching rounds for a cohort: run, review, publish (coordinators)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, status

from capex.api.deps import Coordinator, IdPath, MatchingDep, PageDep, SessionDep, SettingsDep
from capex.schemas.common import Page, Problem, encode_cursor
from capex.schemas.rounds import PublishedRead, RoundCreate, RoundRead, RoundSummary
from capex.services import rounds

router = APIRouter(prefix="/rounds", tags=["rounds"])

_errors: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem},
    403: {"model": Problem},
    404: {"model": Problem},
    422: {"model": Problem},
}


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=RoundRead,
    responses={**_errors, 409: {"model": Problem}},
)
def run_round(
    data: RoundCreate,
    coordinator: Coordinator,
    session: SessionDep,
    settings: SettingsDep,
    matching: MatchingDep,
) -> RoundRead:
    """Pair a cohort's learners with mentors at once, and keep the round as a draft."""
    return RoundRead.model_validate(rounds.run(session, matching, coordinator, data))


@router.get("", response_model=Page[RoundSummary], responses=_errors)
def list_rounds(_coordinator: Coordinator, session: SessionDep, page: PageDep) -> Any:
    """Rounds, newest first, with their metrics."""
    found = rounds.list_rounds(session, before=page.position("id", int), limit=page.limit + 1)
    shown = found[: page.limit]
    return Page[RoundSummary](
        items=[RoundSummary.model_validate(row) for row in shown],
        next_cursor=encode_cursor({"id": shown[-1].id}) if len(found) > page.limit else None,
    )


@router.get("/{round_id}", response_model=RoundRead, responses=_errors)
def read_round(round_id: IdPath, _coordinator: Coordinator, session: SessionDep) -> RoundRead:
    """One round: its pairs with their reasons, the learners it left, its metrics."""
    return RoundRead.model_validate(rounds.read_round(session, round_id))


@router.post(
    "/{round_id}/publish",
    response_model=PublishedRead,
    responses={**_errors, 409: {"model": Problem}},
)
def publish_round(
    round_id: IdPath, _coordinator: Coordinator, session: SessionDep, settings: SettingsDep
) -> PublishedRead:
    """Turn every pair that still holds into a request (`origin: "round"`); once."""
    return PublishedRead.model_validate(rounds.publish(session, settings, round_id))
