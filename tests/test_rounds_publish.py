"""Publishing a round: each pair checked again, the ones that hold become requests, once."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from capex.config import Settings
from capex.errors import Conflict
from capex.models import Exchange, Notification, Round, RoundPair, Volunteer
from capex.services import accounts, exchanges, rounds
from capex.vocabulary import (
    ExchangeAction,
    ExchangeState,
    NotificationKind,
    Origin,
    RoundMode,
    RoundStatus,
)
from tests.factories import make_volunteer

LUA = [{"skill": "lua", "level": 3}]
REASONS = {
    "skill_similarity": 1.0,
    "level_fit": 1.0,
    "overlap_minutes_per_week": None,
    "shared_languages": ["en"],
    "wanted_skill": "lua",
}


def a_round(session: Session, pairs: list[tuple[Volunteer, Volunteer, float]]) -> Round:
    """A draft round holding these (learner, mentor, score) pairs for Lua, as run."""
    row = Round(name="2027 Lua cohort", mode=RoundMode.OPTIMAL, learners=len(pairs))
    session.add(row)
    session.flush()
    for learner, mentor, score in pairs:
        session.add(
            RoundPair(
                round_id=row.id,
                learner_id=learner.id,
                mentor_id=mentor.id,
                skill_id="lua",
                wanted_skill_id="lua",
                score=score,
                reasons=REASONS,
            )
        )
    session.commit()
    return row


def test_publishing_makes_each_pair_a_request_from_the_round(session, settings):
    mentor = make_volunteer(session, "mentor", offers=LUA, mentor_capacity=2)
    learners = [make_volunteer(session, f"learner{n}", wants=LUA) for n in range(2)]
    row = a_round(session, [(learners[0], mentor, 0.9), (learners[1], mentor, 0.8)])

    result = rounds.publish(session, settings, row.id)
    session.commit()

    assert (result.published, result.not_published) == (2, 0)
    assert result.round.status == RoundStatus.PUBLISHED
    assert result.round.published_at is not None
    made = list(session.scalars(select(Exchange).order_by(Exchange.id)))
    assert [(e.learner_id, e.mentor_id, e.state, e.origin) for e in made] == [
        (learners[0].id, mentor.id, ExchangeState.REQUESTED, Origin.ROUND),
        (learners[1].id, mentor.id, ExchangeState.REQUESTED, Origin.ROUND),
    ]
    assert [pair.exchange_id for pair in result.round.pairs] == [e.id for e in made]
    assert all("2027 Lua cohort" in e.message for e in made)
    # The mentor finds both requests in the inbox.
    kinds = session.scalars(
        select(Notification.kind).where(Notification.volunteer_id == mentor.id)
    ).all()
    assert kinds.count(NotificationKind.EXCHANGE_REQUESTED) == 2


def test_a_second_publish_is_a_conflict_and_changes_nothing(session, settings):
    mentor = make_volunteer(session, "mentor", offers=LUA)
    learner = make_volunteer(session, "learner", wants=LUA)
    row = a_round(session, [(learner, mentor, 0.9)])
    rounds.publish(session, settings, row.id)
    session.commit()

    with pytest.raises(Conflict, match="already published"):
        rounds.publish(session, settings, row.id)
    session.rollback()
    assert session.scalar(select(Exchange.id).where(Exchange.origin == Origin.ROUND)) is not None
    assert len(session.scalars(select(Exchange)).all()) == 1


def test_pairs_that_no_longer_hold_are_reported_and_the_rest_published(session, settings):
    full = make_volunteer(session, "full", offers=LUA, mentor_capacity=1)
    busy = make_volunteer(session, "busy", offers=LUA, mentor_capacity=2)
    leaving = make_volunteer(session, "leaving", offers=LUA)
    learners = [make_volunteer(session, f"learner{n}", wants=LUA) for n in range(5)]
    row = a_round(
        session,
        [
            (learners[0], full, 0.9),
            (learners[1], busy, 0.9),
            (learners[2], busy, 0.8),
            (learners[3], leaving, 0.7),
            (learners[4], busy, 0.6),
        ],
    )
    # After the round ran: the full mentor accepted someone else, the busy one too, and one
    # mentor left.
    other = make_volunteer(session, "other", wants=LUA)
    for mentor in (full, busy):
        asked = exchanges.request(session, settings, other, mentor_id=mentor.id, skill="lua")
        exchanges.act(session, settings, asked.exchange.id, ExchangeAction.ACCEPT, mentor)
    accounts.deactivate(session, settings, leaving)
    session.commit()

    result = rounds.publish(session, settings, row.id)
    session.commit()

    reasons = {pair.learner.username: pair.not_published for pair in result.round.pairs}
    assert "no open slot" in (reasons["learner0"] or "")
    assert reasons["learner1"] is None  # busy has one slot left: the better pair takes it
    assert "no open slot" in (reasons["learner2"] or "")
    assert reasons["learner3"] == "the mentor has left"
    assert "no open slot" in (reasons["learner4"] or "")
    assert (result.published, result.not_published) == (1, 4)
    published = session.scalars(select(Exchange).where(Exchange.origin == Origin.ROUND)).all()
    assert [(e.learner_id, e.mentor_id) for e in published] == [(learners[1].id, busy.id)]


def test_a_pair_already_asked_for_is_reported_not_doubled(session, settings):
    mentor = make_volunteer(session, "mentor", offers=LUA, mentor_capacity=3)
    learner = make_volunteer(session, "learner", wants=LUA)
    exchanges.request(session, settings, learner, mentor_id=mentor.id, skill="lua")
    row = a_round(session, [(learner, mentor, 0.9)])

    result = rounds.publish(session, settings, row.id)
    session.commit()

    (pair,) = result.round.pairs
    assert pair.exchange_id is None
    assert "open" in (pair.not_published or "")
    assert len(session.scalars(select(Exchange)).all()) == 1


def test_publishing_an_unknown_round_is_not_found(session, settings):
    from capex.errors import NotFound

    with pytest.raises(NotFound):
        rounds.publish(session, settings, 424242)


def test_settings_are_used_for_the_learners_request_limit(session, settings: Settings):
    mentor = make_volunteer(session, "mentor", offers=LUA, mentor_capacity=5)
    learner = make_volunteer(session, "learner", wants=LUA)
    others = [
        make_volunteer(session, f"m{n}", offers=LUA, mentor_capacity=1)
        for n in range(settings.max_open_requests)
    ]
    for other in others:
        exchanges.request(session, settings, learner, mentor_id=other.id, skill="lua")
    row = a_round(session, [(learner, mentor, 0.9)])

    result = rounds.publish(session, settings, row.id)

    (pair,) = result.round.pairs
    assert pair.exchange_id is None
    assert str(settings.max_open_requests) in (pair.not_published or "")
