"""Coordinators nudging mentors: the requests waiting long for an answer, who is full and
who is idle, and a reminder to the mentor of a waiting request, at most once a day.

When a request was last reminded is read from the inbox itself: the newest notification of
kind ``mentor_reminder`` about that exchange. No table of its own is needed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, exists, func, select
from sqlalchemy.orm import Session, aliased

from capex.config import Settings
from capex.errors import Forbidden
from capex.models import Exchange, Notification, Skill, SkillOffer, Volunteer
from capex.services import notifications
from capex.services.exchanges.lifecycle import expiry_cutoff
from capex.services.profiles import VolunteerRef
from capex.vocabulary import ExchangeState, NotificationKind, Role

REMINDER_INTERVAL = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class WaitingRequest:
    """A request still waiting for its mentor's answer (not yet expired)."""

    exchange_id: int
    mentor: VolunteerRef
    learner: VolunteerRef
    skill: str
    skill_name: str
    waiting_days: float
    reminded_at: datetime | None


@dataclass(frozen=True, slots=True)
class MentorRoster:
    """Mentors by how they stand: full (no open slot), and idle (open slots, no request
    waiting for them)."""

    full: list[VolunteerRef]
    idle: list[VolunteerRef]


@dataclass(frozen=True, slots=True)
class RemindResult:
    """Which requests' mentors were reminded, which were skipped (reminded in the last 24
    hours), and which are no longer waiting (answered, expired, or unknown)."""

    sent: tuple[int, ...]
    skipped: tuple[int, ...]
    not_waiting: tuple[int, ...] = ()


def _ref(volunteer: Volunteer) -> VolunteerRef:
    return VolunteerRef(volunteer.id, volunteer.username, volunteer.display_name)


def _last_reminders(session: Session, exchange_ids: Iterable[int]) -> dict[int, datetime]:
    ids = sorted(set(exchange_ids))
    if not ids:
        return {}
    rows = session.execute(
        select(Notification.exchange_id, func.max(Notification.created_at))
        .where(
            Notification.kind == NotificationKind.MENTOR_REMINDER,
            Notification.exchange_id.in_(ids),
        )
        .group_by(Notification.exchange_id)
    )
    return {int(exchange_id): at for exchange_id, at in rows if exchange_id is not None}


def _waiting(settings: Settings, now: datetime) -> list[ColumnElement[bool]]:
    return [
        Exchange.state == ExchangeState.REQUESTED,
        Exchange.created_at > expiry_cutoff(settings, now),
    ]


def waiting_requests(
    session: Session, settings: Settings, *, older_than_days: int, now: datetime, limit: int = 200
) -> list[WaitingRequest]:
    """Requests waiting for an answer for more than ``older_than_days`` days, oldest first."""
    mentor, learner = aliased(Volunteer), aliased(Volunteer)
    rows = session.execute(
        select(Exchange, mentor, learner, Skill.name)
        .join(mentor, mentor.id == Exchange.mentor_id)
        .join(learner, learner.id == Exchange.learner_id)
        .join(Skill, Skill.id == Exchange.skill_id)
        .where(
            *_waiting(settings, now),
            Exchange.created_at <= now - timedelta(days=older_than_days),
        )
        .order_by(Exchange.created_at, Exchange.id)
        .limit(limit)
    ).all()
    reminded = _last_reminders(session, (row[0].id for row in rows))
    return [
        WaitingRequest(
            exchange_id=exchange.id,
            mentor=_ref(mentor_row),
            learner=_ref(learner_row),
            skill=exchange.skill_id,
            skill_name=skill_name,
            waiting_days=round((now - exchange.created_at).total_seconds() / 86400, 1),
            reminded_at=reminded.get(exchange.id),
        )
        for exchange, mentor_row, learner_row, skill_name in rows
    ]


def mentor_roster(session: Session, settings: Settings, *, now: datetime) -> MentorRoster:
    """Active mentors who are full, and those with open slots and no request waiting."""
    is_mentor = and_(
        Volunteer.is_active.is_(True),
        Volunteer.mentor_capacity > 0,
        exists().where(SkillOffer.volunteer_id == Volunteer.id),
    )
    full = session.scalars(
        select(Volunteer)
        .where(is_mentor, Volunteer.accepted_as_mentor >= Volunteer.mentor_capacity)
        .order_by(Volunteer.username)
    )
    asked = exists().where(Exchange.mentor_id == Volunteer.id, *_waiting(settings, now))
    idle = session.scalars(
        select(Volunteer)
        .where(is_mentor, Volunteer.accepted_as_mentor < Volunteer.mentor_capacity, ~asked)
        .order_by(Volunteer.username)
    )
    return MentorRoster(full=[_ref(v) for v in full], idle=[_ref(v) for v in idle])


def remind_mentors(
    session: Session,
    settings: Settings,
    exchange_ids: Iterable[int],
    *,
    by: Volunteer,
    now: datetime,
) -> RemindResult:
    """Remind the mentor of each waiting request in ``exchange_ids``, unless that request's
    mentor was reminded in the last 24 hours. Only a coordinator may."""
    if by.role != Role.COORDINATOR:
        raise Forbidden("only coordinators may remind mentors")
    ids = sorted(set(exchange_ids))
    learner = aliased(Volunteer)
    # The exchange rows are locked: two coordinators reminding at once send one reminder.
    rows = session.execute(
        select(Exchange, learner.display_name, Skill.name)
        .join(learner, learner.id == Exchange.learner_id)
        .join(Skill, Skill.id == Exchange.skill_id)
        .where(Exchange.id.in_(ids), *_waiting(settings, now))
        .with_for_update(of=Exchange)
    ).all()
    found = {row[0].id: row for row in rows}
    reminded = _last_reminders(session, found)
    sent: list[int] = []
    skipped: list[int] = []
    for exchange_id in ids:
        if exchange_id not in found:
            continue
        last = reminded.get(exchange_id)
        if last is not None and now - last < REMINDER_INTERVAL:
            skipped.append(exchange_id)
            continue
        exchange, learner_name, skill_name = found[exchange_id]
        notifications.notify(
            session,
            settings,
            exchange.mentor_id,
            NotificationKind.MENTOR_REMINDER,
            f"A coordinator reminds you: {learner_name} is waiting for your answer "
            f"about {skill_name}.",
            exchange_id=exchange.id,
            now=now,
        )
        sent.append(exchange_id)
    session.flush()
    not_waiting = tuple(i for i in ids if i not in found)
    return RemindResult(sent=tuple(sent), skipped=tuple(skipped), not_waiting=not_waiting)
