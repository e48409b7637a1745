"""A page of matches for a person to read: each ranked counterpart with what the reasons
stand for (the skill names, the mentor's level and the learner's target, the counterpart's
profile) and the weekly times both are free on both people's clocks; plus the explanation
of why there are so few and what would add more."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from capex.matching import next_week_start
from capex.models import Skill, Volunteer
from capex.services import profiles
from capex.services.matches import (
    MatchingService,
    MatchView,
    SkillChange,
    SkillExplain,
    explained_matches,
)
from capex.services.meeting_times import SharedSlot, weekly_overlap
from capex.services.profiles import OwnProfile, PublicProfile, WeeklySlot
from capex.vocabulary import Side


@dataclass(frozen=True, slots=True)
class MatchCard:
    """One ranked counterpart as the page shows it.

    ``mentor_level`` is the mentor's level in ``match.skill``; ``target_level`` the level
    the learner aims for in ``match.reasons.wanted_skill``. ``shared`` are the weekly
    stretches both are free, on the viewer's clock (``a``) and the counterpart's (``b``).
    """

    match: MatchView
    counterpart: PublicProfile
    skill_name: str
    wanted_skill_name: str
    mentor_level: int | None
    target_level: int | None
    shared: tuple[SharedSlot, ...]


@dataclass(frozen=True, slots=True)
class MatchesPage:
    """What the matches page shows: who asks, on which side, the cards and the explanation."""

    side: Side
    me: OwnProfile
    cards: list[MatchCard]
    explain: list[SkillExplain]
    skill_names: dict[str, str]


def _slots(availability: tuple[WeeklySlot, ...]) -> list[tuple[int, str, str]]:
    return [(slot.weekday, slot.start, slot.end) for slot in availability]


def _level(entries: tuple[profiles.SkillEntry, ...], skill: str) -> int | None:
    return next((entry.level for entry in entries if entry.skill == skill), None)


def matches_page(
    session: Session,
    matching: MatchingService,
    volunteer: Volunteer,
    *,
    side: Side,
    skill: str | None = None,
    limit: int = 20,
    now: datetime,
) -> MatchesPage:
    """The ranked counterparts of ``volunteer`` on ``side``, each with its reasons spelt out."""
    found = explained_matches(session, matching, volunteer, side=side, skill=skill, limit=limit)
    me = profiles.my_profile(session, volunteer.id)
    ids = [view.volunteer.id for view in found.items]
    rows = session.scalars(
        select(Volunteer).where(Volunteer.id.in_(ids)).options(*profiles.profile_options())
    ).all()
    by_id = {profile.id: profile for profile in profiles.public_profiles(session, list(rows))}
    skill_ids = {view.skill for view in found.items} | {
        view.reasons.wanted_skill for view in found.items
    }
    skill_ids |= {item.skill for item in found.explain}
    skill_ids |= {
        suggestion.change.skill
        for item in found.explain
        for suggestion in item.suggestions
        if isinstance(suggestion.change, SkillChange)
    }
    skill_ids |= {entry.skill for entry in (*me.offers, *me.wants)}
    rows_of_names = session.execute(select(Skill.id, Skill.name).where(Skill.id.in_(skill_ids)))
    names = {skill_id: name for skill_id, name in rows_of_names}
    week = next_week_start(now)
    cards = []
    for view in found.items:
        other = by_id.get(view.volunteer.id)
        if other is None:
            continue
        mentor, learner = (other, me) if side == Side.LEARNER else (me, other)
        shared: tuple[SharedSlot, ...] = ()
        if me.timezone and other.timezone and me.availability and other.availability:
            shared = tuple(
                weekly_overlap(
                    _slots(me.availability),
                    me.timezone,
                    _slots(other.availability),
                    other.timezone,
                    week,
                )
            )
        cards.append(
            MatchCard(
                match=view,
                counterpart=other,
                skill_name=names.get(view.skill, view.skill),
                wanted_skill_name=names.get(view.reasons.wanted_skill, view.reasons.wanted_skill),
                mentor_level=_level(mentor.offers, view.skill),
                target_level=_level(learner.wants, view.reasons.wanted_skill),
                shared=shared,
            )
        )
    return MatchesPage(side, me, cards, found.explain, names)
