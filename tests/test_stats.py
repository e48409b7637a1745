"""The statistics service on both databases: every figure equals a plain Python pass over
the tables (tests/stats_reference.py) on random small histories, and a hand-checked case
moves as a coordinator expects."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session, sessionmaker

from capex.config import Settings
from capex.errors import Invalid
from capex.models import (
    Exchange,
    Feedback,
    SkillOffer,
    SkillWant,
    Volunteer,
    VolunteerLanguage,
)
from capex.services import exchanges, stats
from capex.services.stats import StatsFilter, StatsQuery
from capex.services.stats_snapshot import StatsIndex
from capex.vocabulary import ExchangeAction, ExchangeState, Side
from tests import stats_reference as reference
from tests.factories import make_volunteer

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
# Skills at every depth of two areas: a root, a child, a grandchild, and technology's.
SKILLS = ["organizational", "project-management", "risk-management", "lua", "template-editing"]
REGIONS = [None, "cee", "lac"]
LANGUAGES = ["en", "fr", "pt-BR"]
# How an exchange ended: its final state and whether it was ever accepted.
PATHS = [
    (ExchangeState.REQUESTED, False),
    (ExchangeState.ACCEPTED, True),
    (ExchangeState.DECLINED, False),
    (ExchangeState.CANCELLED, False),
    (ExchangeState.CANCELLED, True),
    (ExchangeState.EXPIRED, False),
    (ExchangeState.COMPLETED, True),
]


def clock() -> datetime:
    return NOW


# -- random histories ----------------------------------------------------------------------

volunteer_strategy = st.fixed_dictionaries(
    {
        "region": st.sampled_from(REGIONS),
        "languages": st.lists(st.sampled_from(LANGUAGES), max_size=2, unique=True),
        "capacity": st.integers(0, 3),
        "active": st.booleans(),
        "age_days": st.integers(0, 90),
        "seen_days": st.none() | st.integers(0, 60),
        "offers": st.lists(st.sampled_from(SKILLS), max_size=3, unique=True),
        "wants": st.lists(st.sampled_from(SKILLS), max_size=3, unique=True),
    }
)
exchange_strategy = st.fixed_dictionaries(
    {
        "learner": st.integers(0, 5),
        "mentor": st.integers(0, 5),
        "skill": st.sampled_from(SKILLS),
        "path": st.sampled_from(PATHS),
        "age_hours": st.integers(0, 24 * 40),
        "response_hours": st.integers(1, 24 * 10),
        "feedback": st.integers(0, 2),
    }
)
EMPTY_PERSON = {
    "region": None,
    "languages": ["en"],
    "capacity": 0,
    "active": True,
    "age_days": 1,
    "seen_days": None,
    "offers": [],
    "wants": [],
}
history_strategy = st.tuples(
    st.lists(volunteer_strategy, min_size=2, max_size=6),
    st.lists(exchange_strategy, max_size=12),
)


def build(session: Session, history: tuple[list[dict], list[dict]]) -> None:
    """Insert a consistent history: counters agree with the exchanges, one open pair at most."""
    people, wanted_exchanges = history
    volunteers = []
    for index, person in enumerate(people):
        volunteer = Volunteer(
            username=f"v{index}",
            username_key=f"v{index}",
            email=f"v{index}@example.org",
            password_hash="x",
            display_name=f"V{index}",
            region=person["region"],
            mentor_capacity=person["capacity"],
            is_active=person["active"],
            created_at=NOW - timedelta(days=person["age_days"], hours=1),
            last_seen_at=None
            if person["seen_days"] is None
            else NOW - timedelta(days=person["seen_days"], hours=1),
        )
        session.add(volunteer)
        volunteers.append(volunteer)
    session.flush()
    for volunteer, person in zip(volunteers, people, strict=True):
        for position, code in enumerate(person["languages"]):
            session.add(
                VolunteerLanguage(
                    volunteer_id=volunteer.id,
                    code=code,
                    language=code.split("-")[0],
                    level=3,
                    position=position,
                )
            )
        for table, listed in ((SkillOffer, person["offers"]), (SkillWant, person["wants"])):
            for position, skill in enumerate(listed):
                session.add(
                    table(volunteer_id=volunteer.id, skill_id=skill, level=2, position=position)
                )
    accepted: dict[int, int] = {}
    open_pairs: set[tuple[int, int, str]] = set()
    for wanted in wanted_exchanges:
        if wanted["learner"] >= len(volunteers) or wanted["mentor"] >= len(volunteers):
            continue
        learner, mentor = volunteers[wanted["learner"]], volunteers[wanted["mentor"]]
        if learner is mentor:
            continue
        state, was_accepted = wanted["path"]
        pair = (learner.id, mentor.id, wanted["skill"])
        if state.is_open:
            if pair in open_pairs:
                continue
            open_pairs.add(pair)
        created = NOW - timedelta(hours=wanted["age_hours"], minutes=7)
        responded = created + timedelta(hours=wanted["response_hours"], minutes=13)
        answered = was_accepted or state == ExchangeState.DECLINED
        exchange = Exchange(
            learner_id=learner.id,
            mentor_id=mentor.id,
            skill_id=wanted["skill"],
            state=state,
            created_at=created,
            updated_at=created,
            responded_at=responded if answered else None,
            accepted_at=responded if was_accepted else None,
            closed_at=None if state.is_open else responded + timedelta(days=1),
        )
        session.add(exchange)
        if state == ExchangeState.ACCEPTED:
            accepted[mentor.id] = accepted.get(mentor.id, 0) + 1
        if state == ExchangeState.COMPLETED and wanted["feedback"]:
            session.flush()
            sides = [(learner, mentor, Side.LEARNER), (mentor, learner, Side.MENTOR)]
            for author, subject, role in sides[: wanted["feedback"]]:
                session.add(
                    Feedback(
                        exchange_id=exchange.id,
                        author_id=author.id,
                        subject_id=subject.id,
                        author_role=role,
                        rating=1 + exchange.id % 5,
                    )
                )
    for volunteer in volunteers:
        taken = accepted.get(volunteer.id, 0)
        volunteer.mentor_capacity = max(volunteer.mentor_capacity, taken)
        volunteer.accepted_as_mentor = taken
    session.flush()


def plain(value: Any) -> Any:
    """A dataclass as the reference spells it: no ``as_of``, enums as their text."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            field.name: plain(getattr(value, field.name))
            for field in dataclasses.fields(value)
            if field.name != "as_of"
        }
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    if isinstance(value, float):
        return pytest.approx(value, abs=0.011)
    return value


def within_history(session: Session, history: Any, check: Any) -> None:
    """Build ``history`` in a savepoint, run ``check``, and roll the history back."""
    nested = session.begin_nested()
    try:
        build(session, history)
        check()
    finally:
        nested.rollback()
        session.expire_all()


HYPOTHESIS = hypothesis_settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


# -- the hand-checked case -----------------------------------------------------------------


def lua_row(session: Session, settings: Settings) -> dict[str, Any]:
    table = stats.skills(session, StatsQuery(settings))
    row = next(item for item in table.items if item.skill == "lua")
    return {
        key: getattr(row, key)
        for key in ("offered", "open_slots", "wanted", "gap", "requested", "accepted", "completed")
    }


def test_accept_decline_and_complete_move_the_skill_counts(
    session: Session, settings: Settings
) -> None:
    mentor = make_volunteer(
        session, "mentor", offers=[{"skill": "lua", "level": 3}], mentor_capacity=2
    )
    learners = [
        make_volunteer(session, f"learner{i}", wants=[{"skill": "lua", "level": 2}])
        for i in range(3)
    ]
    counts = {"offered": 1, "open_slots": 2, "wanted": 3, "gap": 1}
    assert lua_row(session, settings) == counts | {"requested": 0, "accepted": 0, "completed": 0}

    first, second = (
        exchanges.request(session, settings, learner, mentor_id=mentor.id, skill="lua").exchange
        for learner in learners[:2]
    )
    assert lua_row(session, settings) == counts | {"requested": 2, "accepted": 0, "completed": 0}

    exchanges.apply(session, settings, first.id, ExchangeAction.ACCEPT, mentor)
    # One slot taken: the gap widens.
    assert lua_row(session, settings) == {
        "offered": 1,
        "open_slots": 1,
        "wanted": 3,
        "gap": 2,
        "requested": 2,
        "accepted": 1,
        "completed": 0,
    }
    exchanges.apply(session, settings, second.id, ExchangeAction.DECLINE, mentor)
    assert lua_row(session, settings)["gap"] == 2
    exchanges.apply(session, settings, first.id, ExchangeAction.COMPLETE, learners[0])
    # The slot is free again; the learner still lists the want.
    assert lua_row(session, settings) == {
        "offered": 1,
        "open_slots": 2,
        "wanted": 3,
        "gap": 1,
        "requested": 2,
        "accepted": 1,
        "completed": 1,
    }
    funnel = stats.funnel(session, StatsQuery(settings))
    assert [(s.stage, s.count) for s in funnel.stages] == [
        ("requested", 2),
        ("answered", 2),
        ("accepted", 1),
        ("completed", 1),
        ("feedback", 0),
    ]
    assert funnel.lost == {"declined": 1, "cancelled": 0, "expired": 0}
    overview = stats.overview(session, StatsQuery(settings))
    assert (overview.mentors, overview.mentors_with_open_slots, overview.learners) == (1, 1, 3)
    assert overview.acceptance_rate == 0.5
    assert overview.completion_rate == 1.0


def test_a_request_past_its_time_counts_as_expired(session: Session, settings: Settings) -> None:
    mentor = make_volunteer(session, "mentor", offers=[{"skill": "lua", "level": 3}])
    learner = make_volunteer(session, "learner", wants=[{"skill": "lua", "level": 2}])
    exchanges.request(session, settings, learner, mentor_id=mentor.id, skill="lua")
    later = datetime.now(UTC) + timedelta(days=settings.request_ttl_days + 1)
    overview = stats.overview(session, StatsQuery(settings, clock=lambda: later))
    assert overview.requests_waiting == 0
    assert overview.exchanges[ExchangeState.EXPIRED] == 1
    assert overview.expiry_rate == 1.0
    assert stats.funnel(session, StatsQuery(settings, clock=lambda: later)).lost["expired"] == 1


def test_an_area_filter_must_name_a_root_skill(session: Session, settings: Settings) -> None:
    with pytest.raises(Invalid, match="root skill"):
        stats.overview(session, StatsQuery(settings, StatsFilter(area="lua")))


# -- timeline, regions, languages, mentors -------------------------------------------------


def test_timeline_labels_months_and_iso_weeks() -> None:
    assert stats.period_of(datetime(2026, 1, 1).date(), "month") == "2026-01"
    # 1 January 2027 is a Friday: ISO week 53 of 2026.
    assert stats.period_of(datetime(2027, 1, 1).date(), "week") == "2026-W53"


def test_a_learner_waits_in_a_language_no_free_mentor_speaks(
    session: Session, settings: Settings
) -> None:
    lua = [{"skill": "lua", "level": 3}]
    make_volunteer(session, "learner", wants=lua, languages=[{"code": "fr", "level": 5}])
    english = [{"code": "en", "level": 5}]
    make_volunteer(session, "mentor", offers=lua, languages=english, mentor_capacity=1)

    def waiting() -> dict[str, int]:
        table = stats.languages(session, StatsQuery(settings))
        return {row.language: row.waiting_learners for row in table.items}

    assert waiting() == {"en": 0, "fr": 1}
    make_volunteer(session, "francophone", offers=lua, languages=[{"code": "fr-CA", "level": 5}])
    assert waiting() == {"en": 0, "fr": 0}
    regions = stats.regions(session, StatsQuery(settings)).items
    assert [(row.region, row.learners, row.waiting_learners) for row in regions] == [(None, 1, 0)]


# -- every answer against the reference, without and with filters ---------------------------

FILTERS = {
    "region": StatsFilter(region="cee"),
    "language": StatsFilter(language="fr"),
    "language-code": StatsFilter(language="pt-BR"),
    "area": StatsFilter(area="organizational"),
    "since-until": StatsFilter(
        since=(NOW - timedelta(days=20)).date(), until=(NOW - timedelta(days=3)).date()
    ),
    "region-and-area": StatsFilter(region="lac", area="technology"),
    "language-and-since": StatsFilter(language="en", since=(NOW - timedelta(days=10)).date()),
}


SOURCES = ("sql", "snapshot")


def make_source(
    kind: str, session_factory: sessionmaker[Session], settings: Settings
) -> stats.StatsSource:
    """The SQL answers, or a snapshot that reads the database afresh on every answer."""
    if kind == "sql":
        return stats.SqlStats(session_factory)
    return StatsIndex(session_factory, settings, max_age_seconds=0, clock=clock)


def every_answer(source: stats.StatsSource, settings: Settings, f: StatsFilter) -> dict[str, Any]:
    def taken(name: str, **options: Any) -> Any:
        answer = getattr(source, name)(StatsQuery(settings, f, clock), **options)
        assert answer.as_of == NOW
        return plain(answer)

    return {
        "overview": taken("overview"),
        "skills": taken("skills")["items"],
        "areas": taken("skills", level="area")["items"],
        "funnel": taken("funnel"),
        "timeline": taken("timeline", interval="week")["items"],
        "months": taken("timeline", interval="month")["items"],
        "regions": taken("regions")["items"],
        "languages": taken("languages")["items"],
        "mentors": taken("mentors", limit=3),
    }


def every_reference(session: Session, settings: Settings, f: StatsFilter) -> dict[str, Any]:
    world, ttl = reference.load(session), settings.request_ttl_days
    return {
        "overview": reference.overview(world, f, NOW, ttl),
        "skills": reference.skills(world, f, NOW, ttl, "skill"),
        "areas": reference.skills(world, f, NOW, ttl, "area"),
        "funnel": reference.funnel(world, f, NOW, ttl),
        "timeline": reference.timeline(world, f, NOW, ttl, "week"),
        "months": reference.timeline(world, f, NOW, ttl, "month"),
        "regions": reference.regions(world, f, NOW, ttl),
        "languages": reference.languages(world, f, NOW, ttl),
        "mentors": reference.mentors(world, f, NOW, ttl, 3),
    }


@pytest.mark.parametrize("kind", SOURCES)
@HYPOTHESIS
@given(history=history_strategy)
def test_every_answer_equals_the_reference(
    session: Session, session_factory: sessionmaker[Session], settings: Settings, kind, history
) -> None:
    def check() -> None:
        source = make_source(kind, session_factory, settings)
        expected = every_reference(session, settings, StatsFilter())
        assert expected == every_answer(source, settings, StatsFilter())

    within_history(session, history, check)


@pytest.mark.parametrize("kind", SOURCES)
@pytest.mark.parametrize("name", FILTERS)
@hypothesis_settings(HYPOTHESIS, max_examples=10)
@given(history=history_strategy)
def test_every_answer_under_a_filter_equals_the_reference(
    session: Session,
    session_factory: sessionmaker[Session],
    settings: Settings,
    kind: str,
    name: str,
    history,
) -> None:
    f = FILTERS[name]

    def check() -> None:
        source = make_source(kind, session_factory, settings)
        expected = every_reference(session, settings, f)
        assert expected == every_answer(source, settings, f)

    within_history(session, history, check)


def test_a_filter_narrows_the_counts(session: Session, settings: Settings) -> None:
    lua, planning = [{"skill": "lua", "level": 3}], [{"skill": "risk-management", "level": 2}]
    make_volunteer(session, "lua-mentor", offers=lua, region="cee")
    make_volunteer(session, "plan-learner", wants=planning, region="lac")
    make_volunteer(session, "lua-learner", wants=lua, region="lac")

    def people(f: StatsFilter) -> tuple[int, int, int]:
        figures = stats.overview(session, StatsQuery(settings, f))
        return figures.volunteers, figures.mentors, figures.learners

    assert people(StatsFilter()) == (3, 1, 2)
    assert people(StatsFilter(region="lac")) == (2, 0, 2)
    assert people(StatsFilter(area="technology")) == (3, 1, 1)
    assert people(StatsFilter(region="lac", area="organizational")) == (2, 0, 1)


def test_since_and_until_are_inclusive_days_on_created_at(
    session: Session, settings: Settings
) -> None:
    people = [{**EMPTY_PERSON, "offers": ["lua"], "capacity": 2}, EMPTY_PERSON]
    # Made at NOW minus these hours minus 7 minutes: 06-09 23:53, 06-10 00:53,
    # 06-12 11:53 and 06-13 11:53.
    ages = [132, 131, 72, 48]
    made = [
        {"learner": 1, "mentor": 0, "skill": "lua", "path": (ExchangeState.DECLINED, False)}
        | {"age_hours": age, "response_hours": 1, "feedback": 0}
        for age in ages
    ]
    build(session, (people, made))
    window = StatsFilter(since=datetime(2026, 6, 10).date(), until=datetime(2026, 6, 12).date())
    assert stats.funnel(session, StatsQuery(settings, window, clock=clock)).stages[0].count == 2
    assert stats.funnel(session, StatsQuery(settings, clock=clock)).stages[0].count == 4
