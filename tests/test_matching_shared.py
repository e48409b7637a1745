"""The matching index of a host: built once, mapped by every worker, fresh after each change,
and never waited for; on PostgreSQL, kept fresh by LISTEN/NOTIFY instead of polling.

Each "worker" here is a ``MatchingService`` of its own over a database committed to for real
(the builds and the listener read it from other threads, with connections of their own).
"""

from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import update
from sqlalchemy.orm import sessionmaker

from capex import migrate
from capex.db import make_engine
from capex.models import Volunteer
from capex.schemas.profiles import ProfileUpdate
from capex.schemas.skills import SkillCreate
from capex.services import profiles, skills
from capex.services.matches import (
    GenerationBuilder,
    MatchingNotReady,
    MatchingService,
    build_generation,
)
from capex.services.matching_index import Generations, postgres_dsn
from capex.testing import discard_database, fresh_database
from capex.vocabulary import Side
from tests.factories import make_volunteer

ENGLISH = [{"code": "en", "level": 5}]


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, tmp_path):
    url = fresh_database(request.param, tmp_path)
    migrate.upgrade(url)
    engine = make_engine(url)
    yield url, sessionmaker(engine, expire_on_commit=False)
    engine.dispose()
    discard_database(url)


class Builds:
    """The folder's builds, run in this process, counted, and held until released."""

    def __init__(self, factory: sessionmaker, *, held: bool = False) -> None:
        self.factory = factory
        self.count = 0
        self.release = threading.Event()
        if not held:
            self.release.set()

    def __call__(self, directory: Path) -> None:
        self.count += 1
        assert self.release.wait(60), "the test never let the build go on"
        build_generation(self.factory, Generations(directory))


def worker(factory, folder: Path, builds: Builds, **options) -> MatchingService:
    return MatchingService(
        factory,
        wait_for_first_build=False,
        generations=Generations(folder, build=builds),
        poll_interval=0,
        **options,
    )


def until(predicate, what: str, seconds: float = 30.0):
    deadline = time.monotonic() + seconds
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def ready(service: MatchingService) -> bool:
    return service.ready()


def matched(factory, service: MatchingService, volunteer_id: int) -> list[int]:
    with factory() as session:
        asker = session.get(Volunteer, volunteer_id)
        return [m.volunteer_id for m in service.matches(session, asker, role=Side.LEARNER)]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_workers_of_a_host_build_once_answer_503_until_then_and_alike_after(database, tmp_path):
    _, factory = database
    with factory() as session:
        mentor = make_volunteer(
            session, "mentor", languages=ENGLISH, offers=[{"skill": "lua", "level": 4}]
        )
        learner = make_volunteer(
            session, "learner", languages=ENGLISH, wants=[{"skill": "lua", "level": 2}]
        )
    builds = Builds(factory, held=True)
    first, second = (worker(factory, tmp_path / "shared", builds) for _ in range(2))
    first.start()
    second.start()
    until(lambda: builds.count == 1, "the first worker should have started the build")

    # The build is under way: no query waits for it, each is told when to come back.
    for service in (first, second):
        assert not service.ready()
        with pytest.raises(MatchingNotReady) as refused:
            matched(factory, service, learner.id)
        assert refused.value.status == 503
        assert refused.value.headers["Retry-After"] == "5"

    builds.release.set()
    until(lambda: first.ready() and second.ready(), "both workers should map the index")
    assert builds.count == 1, "the index is built once per host, not once per worker"
    files = sorted(path.name for path in (tmp_path / "shared").glob("generation-*.idx"))
    assert files == ["generation-1.idx"]
    assert matched(factory, first, learner.id) == [mentor.id]
    assert matched(factory, second, learner.id) == [mentor.id]


def test_a_change_reaches_every_worker_and_stays_out_of_the_shared_file(database, tmp_path):
    _, factory = database
    with factory() as session:
        mentor = make_volunteer(
            session, "mentor", languages=ENGLISH, offers=[{"skill": "sparql", "level": 4}]
        )
        learner = make_volunteer(
            session, "learner", languages=ENGLISH, wants=[{"skill": "lua", "level": 2}]
        )
    builds = Builds(factory)
    first, second = (worker(factory, tmp_path / "shared", builds) for _ in range(2))
    for service in (first, second):
        service.start()
        until(lambda service=service: ready(service), "the worker should map the index")
    shared_file = tmp_path / "shared" / "generation-1.idx"
    before = digest(shared_file)
    assert matched(factory, second, learner.id) == []

    # The mentor saves a profile through the first worker; the second, asked next, knows.
    with factory() as session:
        profiles.save_profile(
            session, mentor.id, ProfileUpdate(offers=[{"skill": "lua", "level": 4}])
        )
        session.commit()
    assert matched(factory, second, learner.id) == [mentor.id]
    assert matched(factory, first, learner.id) == [mentor.id]
    # Deactivated: gone from both.
    with factory() as session:
        session.execute(update(Volunteer).where(Volunteer.id == mentor.id).values(is_active=False))
        session.commit()
    assert matched(factory, second, learner.id) == []
    assert matched(factory, first, learner.id) == []
    assert digest(shared_file) == before, "changes belong to each worker, not to the file"
    assert builds.count == 1


def test_a_taxonomy_change_publishes_a_new_generation_while_the_old_answers(database, tmp_path):
    _, factory = database
    with factory() as session:
        mentor = make_volunteer(
            session, "mentor", languages=ENGLISH, offers=[{"skill": "lua", "level": 4}]
        )
    builds = Builds(factory)
    first, second = (worker(factory, tmp_path / "shared", builds) for _ in range(2))
    for service in (first, second):
        service.start()
        until(lambda service=service: ready(service), "the worker should map the index")
    builds.release.clear()  # hold the next build

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
    # Answered at once from the index that does not know the skill yet.
    assert matched(factory, first, newcomer.id) == []
    assert matched(factory, second, newcomer.id) == []
    until(lambda: builds.count == 2, "the taxonomy change should start one new build")

    builds.release.set()
    for service in (first, second):
        until(
            lambda service=service: "scribunto-testing" in service.index().skill_space,
            "every worker should move to the new generation",
        )
        assert matched(factory, service, newcomer.id) == [mentor.id]
    assert builds.count == 2
    files = sorted(path.name for path in (tmp_path / "shared").glob("generation-*.idx"))
    assert files == ["generation-2.idx"], "an older generation's file is removed"


def test_postgresql_wakes_the_index_with_no_polling(tmp_path):
    url = fresh_database("postgresql", tmp_path)
    migrate.upgrade(url)
    engine = make_engine(url)
    factory = sessionmaker(engine, expire_on_commit=False)
    try:
        with factory() as session:
            mentor = make_volunteer(
                session, "mentor", languages=ENGLISH, offers=[{"skill": "sparql", "level": 4}]
            )
            learner = make_volunteer(
                session, "learner", languages=ENGLISH, wants=[{"skill": "lua", "level": 2}]
            )
        # Polls due at every query, were it not for the listener.
        service = MatchingService(factory, poll_interval=0, listen_dsn=postgres_dsn(url))
        polls = []
        poll = service._poll
        service._poll = lambda state: (polls.append(state), poll(state))
        service.start()
        until(lambda: service.listening, "the service should listen")
        time.sleep(0.5)  # the catch-up that follows each connection
        quiet = len(polls)
        for _ in range(20):
            assert matched(factory, service, learner.id) == []
        time.sleep(2.5)  # two ticks of the listener
        assert len(polls) == quiet, "nothing changed: neither the queries nor the ticks poll"
        woken = service.listener.wakeups

        with factory() as session:
            profiles.save_profile(
                session, mentor.id, ProfileUpdate(offers=[{"skill": "lua", "level": 4}])
            )
            session.commit()
        until(
            lambda: matched(factory, service, learner.id) == [mentor.id],
            "the committed change should reach the index through its notification",
            seconds=10,
        )
        until(lambda: service.listener.wakeups > woken, "the listener should have been woken")
        assert len(polls) > quiet
        service.stop()
        assert not service.listening
    finally:
        engine.dispose()
        discard_database(url)


def test_a_large_population_is_built_in_a_process_of_its_own(database, tmp_path):
    url, factory = database
    with factory() as session:
        mentor = make_volunteer(
            session, "mentor", languages=ENGLISH, offers=[{"skill": "lua", "level": 4}]
        )
        learner = make_volunteer(
            session, "learner", languages=ENGLISH, wants=[{"skill": "lua", "level": 2}]
        )
    # Every population counts as large here: `capex matching build` runs as a child.
    builder = GenerationBuilder(factory, url, in_process_below=0)
    service = MatchingService(
        factory,
        wait_for_first_build=False,
        generations=Generations(tmp_path / "shared", build=builder),
    )
    service.start()
    until(lambda: ready(service), "the child process should publish the first generation")
    child = builder._child
    assert child is not None
    until(lambda: child.poll() is not None, "the child should end after publishing")
    assert child.returncode == 0
    assert matched(factory, service, learner.id) == [mentor.id]
    service.stop()
