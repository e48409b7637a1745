"""StatsIndex on both databases: the snapshot follows the database after a refresh, an
answer is never older than ``max_age_seconds``, and its figures are those of its ``as_of``.

That every answer equals the reference on random histories is checked in test_stats.py,
for StatsIndex as for the SQL answers; here each change is also checked against a
snapshot built afresh, so that an incremental refresh is seen to equal a full build.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from capex import migrate
from capex.config import Settings
from capex.db import open_database, session_scope
from capex.errors import CapexError, Invalid
from capex.models import Exchange, SkillOffer, Volunteer
from capex.models.base import utcnow
from capex.schemas.profiles import ProfileUpdate
from capex.services import accounts, exchanges, profiles, stats_snapshot
from capex.services.stats import StatsFilter, StatsQuery
from capex.services.stats_snapshot import StatsIndex
from capex.vocabulary import ExchangeAction, ExchangeState
from tests.conftest import settings_for
from tests.factories import make_volunteer
from tests.test_stats import HYPOTHESIS, SKILLS, build, history_strategy

LUA = [{"skill": "lua", "level": 3}]


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


@pytest.fixture
def clock() -> Clock:
    return Clock(utcnow())


@pytest.fixture
def index(session_factory: sessionmaker[Session], settings: Settings, clock: Clock) -> StatsIndex:
    return StatsIndex(session_factory, settings, max_age_seconds=60, clock=clock)


def every_answer(index: StatsIndex, query: StatsQuery) -> dict[str, Any]:
    return {
        "overview": index.overview(query),
        "skills": index.skills(query),
        "areas": index.skills(query, level="area"),
        "funnel": index.funnel(query),
        "weeks": index.timeline(query, interval="week"),
        "months": index.timeline(query),
        "regions": index.regions(query),
        "languages": index.languages(query),
        "mentors": index.mentors(query, limit=5),
    }


def assert_as_a_fresh_build(
    index: StatsIndex, session_factory: sessionmaker[Session], settings: Settings, clock: Clock
) -> None:
    """The refreshed snapshot answers as one built from nothing at the same time does."""
    fresh = StatsIndex(session_factory, settings, max_age_seconds=60, clock=clock)
    for f in (StatsFilter(), StatsFilter(area="technology", language="en")):
        query = StatsQuery(settings, f)
        assert every_answer(index, query) == every_answer(fresh, query)


def lua(index: StatsIndex, settings: Settings) -> dict[str, int]:
    row = next(row for row in index.skills(StatsQuery(settings)).items if row.skill == "lua")
    return {"offered": row.offered, "open_slots": row.open_slots, "requested": row.requested}


def test_a_request_and_an_accept_show_after_a_refresh(
    session: Session,
    session_factory: sessionmaker[Session],
    settings: Settings,
    index: StatsIndex,
    clock: Clock,
) -> None:
    mentor = make_volunteer(session, "mentor", offers=LUA, mentor_capacity=2)
    learner = make_volunteer(session, "learner", wants=LUA)
    assert lua(index, settings) == {"offered": 1, "open_slots": 2, "requested": 0}

    made = exchanges.request(session, settings, learner, mentor_id=mentor.id, skill="lua")
    # Not yet: the snapshot is younger than max_age and answers as it was.
    assert lua(index, settings)["requested"] == 0
    index.refresh()
    assert lua(index, settings) == {"offered": 1, "open_slots": 2, "requested": 1}
    waiting = index.mentors(StatsQuery(settings)).waiting_requests
    assert [(w.exchange_id, w.mentor.username, w.skill) for w in waiting] == [
        (made.exchange.id, "mentor", "lua")
    ]

    exchanges.apply(session, settings, made.exchange.id, ExchangeAction.ACCEPT, mentor)
    index.refresh()
    assert lua(index, settings) == {"offered": 1, "open_slots": 1, "requested": 1}
    overview = index.overview(StatsQuery(settings))
    assert overview.exchanges[ExchangeState.ACCEPTED] == 1
    assert overview.requests_waiting == 0
    load = index.mentors(StatsQuery(settings)).load
    assert [(row.accepted_now, row.mentors) for row in load] == [(0, 0), (1, 1)]
    assert_as_a_fresh_build(index, session_factory, settings, clock)


def test_a_profile_change_that_makes_a_mentor_shows_after_a_refresh(
    session: Session,
    session_factory: sessionmaker[Session],
    settings: Settings,
    index: StatsIndex,
    clock: Clock,
) -> None:
    make_volunteer(session, "learner", wants=LUA, languages=[{"code": "fr", "level": 5}])
    teacher = make_volunteer(session, "teacher", mentor_capacity=0)
    before = index.overview(StatsQuery(settings))
    assert (before.mentors, before.learners) == (0, 1)
    assert [row.waiting_learners for row in index.regions(StatsQuery(settings)).items] == [1]

    update = {"offers": LUA, "mentor_capacity": 1, "languages": [{"code": "fr-CA", "level": 4}]}
    profiles.save_profile(session, teacher.id, ProfileUpdate.model_validate(update))
    session.flush()
    index.refresh()
    after = index.overview(StatsQuery(settings))
    assert (after.mentors, after.mentors_with_open_slots) == (1, 1)
    assert [row.waiting_learners for row in index.regions(StatsQuery(settings)).items] == [0]
    french = index.languages(StatsQuery(settings, StatsFilter(language="fr"))).items
    assert [(row.language, row.mentors, row.waiting_learners) for row in french] == [("fr", 1, 0)]
    assert_as_a_fresh_build(index, session_factory, settings, clock)


def test_a_deactivation_shows_after_a_refresh(
    session: Session,
    session_factory: sessionmaker[Session],
    settings: Settings,
    index: StatsIndex,
    clock: Clock,
) -> None:
    mentor = make_volunteer(session, "mentor", offers=LUA, mentor_capacity=1)
    learner = make_volunteer(session, "learner", wants=LUA)
    exchanges.request(session, settings, learner, mentor_id=mentor.id, skill="lua")
    assert index.overview(StatsQuery(settings)).mentors == 1

    accounts.deactivate(session, settings, session.get_one(Volunteer, mentor.id))
    index.refresh()
    overview = index.overview(StatsQuery(settings))
    assert (overview.volunteers, overview.mentors) == (1, 0)
    # Deactivating cancelled the open request.
    assert overview.exchanges[ExchangeState.CANCELLED] == 1
    assert index.funnel(StatsQuery(settings)).lost[ExchangeState.CANCELLED] == 1
    assert_as_a_fresh_build(index, session_factory, settings, clock)


def test_an_answer_is_never_older_than_max_age(
    session: Session, settings: Settings, index: StatsIndex, clock: Clock
) -> None:
    taken = clock.at
    assert index.overview(StatsQuery(settings)).as_of == taken
    make_volunteer(session, "newcomer")
    clock.at = taken + timedelta(seconds=59)
    # Within max_age: the same snapshot, as of when it was taken.
    overview = index.overview(StatsQuery(settings))
    assert (overview.as_of, overview.volunteers) == (taken, 0)
    clock.at = taken + timedelta(seconds=60)
    # Older than that: refreshed before answering, without being told.
    overview = index.overview(StatsQuery(settings))
    assert (overview.as_of, overview.volunteers) == (clock.at, 1)


def test_every_answer_says_the_snapshot_time_and_counts_as_of_it(
    session: Session, settings: Settings, index: StatsIndex, clock: Clock
) -> None:
    mentor = make_volunteer(session, "mentor", offers=LUA)
    learner = make_volunteer(session, "learner", wants=LUA)
    made = exchanges.request(session, settings, learner, mentor_id=mentor.id, skill="lua").exchange
    ttl = timedelta(days=settings.request_ttl_days)
    # Ten seconds before the request expires; then twenty seconds on, within max_age.
    taken = clock.at = made.created_at + ttl - timedelta(seconds=10)
    index.refresh()
    clock.at = taken + timedelta(seconds=20)
    answers = every_answer(index, StatsQuery(settings))
    assert {answer.as_of for answer in answers.values()} == {taken}
    assert answers["overview"].requests_waiting == 1
    (waiting,) = answers["mentors"].waiting_requests
    assert waiting.waiting_days == round((ttl - timedelta(seconds=10)).total_seconds() / 86400, 2)
    index.refresh()
    overview = index.overview(StatsQuery(settings))
    assert overview.as_of == clock.at
    assert (overview.requests_waiting, overview.exchanges[ExchangeState.EXPIRED]) == (0, 1)


def test_the_background_thread_keeps_the_snapshot_fresh(live_database: str) -> None:
    # A database of its own: the refresher thread must not share the tests' connection.
    migrate.upgrade(live_database)
    settings = settings_for(live_database)
    with open_database(live_database) as factory:
        # The clock stands still: answers never find the snapshot old, only the thread
        # (every max_age / 2 of real time) refreshes it.
        index = StatsIndex(factory, settings, max_age_seconds=0.2, clock=Clock(utcnow()))
        index.start()
        try:
            assert index.overview(StatsQuery(settings)).volunteers == 0
            with session_scope(factory) as session:
                make_volunteer(session, "newcomer")
            deadline = time.monotonic() + 10
            while index.overview(StatsQuery(settings)).volunteers == 0:
                assert time.monotonic() < deadline, "the refresher never saw the newcomer"
                time.sleep(0.02)
        finally:
            index.stop()


def test_many_changed_profiles_are_read_again_in_full(
    session: Session,
    session_factory: sessionmaker[Session],
    settings: Settings,
    index: StatsIndex,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    mentor = make_volunteer(session, "mentor", offers=LUA, languages=[{"code": "en", "level": 5}])
    make_volunteer(session, "learner", wants=LUA)
    index.refresh()
    # More changed volunteers than this: every offer, want and language is read again.
    monkeypatch.setattr(stats_snapshot, "MANY_CHANGED", 0)
    update = {"offers": [], "wants": LUA, "languages": [{"code": "pt-BR", "level": 3}]}
    profiles.save_profile(session, mentor.id, ProfileUpdate.model_validate(update))
    session.flush()
    index.refresh()
    overview = index.overview(StatsQuery(settings))
    assert (overview.mentors, overview.learners) == (0, 2)
    assert [row.language for row in index.languages(StatsQuery(settings)).items] == ["pt"]
    assert_as_a_fresh_build(index, session_factory, settings, clock)


def test_deleted_rows_mean_a_full_rebuild(
    session: Session,
    session_factory: sessionmaker[Session],
    settings: Settings,
    index: StatsIndex,
    clock: Clock,
) -> None:
    make_volunteer(session, "stays", offers=LUA)
    nested = session.begin_nested()
    session.add(accounts.new_volunteer("goes", "goes@example.org", "x", display_name="Goes"))
    session.flush()
    index.refresh()
    assert index.overview(StatsQuery(settings)).volunteers == 2
    nested.rollback()
    index.refresh()
    assert index.overview(StatsQuery(settings)).volunteers == 1
    assert_as_a_fresh_build(index, session_factory, settings, clock)


def test_an_unknown_area_level_or_interval_is_refused(
    settings: Settings, index: StatsIndex
) -> None:
    with pytest.raises(Invalid, match="root skill"):
        index.overview(StatsQuery(settings, StatsFilter(area="lua")))
    with pytest.raises(Invalid, match="level"):
        index.skills(StatsQuery(settings), level="galaxy")
    with pytest.raises(Invalid, match="interval"):
        index.timeline(StatsQuery(settings), interval="decade")


# -- random changes after a random history --------------------------------------------------

requests = st.tuples(st.just("request"), st.integers(0, 5), st.integers(0, 5), st.integers(0, 5))
change_strategy = st.one_of(
    requests,
    requests,
    st.tuples(
        st.just("move"),
        st.integers(0, 20),
        st.sampled_from(
            [
                ExchangeAction.ACCEPT,
                ExchangeAction.DECLINE,
                ExchangeAction.CANCEL,
                ExchangeAction.COMPLETE,
            ]
        ),
    ),
    st.tuples(
        st.just("profile"),
        st.integers(0, 5),
        st.lists(st.sampled_from(SKILLS), max_size=2, unique=True),
        st.lists(st.sampled_from(SKILLS), max_size=2, unique=True),
        st.integers(0, 3),
        st.sampled_from(["cee", "lac", "fr", "pt-BR"]),
    ),
    st.tuples(st.just("deactivate"), st.integers(0, 5)),
    st.tuples(st.just("feedback"), st.integers(0, 20), st.integers(1, 5)),
)


def make_change(session: Session, settings: Settings, change: tuple[Any, ...]) -> None:
    """One change through the services, as a volunteer would make it; refused ones skipped."""
    people = list(
        session.scalars(select(Volunteer).where(Volunteer.is_active).order_by(Volunteer.id))
    )
    made = list(session.scalars(select(Exchange).order_by(Exchange.id)))
    kind, *rest = change
    if not people:
        return
    try:
        with session.begin_nested():
            if kind == "request":
                learner, mentor = people[rest[0] % len(people)], people[rest[1] % len(people)]
                offers = select(SkillOffer.skill_id).where(SkillOffer.volunteer_id == mentor.id)
                offered = sorted(session.scalars(offers)) or SKILLS
                skill = offered[rest[2] % len(offered)]
                exchanges.request(session, settings, learner, mentor_id=mentor.id, skill=skill)
            elif kind == "move" and made:
                exchange = made[rest[0] % len(made)]
                actor = exchange.mentor_id
                if rest[1] in (ExchangeAction.CANCEL, ExchangeAction.COMPLETE):
                    actor = exchange.learner_id
                actor_row = session.get_one(Volunteer, actor)
                exchanges.apply(session, settings, exchange.id, rest[1], actor_row)
            elif kind == "profile":
                offers, wants, capacity, where = rest[1:]
                entries = [{"skill": skill, "level": 2} for skill in offers]
                update: dict[str, Any] = {
                    "offers": entries,
                    "wants": [{"skill": skill, "level": 1} for skill in wants],
                    "mentor_capacity": capacity,
                }
                if where in ("cee", "lac"):
                    update["region"] = where
                else:
                    update["languages"] = [{"code": where, "level": 4}]
                volunteer = people[rest[0] % len(people)]
                profiles.save_profile(session, volunteer.id, ProfileUpdate.model_validate(update))
            elif kind == "deactivate":
                accounts.deactivate(session, settings, people[rest[0] % len(people)])
            elif kind == "feedback" and made:
                exchange = made[rest[0] % len(made)]
                author = session.get_one(Volunteer, exchange.learner_id)
                exchanges.leave_feedback(
                    session, settings, exchange.id, author, rating=rest[1], comment=""
                )
            session.flush()
    except CapexError:
        pass


@hypothesis_settings(HYPOTHESIS, max_examples=20)
@given(history=history_strategy, changes=st.lists(change_strategy, min_size=1, max_size=8))
def test_a_refresh_after_random_changes_equals_a_fresh_build(
    session: Session,
    session_factory: sessionmaker[Session],
    settings: Settings,
    history: Any,
    changes: list[tuple[Any, ...]],
) -> None:
    clock = Clock(utcnow())
    nested = session.begin_nested()
    try:
        build(session, history)
        # The history keeps the mentors' counters; the learners' waiting requests too here.
        waiting = (
            select(func.count())
            .where(Exchange.learner_id == Volunteer.id, Exchange.state == ExchangeState.REQUESTED)
            .scalar_subquery()
        )
        session.execute(update(Volunteer).values(requested_as_learner=waiting))
        index = StatsIndex(session_factory, settings, max_age_seconds=60, clock=clock)
        index.refresh()
        for change in changes:
            make_change(session, settings, change)
        index.refresh()
        assert_as_a_fresh_build(index, session_factory, settings, clock)
    finally:
        nested.rollback()
        session.expire_all()
