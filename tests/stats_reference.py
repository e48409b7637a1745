"""The statistics the slow, obvious way: every row loaded, counted in plain Python.

An independent reference for tests/test_stats.py; it shares no code with
capex.services.stats beyond the models. Open slots come from the accepted exchanges
themselves, not from the mentor's counter.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from capex import models


@dataclass
class World:
    volunteers: dict[int, models.Volunteer]
    languages: dict[int, list[models.VolunteerLanguage]]
    offers: list[models.SkillOffer]
    wants: list[models.SkillWant]
    exchanges: list[models.Exchange]
    feedback: list[models.Feedback]
    parent: dict[str, str | None]
    names: dict[str, str]


def load(session: Session) -> World:
    session.expire_all()
    languages: dict[int, list[models.VolunteerLanguage]] = defaultdict(list)
    for language in session.scalars(select(models.VolunteerLanguage)):
        languages[language.volunteer_id].append(language)
    skills = list(session.scalars(select(models.Skill)))
    return World(
        volunteers={v.id: v for v in session.scalars(select(models.Volunteer))},
        languages=languages,
        offers=list(session.scalars(select(models.SkillOffer))),
        wants=list(session.scalars(select(models.SkillWant))),
        exchanges=list(session.scalars(select(models.Exchange))),
        feedback=list(session.scalars(select(models.Feedback))),
        parent={s.id: s.parent_id for s in skills},
        names={s.id: s.name for s in skills},
    )


def root(world: World, skill: str) -> str:
    while world.parent[skill] is not None:
        skill = world.parent[skill]  # type: ignore[assignment]
    return skill


def under(world: World, skill: str, area: str) -> bool:
    current: str | None = skill
    while current is not None:
        if current == area:
            return True
        current = world.parent[current]
    return False


def state_of(exchange: models.Exchange, now: datetime, ttl_days: float) -> str:
    if exchange.state == "requested" and exchange.created_at <= now - timedelta(days=ttl_days):
        return "expired"
    return str(exchange.state)


def speaks(world: World, volunteer_id: int, language: str) -> bool:
    for entry in world.languages[volunteer_id]:
        if language == entry.code or ("-" not in language and language == entry.language):
            return True
    return False


def person_kept(world: World, volunteer: models.Volunteer, f: Any) -> bool:
    if not volunteer.is_active:
        return False
    if f.region is not None and volunteer.region != f.region:
        return False
    return f.language is None or speaks(world, volunteer.id, f.language)


def exchanges_kept(world: World, f: Any) -> list[models.Exchange]:
    kept = []
    for exchange in world.exchanges:
        day: date = exchange.created_at.astimezone(UTC).date()
        if f.since is not None and day < f.since:
            continue
        if f.until is not None and day > f.until:
            continue
        if f.area is not None and not under(world, exchange.skill_id, f.area):
            continue
        learner = world.volunteers[exchange.learner_id]
        if f.region is not None and learner.region != f.region:
            continue
        if f.language is not None and not speaks(world, learner.id, f.language):
            continue
        kept.append(exchange)
    return kept


def open_slots(world: World, volunteer: models.Volunteer) -> int:
    taken = sum(1 for e in world.exchanges if e.mentor_id == volunteer.id and e.state == "accepted")
    return volunteer.mentor_capacity - taken


def hours(exchange: models.Exchange) -> float:
    assert exchange.responded_at is not None
    return (exchange.responded_at - exchange.created_at).total_seconds() / 3600


def median_hours(exchanges: list[models.Exchange]) -> float | None:
    answered = [hours(e) for e in exchanges if e.responded_at is not None]
    return statistics.median(answered) if answered else None


def overview(world: World, f: Any, now: datetime, ttl_days: float) -> dict[str, Any]:
    recent = now - timedelta(days=30)
    people = [v for v in world.volunteers.values() if person_kept(world, v, f)]
    in_area = (lambda s: under(world, s, f.area)) if f.area else (lambda s: True)
    offering = {o.volunteer_id for o in world.offers if in_area(o.skill_id)}
    wanting = {w.volunteer_id for w in world.wants if in_area(w.skill_id)}
    mentors = [v for v in people if v.mentor_capacity > 0 and v.id in offering]
    kept = exchanges_kept(world, f)
    states = Counter(state_of(e, now, ttl_days) for e in kept)
    waiting = states["requested"]
    decided = len(kept) - waiting
    ever_accepted = sum(1 for e in kept if e.accepted_at is not None)
    ended = sum(1 for e in kept if e.accepted_at is not None and e.state != "accepted")
    everyone = [
        v
        for v in world.volunteers.values()
        if (f.region is None or v.region == f.region)
        and (f.language is None or speaks(world, v.id, f.language))
    ]
    return {
        "volunteers": len(people),
        "active_volunteers_30d": sum(
            1 for v in people if v.last_seen_at is not None and v.last_seen_at >= recent
        ),
        "new_volunteers_30d": sum(1 for v in everyone if v.created_at >= recent),
        "mentors": len(mentors),
        "mentors_with_open_slots": sum(1 for v in mentors if open_slots(world, v) > 0),
        "learners": sum(1 for v in people if v.id in wanting),
        "exchanges": {
            s: states[s]
            for s in ("requested", "accepted", "declined", "cancelled", "expired", "completed")
        },
        "requests_waiting": waiting,
        "acceptance_rate": ever_accepted / decided if decided else None,
        "completion_rate": states["completed"] / ended if ended else None,
        "expiry_rate": states["expired"] / decided if decided else None,
        "median_response_hours": median_hours(kept),
    }


def skills(world: World, f: Any, now: datetime, ttl_days: float, level: str) -> list[dict]:
    key = (lambda s: s) if level == "skill" else (lambda s: root(world, s))
    keys = [s for s in world.parent if level == "skill" or world.parent[s] is None]
    if f.area is not None:
        keys = [s for s in keys if under(world, s, f.area)]
    kept_people = {v.id for v in world.volunteers.values() if person_kept(world, v, f)}
    mentors: dict[str, set[int]] = defaultdict(set)
    in_area = (lambda s: under(world, s, f.area)) if f.area else (lambda s: True)
    for offer in world.offers:
        v = world.volunteers[offer.volunteer_id]
        if v.id in kept_people and v.mentor_capacity > 0 and in_area(offer.skill_id):
            mentors[key(offer.skill_id)].add(v.id)
    learners: dict[str, set[int]] = defaultdict(set)
    for want in world.wants:
        if want.volunteer_id in kept_people and in_area(want.skill_id):
            learners[key(want.skill_id)].add(want.volunteer_id)
    by_key: dict[str, list[models.Exchange]] = defaultdict(list)
    for exchange in exchanges_kept(world, f):
        by_key[key(exchange.skill_id)].append(exchange)
    rows = []
    for k in keys:
        slots = sum(open_slots(world, world.volunteers[m]) for m in mentors[k])
        ex = by_key[k]
        rows.append(
            {
                "skill": k,
                "name": world.names[k],
                "offered": len(mentors[k]),
                "open_slots": slots,
                "wanted": len(learners[k]),
                "gap": len(learners[k]) - slots,
                "requested": len(ex),
                "accepted": sum(1 for e in ex if e.accepted_at is not None),
                "completed": sum(1 for e in ex if e.state == "completed"),
                "expired": sum(1 for e in ex if state_of(e, now, ttl_days) == "expired"),
                "median_response_hours": median_hours(ex),
            }
        )
    rows.sort(key=lambda r: (-r["gap"], r["skill"]))
    return rows


def funnel(world: World, f: Any, now: datetime, ttl_days: float) -> dict[str, Any]:
    kept = exchanges_kept(world, f)
    rated = {fb.exchange_id for fb in world.feedback}
    counts = {
        "requested": len(kept),
        "answered": sum(1 for e in kept if e.responded_at is not None),
        "accepted": sum(1 for e in kept if e.accepted_at is not None),
        "completed": sum(1 for e in kept if e.state == "completed"),
        "feedback": sum(1 for e in kept if e.state == "completed" and e.id in rated),
    }
    stages, previous = [], None
    for stage, count in counts.items():
        stages.append(
            {
                "stage": stage,
                "count": count,
                "share_of_previous": count / previous if previous else None,
            }
        )
        previous = count
    states = Counter(state_of(e, now, ttl_days) for e in kept)
    return {
        "stages": stages,
        "lost": {s: states[s] for s in ("declined", "cancelled", "expired")},
    }


def period(day: date, interval: str) -> str:
    if interval == "month":
        return day.strftime("%Y-%m")
    return day.strftime("%G-W%V")


def timeline(world: World, f: Any, now: datetime, ttl_days: float, interval: str) -> list[dict]:
    events: list[tuple[str, datetime]] = []
    for v in world.volunteers.values():
        if (f.region is None or v.region == f.region) and (
            f.language is None or speaks(world, v.id, f.language)
        ):
            events.append(("new_volunteers", v.created_at))
    for e in exchanges_kept(world, f):
        events.append(("requested", e.created_at))
        if e.accepted_at is not None:
            events.append(("accepted", e.accepted_at))
        if e.state == "completed":
            events.append(("completed", e.closed_at))
        if e.state == "expired":
            events.append(("expired", e.closed_at))
        elif state_of(e, now, ttl_days) == "expired":
            events.append(("expired", e.created_at + timedelta(days=ttl_days)))
    if not events:
        return []
    days = [at.astimezone(UTC).date() for _, at in events]
    rows: dict[str, dict[str, Any]] = {}
    day = min(days)
    while day <= max(days):
        rows.setdefault(
            period(day, interval),
            {"period": period(day, interval)}
            | dict.fromkeys(("new_volunteers", "requested", "accepted", "completed", "expired"), 0),
        )
        day += timedelta(days=1)
    for (figure, _), day in zip(events, days, strict=True):
        rows[period(day, interval)][figure] += 1
    return [rows[key] for key in sorted(rows)]


def can_teach(world: World, f: Any, learner: models.Volunteer, language: str | None) -> bool:
    wanted = {
        w.skill_id
        for w in world.wants
        if w.volunteer_id == learner.id and (f.area is None or under(world, w.skill_id, f.area))
    }
    for offer in world.offers:
        mentor = world.volunteers[offer.volunteer_id]
        if (
            offer.skill_id in wanted
            and mentor.id != learner.id
            and mentor.is_active
            and mentor.accepted_as_mentor < mentor.mentor_capacity
            and (
                language is None or any(x.language == language for x in world.languages[mentor.id])
            )
        ):
            return True
    return False


def people_row(world: World, f: Any, people: list[models.Volunteer], language: str | None) -> dict:
    in_area = (lambda s: under(world, s, f.area)) if f.area else (lambda s: True)
    offering = {o.volunteer_id for o in world.offers if in_area(o.skill_id)}
    wanting = {w.volunteer_id for w in world.wants if in_area(w.skill_id)}
    mentors = [v for v in people if v.mentor_capacity > 0 and v.id in offering]
    learners = [v for v in people if v.id in wanting]
    return {
        "volunteers": len(people),
        "mentors": len(mentors),
        "open_slots": sum(open_slots(world, v) for v in mentors),
        "learners": len(learners),
        "waiting_learners": sum(1 for v in learners if not can_teach(world, f, v, language)),
    }


def regions(world: World, f: Any, now: datetime, ttl_days: float) -> list[dict]:
    people = [v for v in world.volunteers.values() if person_kept(world, v, f)]
    kept = exchanges_kept(world, f)
    keys = {v.region for v in people} | {world.volunteers[e.learner_id].region for e in kept}
    rows = []
    for region in sorted(keys, key=lambda r: (r is None, r or "")):
        ex = [e for e in kept if world.volunteers[e.learner_id].region == region]
        rows.append(
            {"region": region}
            | people_row(world, f, [v for v in people if v.region == region], None)
            | {"requested": len(ex), "completed": sum(1 for e in ex if e.state == "completed")}
        )
    return rows


def languages(world: World, f: Any, now: datetime, ttl_days: float) -> list[dict]:
    def spoken(volunteer_id: int) -> set[str]:
        return {x.language for x in world.languages[volunteer_id]}

    people = [v for v in world.volunteers.values() if person_kept(world, v, f)]
    kept = exchanges_kept(world, f)
    keys = set().union(*(spoken(v.id) for v in people), *(spoken(e.learner_id) for e in kept))
    if f.language is not None:
        keys &= {f.language.split("-")[0]}
    rows = []
    for language in sorted(keys):
        ex = [e for e in kept if language in spoken(e.learner_id)]
        rows.append(
            {"language": language}
            | people_row(world, f, [v for v in people if language in spoken(v.id)], language)
            | {"requested": len(ex), "completed": sum(1 for e in ex if e.state == "completed")}
        )
    return rows


def person(world: World, volunteer_id: int) -> dict[str, Any]:
    v = world.volunteers[volunteer_id]
    return {"id": v.id, "username": v.username, "display_name": v.display_name}


def mentors(world: World, f: Any, now: datetime, ttl_days: float, limit: int) -> dict[str, Any]:
    people = [v for v in world.volunteers.values() if person_kept(world, v, f)]
    in_area = (lambda s: under(world, s, f.area)) if f.area else (lambda s: True)
    offering = {o.volunteer_id for o in world.offers if in_area(o.skill_id)}
    load = Counter(
        v.mentor_capacity - open_slots(world, v)
        for v in people
        if v.mentor_capacity > 0 and v.id in offering
    )
    kept = exchanges_kept(world, f)
    waiting = sorted(
        (e for e in kept if state_of(e, now, ttl_days) == "requested"),
        key=lambda e: (e.created_at, e.id),
    )[:limit]
    completed = Counter(e.mentor_id for e in kept if e.state == "completed")
    kept_ids = {e.id for e in kept}
    rated: dict[int, list[int]] = defaultdict(list)
    for fb in world.feedback:
        if fb.author_role == "learner" and fb.exchange_id in kept_ids:
            rated[fb.subject_id].append(fb.rating)
    top = sorted(completed, key=lambda m: (-completed[m], m))[:limit]
    return {
        "load": [{"accepted_now": n, "mentors": load[n]} for n in range(max(load, default=-1) + 1)],
        "waiting_requests": [
            {
                "exchange_id": e.id,
                "mentor": person(world, e.mentor_id),
                "skill": e.skill_id,
                "waiting_days": (now - e.created_at).total_seconds() / 86400,
            }
            for e in waiting
        ],
        "top": [
            {
                "mentor": person(world, m),
                "completed": completed[m],
                "rating": statistics.mean(rated[m]) if rated[m] else None,
                "ratings": len(rated[m]),
            }
            for m in top
        ],
    }
