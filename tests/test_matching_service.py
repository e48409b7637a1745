"""The matching service rebuilds beside the queries, never inside them, on both databases.

These tests use a database of their own, committed to for real, because the rebuild
reads it from another thread with connections of its own.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import sessionmaker

from capex import migrate
from capex.db import make_engine
from capex.models import Volunteer
from capex.schemas.skills import SkillCreate
from capex.services import skills
from capex.services.matches import MatchingService
from capex.testing import discard_database, fresh_database
from tests.factories import make_volunteer

ENGLISH = [{"code": "en", "level": 5}]
NOON = datetime(2026, 12, 2, 12, tzinfo=UTC)  # a Wednesday


@pytest.fixture(params=["sqlite", "postgresql"])
def factory(request, tmp_path):
    url = fresh_database(request.param, tmp_path)
    migrate.upgrade(url)
    engine = make_engine(url)
    yield sessionmaker(engine, expire_on_commit=False)
    engine.dispose()
    discard_database(url)


def _ids(factory, service, volunteer, **query):
    with factory() as session:
        asker = session.get(Volunteer, volunteer.id)  # as the request's own session sees them
        return [m.volunteer_id for m in service.matches(session, asker, **query)]


def _in_a_thread(call):
    """Run ``call``; its result, or None if it is still waiting after 20 s."""
    result = []
    thread = threading.Thread(target=lambda: result.append(call()), daemon=True)
    thread.start()
    thread.join(timeout=20)
    return result[0] if result else None


class HeldBuilds:
    """Wraps a service's builds so that a test decides when a rebuild may go on."""

    def __init__(self, service: MatchingService) -> None:
        self.started = threading.Event()
        self.release = threading.Event()
        build = service._build

        def held(week_start):
            self.started.set()
            self.release.wait(60)
            return build(week_start)

        service._build = held


def _until(predicate, seconds=20.0):
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "the rebuild never took over"
        time.sleep(0.02)


def test_a_new_week_is_built_while_queries_answer_from_the_last(factory):
    with factory() as session:
        mentor = make_volunteer(
            session, "mentor", languages=ENGLISH, offers=[{"skill": "lua", "level": 4}]
        )
        learner = make_volunteer(
            session, "learner", languages=ENGLISH, wants=[{"skill": "lua", "level": 2}]
        )
    now = [NOON]
    service = MatchingService(factory, poll_interval=0, clock=lambda: now[0])
    assert _ids(factory, service, learner, role="learner") == [mentor.id]
    this_week = service.index().week_start

    held = HeldBuilds(service)
    now[0] = NOON + timedelta(days=7)
    answer = _in_a_thread(lambda: _ids(factory, service, learner, role="learner"))
    assert held.started.is_set(), "the new week should have started a rebuild"
    assert answer == [mentor.id], "a query waited for the rebuild instead of answering"
    assert service.index().week_start == this_week

    held.release.set()
    _until(lambda: service.index().week_start == this_week + timedelta(days=7))
    assert _ids(factory, service, learner, role="learner") == [mentor.id]


def test_a_taxonomy_change_is_built_while_queries_answer_from_the_last(factory):
    with factory() as session:
        mentor = make_volunteer(
            session, "mentor", languages=ENGLISH, offers=[{"skill": "lua", "level": 4}]
        )
    service = MatchingService(factory, poll_interval=0)
    service.index()
    held = HeldBuilds(service)

    with factory() as session:
        skills.create_skill(
            session,
            SkillCreate(
                id="scribunto-testing", name="Scribunto testing", parent="templates-modules"
            ),
        )
        session.commit()
        newcomer = make_volunteer(
            session,
            "newcomer",
            languages=ENGLISH,
            wants=[{"skill": "scribunto-testing", "level": 2}],
        )

    # Asked at once, before the index knows the skill: an answer, not an error, and the
    # same when the newcomer asks for that skill alone.
    answer = _in_a_thread(lambda: _ids(factory, service, newcomer, role="learner"))
    assert held.started.is_set(), "the taxonomy change should have started a rebuild"
    assert answer == [], "a query waited for the rebuild instead of answering"
    only = _in_a_thread(
        lambda: _ids(factory, service, newcomer, role="learner", skill="scribunto-testing")
    )
    assert only == []

    held.release.set()
    _until(lambda: "scribunto-testing" in service.index().skill_space)
    # Now the mentor of a sibling skill (lua) is ranked for the new one.
    assert _ids(factory, service, newcomer, role="learner") == [mentor.id]
