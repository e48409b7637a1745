"""The demo population: deterministic, realistic in shape, valid by the API's own rules."""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from datetime import UTC, datetime
from itertools import pairwise
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from capex import demo
from capex.config import Settings
from capex.demo import rows as demo_rows
from capex.errors import Conflict, Invalid
from capex.models import (
    AvailabilitySlot,
    Skill,
    SkillOffer,
    SkillWant,
    Volunteer,
    VolunteerLanguage,
)
from capex.models.base import utcnow
from capex.regions import REGIONS
from capex.schemas.profiles import RegisterIn, check_timezone, standardize_language
from capex.services import accounts
from tests.factories import make_volunteer

SMALL = 300


def _populate(session: Session, volunteers: int = SMALL, **kwargs: Any) -> demo.DemoResult:
    result = demo.populate(session, volunteers=volunteers, **kwargs)
    session.flush()
    return result


def _snapshot(session: Session, first_id: int) -> list[tuple[Any, ...]]:
    """Everything random about each volunteer, with ids made relative to the first one."""
    people: dict[int, list[Any]] = {}
    for v in session.execute(select(Volunteer).where(Volunteer.id >= first_id)).scalars():
        people[v.id] = [
            v.username,
            v.display_name,
            v.bio,
            v.timezone,
            v.region,
            v.mentor_capacity,
            v.is_active,
        ]
    for model, columns in (
        (VolunteerLanguage, ("code", "level", "position")),
        (SkillOffer, ("skill_id", "level", "note", "position")),
        (SkillWant, ("skill_id", "level", "note", "position")),
        (AvailabilitySlot, ("weekday", "start_minute", "end_minute")),
    ):
        rows: dict[int, list[tuple[Any, ...]]] = defaultdict(list)
        for row in session.execute(select(model).where(model.volunteer_id >= first_id)).scalars():
            rows[row.volunteer_id].append(tuple(getattr(row, name) for name in columns))
        for volunteer_id, values in people.items():
            values.append(sorted(rows[volunteer_id]))
    return [tuple(values) for _, values in sorted(people.items())]


# The population ``seed=DIGEST_SEED`` gives for ``SMALL`` volunteers at ``DIGEST_NOW``, as
# written by capex/services/demo.py before it became the capex.demo package (commit 4baf4ce):
# one SHA-256 per table over its rows in id order (ids relative to the first volunteer's,
# surrogate ids and the salted password hash left out). A change to the generator that
# changes what a seed gives changes these.
DIGEST_SEED = 20261201
DIGEST_NOW = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)
# By batch size: each batch draws its own arrays, so the split is part of what a seed gives.
POPULATION_DIGESTS: dict[int, dict[str, str]] = {
    5000: {
        "volunteers": "ad9e683a2a6afa3482732c0bf3faec5d5bbbb748fbbb70306ac56254c2e1e8cb",
        "volunteer_languages": "7aae08005dd6597d8baabe3de56648c54e01fca2b50cfda12d6d46cc6b96cd99",
        "availability_slots": "51777798fed20571a8c6c78e4739606bc96b4441f1cc54ba3ab6c8e71f2c62b4",
        "skill_offers": "5898ec00d509bb4b56707774036303186ac581a35d793f2ca05e59a4ed23ce27",
        "skill_wants": "c579f88f87888e9c6683cbf0e560eeb2667b8648324ac5342668c689962c1910",
    },
    128: {
        "volunteers": "29fe016996c1e7aea03c5918a16d68aca1419df14d43d0686af0dbb19ebadb4c",
        "volunteer_languages": "2d03b166f3165740b5b46a6e0c0421cc11a39fa212fd77cf9f251ef9ee9b4854",
        "availability_slots": "e0353fd1fe2a526fb462cca5e86a3ec3ffc2eed5c165b781e326b9c54c239b47",
        "skill_offers": "6dfa982da4d2167f72998f67f8cb7e0040fbeb240b52c8d3f863efdbde4c20b4",
        "skill_wants": "1aa1e97eb185d811a964e3e7808feaf2f950ab2771610063cf7904683a23a946",
    },
}


def _population_digests(session: Session, first_id: int) -> dict[str, str]:
    """One SHA-256 per demo table over its rows in id order, ids relative to ``first_id``."""
    digests: dict[str, str] = {}
    for model, order in (
        (Volunteer, (Volunteer.id,)),
        (VolunteerLanguage, (VolunteerLanguage.volunteer_id, VolunteerLanguage.position)),
        (AvailabilitySlot, (AvailabilitySlot.id,)),
        (SkillOffer, (SkillOffer.volunteer_id, SkillOffer.position)),
        (SkillWant, (SkillWant.volunteer_id, SkillWant.position)),
    ):
        table = model.__table__
        owner = table.c.id if model is Volunteer else table.c.volunteer_id
        columns = [
            column
            for column in table.columns
            # The web client's language is a choice a person makes, not part of a population.
            if column.name not in ("password_hash", "locale")
            and (column.name != "id" or model is Volunteer)
        ]
        digest = hashlib.sha256()
        for row in session.execute(select(*columns).where(owner >= first_id).order_by(*order)):
            values = [
                value - first_id if column is owner else value
                for column, value in zip(columns, row, strict=True)
            ]
            digest.update(repr([_plain(value) for value in values]).encode())
            digest.update(b"\n")
        digests[table.name] = digest.hexdigest()
    return digests


def _plain(value: Any) -> Any:
    """A value as the same text on every database: timestamps in UTC ISO form, words as str."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, str):
        return str(value)
    return value


@pytest.mark.parametrize("batch_size", sorted(POPULATION_DIGESTS))
def test_a_seed_gives_the_recorded_population(session, monkeypatch, batch_size):
    monkeypatch.setattr(demo_rows, "BATCH_SIZE", batch_size)
    result = _populate(session, seed=DIGEST_SEED, clock=lambda: DIGEST_NOW)
    digests = _population_digests(session, result.first_id)
    assert digests == POPULATION_DIGESTS[batch_size]


def test_same_seed_and_clock_give_the_same_rows_and_another_seed_others(session):
    first = _populate(session, seed=11, clock=lambda: DIGEST_NOW)
    before = _population_digests(session, first.first_id)
    session.rollback()

    again = _populate(session, seed=11, clock=lambda: DIGEST_NOW)
    assert _population_digests(session, again.first_id) == before
    session.rollback()

    other = _populate(session, seed=12, clock=lambda: DIGEST_NOW)
    other_digests = _population_digests(session, other.first_id)
    assert all(other_digests[table] != before[table] for table in before)


def test_same_seed_gives_the_same_people(session):
    first = _populate(session, seed=7)
    before = _snapshot(session, first.first_id)
    session.rollback()

    again = _populate(session, seed=7)
    assert _snapshot(session, again.first_id) == before
    session.rollback()

    other = _populate(session, seed=8)
    assert _snapshot(session, other.first_id) != before


def test_writes_numbered_accounts_with_one_shared_hash(session):
    result = _populate(session)
    assert (result.created, result.last_id - result.first_id + 1) == (SMALL, SMALL)
    rows = session.execute(
        select(Volunteer.id, Volunteer.username, Volunteer.username_key, Volunteer.email)
        .where(Volunteer.id >= result.first_id)
        .order_by(Volunteer.id)
    ).all()
    assert [row.username for row in rows] == [f"demo{i}" for i in range(1, SMALL + 1)]
    assert all(row.username_key == row.username for row in rows)
    assert rows[0].email == "demo1@demo.capex.invalid"
    hashes = session.scalars(
        select(func.count(func.distinct(Volunteer.password_hash))).where(
            Volunteer.id >= result.first_id
        )
    ).one()
    assert hashes == 1


def test_shared_password_signs_in(session):
    settings = Settings(environment="test", secret_key="x" * 40)
    _populate(session, volunteers=20, password="a demo password")
    active = session.scalars(
        select(Volunteer.username)
        .where(Volunteer.username.like("demo%"), Volunteer.is_active.is_(True))
        .limit(1)
    ).one()
    issued = accounts.attempt_sign_in(session, settings, active, "a demo password", "127.0.0.1")
    assert issued.access_token


def test_second_populate_over_the_same_names_conflicts(session):
    _populate(session, volunteers=5)
    with pytest.raises(Conflict, match=r"demo1\b"):
        demo.populate(session, volunteers=5)
    with pytest.raises(Conflict, match=r"demo1\b"):
        demo.populate(session, volunteers=50)


def test_zero_volunteers_is_invalid(session):
    with pytest.raises(Invalid):
        demo.populate(session, volunteers=0)


def test_ids_follow_existing_accounts_and_leave_room_for_new_ones(session):
    existing = make_volunteer(session, "alice")
    result = _populate(session, volunteers=10)
    assert result.first_id > existing.id
    newcomer = accounts.register(
        session,
        RegisterIn(username="bob", email="bob@example.org", password="long enough pw"),
    )
    assert newcomer.id > result.last_id


def test_progress_is_reported_after_each_batch(session, monkeypatch):
    monkeypatch.setattr(demo_rows, "BATCH_SIZE", 100)
    seen: list[int] = []
    _populate(session, volunteers=250, progress=seen.append)
    assert seen == [100, 200, 250]


def test_skill_popularity_is_long_tailed_and_mostly_leaves(session):
    result = _populate(session)
    parents = {row.id: row.parent_id for row in session.execute(select(Skill.id, Skill.parent_id))}
    inner = {parent for parent in parents.values() if parent is not None}
    wanted = Counter(
        session.scalars(select(SkillWant.skill_id).where(SkillWant.volunteer_id >= result.first_id))
    )
    counts = sorted((wanted.get(skill, 0) for skill in parents), reverse=True)
    median = counts[len(counts) // 2]
    assert counts[0] >= 5 * max(median, 1)
    # The ten most wanted skills draw a large share of all wants; most skills are rare.
    assert sum(counts[:10]) > 0.25 * sum(counts)
    leaves = sum(n for skill, n in wanted.items() if skill not in inner)
    assert leaves > 0.8 * sum(wanted.values())


def test_more_learners_than_mentors_and_some_both(session):
    result = _populate(session)
    mentors = set(
        session.scalars(
            select(SkillOffer.volunteer_id).where(SkillOffer.volunteer_id >= result.first_id)
        )
    )
    learners = set(
        session.scalars(
            select(SkillWant.volunteer_id).where(SkillWant.volunteer_id >= result.first_id)
        )
    )
    assert 0.2 * SMALL < len(mentors) < 0.5 * SMALL
    assert len(learners) > 1.5 * len(mentors)
    assert mentors & learners


def test_offers_and_wants_follow_the_profile_rules(session):
    result = _populate(session)
    volunteers = {
        v.id: v for v in session.scalars(select(Volunteer).where(Volunteer.id >= result.first_id))
    }
    offers: dict[int, list[SkillOffer]] = defaultdict(list)
    wants: dict[int, list[SkillWant]] = defaultdict(list)
    for offer in session.scalars(
        select(SkillOffer).where(SkillOffer.volunteer_id >= result.first_id)
    ):
        offers[offer.volunteer_id].append(offer)
    for want in session.scalars(select(SkillWant).where(SkillWant.volunteer_id >= result.first_id)):
        wants[want.volunteer_id].append(want)
    for volunteer_id, volunteer in volunteers.items():
        offered, wanted = offers[volunteer_id], wants[volunteer_id]
        if offered:
            assert 1 <= volunteer.mentor_capacity <= 5
            assert 1 <= len(offered) <= 4
            assert all(2 <= offer.level <= 4 for offer in offered)
        else:
            assert volunteer.mentor_capacity == 0
        assert len(wanted) <= 3
        assert all(1 <= want.level <= 4 for want in wanted)
        assert sorted(o.position for o in offered) == list(range(len(offered)))
        assert not {o.skill_id for o in offered} & {w.skill_id for w in wanted}


def test_slots_are_on_quarter_hours_and_never_overlap(session):
    result = _populate(session)
    slots: dict[tuple[int, int], list[tuple[int, int]]] = defaultdict(list)
    for slot in session.scalars(
        select(AvailabilitySlot).where(AvailabilitySlot.volunteer_id >= result.first_id)
    ):
        assert slot.start_minute % 15 == 0
        assert slot.end_minute % 15 == 0
        assert 0 <= slot.start_minute < slot.end_minute <= 1440
        assert 0 <= slot.weekday <= 6
        slots[(slot.volunteer_id, slot.weekday)].append((slot.start_minute, slot.end_minute))
    for day in slots.values():
        day.sort()
        for (_, end), (start, _) in pairwise(day):
            assert start >= end
    with_slots = {volunteer_id for volunteer_id, _ in slots}
    assert 0.8 * SMALL < len(with_slots) < SMALL


def test_time_zones_regions_and_languages_are_valid(session):
    result = _populate(session)
    volunteers = session.scalars(select(Volunteer).where(Volunteer.id >= result.first_id)).all()
    for volunteer in volunteers:
        assert volunteer.timezone is not None
        check_timezone(volunteer.timezone)
        assert volunteer.region is None or volunteer.region in REGIONS
    assert len({v.timezone for v in volunteers}) > 20
    spoken: dict[int, list[VolunteerLanguage]] = defaultdict(list)
    for language in session.scalars(
        select(VolunteerLanguage).where(VolunteerLanguage.volunteer_id >= result.first_id)
    ):
        assert standardize_language(language.code) == language.code
        assert language.language == language.code.split("-")[0]
        assert 1 <= language.level <= 5
        spoken[language.volunteer_id].append(language)
    assert len(spoken) == SMALL
    for languages in spoken.values():
        languages.sort(key=lambda language: language.position)
        assert languages[0].level == 5
        assert [language.position for language in languages] == list(range(len(languages)))
    english = sum(any(lang.code == "en" for lang in langs) for langs in spoken.values())
    assert english > 0.5 * SMALL


def test_sign_ups_spread_over_two_years_in_id_order(session):
    result = _populate(session)
    rows = session.execute(
        select(Volunteer.created_at, Volunteer.is_active, Volunteer.deactivated_at)
        .where(Volunteer.id >= result.first_id)
        .order_by(Volunteer.id)
    ).all()
    created = [row.created_at for row in rows]
    assert created == sorted(created)
    assert (utcnow() - created[0]).days > 365
    assert created[-1] <= utcnow()
    for row in rows:
        assert (row.deactivated_at is None) == row.is_active


def test_region_profiles_cover_every_region_with_valid_zones_and_languages():
    assert set(demo.REGION_PROFILES) == set(REGIONS)
    for profile in demo.REGION_PROFILES.values():
        for zone in profile.zones:
            check_timezone(zone)
        for code in profile.languages:
            assert standardize_language(code) == code
    zones = {zone for profile in demo.REGION_PROFILES.values() for zone in profile.zones}
    assert {"Asia/Kathmandu", "Asia/Kolkata", "Asia/Tehran", "America/St_Johns"} <= zones
