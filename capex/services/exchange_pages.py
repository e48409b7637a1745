"""What the web client's exchange pages and inbox show, each page's view made by one call:
an exchange with its trail, feedback, thread and the actions its viewer may take; the
exchanges list with the requests waiting for the viewer; the inbox with the exchange each
notification is about (its people and skill, read in one query), so that the page can word
every item in its reader's language."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from capex.config import Settings
from capex.matching import next_week_start
from capex.models import Exchange, Feedback, Skill, Volunteer
from capex.services import exchanges, meetings, notifications, profiles
from capex.services.exchanges import EventView, ExchangeList, ExchangeView, MessagePage
from capex.services.exchanges.lifecycle import TRANSITIONS
from capex.services.meeting_times import weekly_overlap
from capex.services.meetings import MeetingPlan
from capex.services.notifications import InboxPage
from capex.services.profiles import PublicProfile
from capex.vocabulary import ExchangeAction, ExchangeState, Party, Side

# How many messages of a thread one page shows (oldest first).
THREAD_PAGE = 100
# How many coming meeting times an accepted exchange's page offers, and how far ahead.
MEETINGS_SHOWN = 6
MEETING_WEEKS = 2
# How many waiting requests the exchanges page lists for their mentor.
WAITING_SHOWN = 100


def skill_names(session: Session, ids: Iterable[str]) -> dict[str, str]:
    """The name of each of these skills, by id."""
    wanted = set(ids)
    if not wanted:
        return {}
    rows = session.execute(select(Skill.id, Skill.name).where(Skill.id.in_(wanted)))
    return {skill_id: name for skill_id, name in rows}


def actions_for(state: ExchangeState, side: Side | None) -> tuple[ExchangeAction, ...]:
    """The actions of the transition table ``side`` may take on an exchange in ``state``."""
    if side is None:
        return ()
    party = Party(side)
    return tuple(t.action for t in TRANSITIONS if t.from_state == state and party in t.who)


@dataclass(frozen=True, slots=True)
class ExchangePage:
    """One exchange as its page shows it to ``side`` (None: a coordinator who takes no part).

    ``thread`` is None for a coordinator (messages are private to the participants);
    ``can_give_feedback`` says the viewer may still rate the other participant;
    ``meetings`` are the coming times both are free, for the participants of an accepted
    exchange (else None).
    """

    exchange: ExchangeView
    side: Side | None
    skill_name: str
    trail: list[EventView]
    feedback: list[Feedback]
    thread: MessagePage | None
    actions: tuple[ExchangeAction, ...]
    can_give_feedback: bool
    can_write: bool
    meetings: MeetingPlan | None


def exchange_page(
    session: Session,
    settings: Settings,
    exchange_id: int,
    viewer: Volunteer,
    *,
    now: datetime,
    after_id: int | None = None,
) -> ExchangePage:
    """An exchange for its participants and coordinators (anyone else: 404)."""
    found = exchanges.read(session, settings, exchange_id, viewer)
    side = (
        Side.LEARNER
        if found.learner.id == viewer.id
        else Side.MENTOR
        if found.mentor.id == viewer.id
        else None
    )
    given = exchanges.feedback_on(session, exchange_id, viewer)
    thread = plan = None
    if side is not None:
        thread = exchanges.thread(
            session, exchange_id, viewer, limit=THREAD_PAGE, after_id=after_id
        )
        if found.state == ExchangeState.ACCEPTED:
            plan = meetings.meeting_times(
                session, settings, exchange_id, viewer, weeks=MEETING_WEEKS, now=now
            )
            plan = MeetingPlan(
                plan.exchange, plan.items[:MEETINGS_SHOWN], plan.without_availability
            )
    return ExchangePage(
        exchange=found,
        side=side,
        skill_name=skill_names(session, [found.skill]).get(found.skill, found.skill),
        trail=exchanges.trail(session, exchange_id, viewer),
        feedback=given,
        thread=thread,
        actions=actions_for(found.state, side),
        can_give_feedback=side is not None
        and found.state == ExchangeState.COMPLETED
        and not any(item.author_id == viewer.id for item in given),
        can_write=side is not None and found.state.is_open,
        meetings=plan,
    )


@dataclass(frozen=True, slots=True)
class ExchangesPage:
    """The viewer's exchanges: the requests waiting for them as mentor, how many more
    learners they can take, and one page of all their exchanges (filtered)."""

    waiting: list[ExchangeView]
    open_slots: int
    listed: ExchangeList
    skill_names: dict[str, str]
    # The learners of the waiting requests, by id: who they are, what they aim for.
    learners: dict[int, PublicProfile]
    # Minutes a week each waiting learner and the viewer are both free (None: one gave none).
    shared_minutes: dict[int, int | None]


def exchanges_page(
    session: Session,
    settings: Settings,
    viewer: Volunteer,
    *,
    state: ExchangeState | None,
    role: Side | None,
    before_id: int | None,
    limit: int,
    now: datetime,
) -> ExchangesPage:
    """The viewer's exchanges as learner and as mentor, the waiting requests first."""
    waiting = exchanges.list_exchanges(
        session,
        settings,
        viewer,
        state=ExchangeState.REQUESTED,
        role=Side.MENTOR,
        everyone=False,
        before_id=None,
        limit=WAITING_SHOWN,
    ).items
    listed = exchanges.list_exchanges(
        session,
        settings,
        viewer,
        state=state,
        role=role,
        everyone=False,
        before_id=before_id,
        limit=limit,
    )
    slots = profiles.open_slots_by_id(session, [viewer.id]).get(viewer.id, 0)
    names = skill_names(session, {item.skill for item in (*waiting, *listed.items)})
    learner_ids = sorted({item.learner.id for item in waiting})
    rows = session.scalars(
        select(Volunteer).where(Volunteer.id.in_(learner_ids)).options(*profiles.profile_options())
    ).all()
    learners = {profile.id: profile for profile in profiles.public_profiles(session, list(rows))}
    me = profiles.my_profile(session, viewer.id)
    week = next_week_start(now)
    shared = {
        learner_id: _shared_minutes(me, profile, week) for learner_id, profile in learners.items()
    }
    return ExchangesPage(waiting, max(0, slots), listed, names, learners, shared)


def _shared_minutes(me: PublicProfile, other: PublicProfile, week: datetime) -> int | None:
    if not (me.timezone and other.timezone and me.availability and other.availability):
        return None
    pieces = weekly_overlap(
        [(slot.weekday, slot.start, slot.end) for slot in me.availability],
        me.timezone,
        [(slot.weekday, slot.start, slot.end) for slot in other.availability],
        other.timezone,
        week,
    )
    return sum(piece.minutes for piece in pieces)


@dataclass(frozen=True, slots=True)
class InboxView:
    """One page of an inbox and the exchanges its items are about (the reader's own), by
    id, with their skills' names."""

    page: InboxPage
    exchanges: dict[int, ExchangeView]
    skill_names: dict[str, str]


def inbox_view(
    session: Session,
    settings: Settings,
    reader: Volunteer,
    *,
    unread_only: bool,
    before_id: int | None,
    limit: int,
) -> InboxView:
    """A volunteer's notifications, newest first, each with its exchange."""
    page = notifications.inbox(
        session, reader.id, unread_only=unread_only, before_id=before_id, limit=limit
    )
    ids = {item.exchange_id for item in page.items if item.exchange_id is not None}
    rows: list[Exchange] = []
    if ids:
        rows = list(
            session.scalars(
                select(Exchange).where(
                    Exchange.id.in_(ids),
                    or_(Exchange.learner_id == reader.id, Exchange.mentor_id == reader.id),
                )
            )
        )
    found = {view.id: view for view in exchanges.views(session, settings, rows)}
    names = skill_names(session, {view.skill for view in found.values()})
    return InboxView(page, found, names)
