"""The engine's inputs and outputs: plain frozen dataclasses, no ORM."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Role = Literal["learner", "mentor"]
"""Which side the asking volunteer takes: ``learner`` finds mentors, ``mentor`` finds learners."""

ROLES: tuple[Role, ...] = ("learner", "mentor")


@dataclass(frozen=True, slots=True)
class VolunteerRecord:
    """One volunteer as the engine sees them.

    Attributes
    ----------
    id : int
        The volunteer's id.
    active : bool
        False for a deactivated volunteer: never matched.
    timezone : str or None
        IANA time zone of the slots (``"Asia/Kathmandu"``); None if not given.
    languages : tuple of (str, int)
        ``(BCP 47 code, level 1..5)``; 5 is native. Compared by primary subtag, so ``pt-BR``
        and ``pt`` are the same language.
    slots : tuple of (int, int, int)
        Weekly availability ``(weekday 0=Mon..6, start_minute, end_minute)`` in the volunteer's
        own time zone; minutes are multiples of 15, ``0 <= start < end <= 1440``.
    offers : tuple of (str, int)
        ``(skill id, level 1..4)`` the volunteer can teach.
    wants : tuple of (str, int)
        ``(skill id, target level 1..4)`` the volunteer wants to learn.
    open_slots : int
        Mentor capacity minus accepted exchanges as mentor; a mentor needs at least one.
    version : int
        A number that grows with every change of the volunteer (the service gives its
        ``updated_at`` in microseconds); the index keeps it per row (``MatchIndex.version_of``)
        so its owner can tell whether the held row is at least as new as a given change.
    """

    id: int
    active: bool = True
    timezone: str | None = None
    languages: tuple[tuple[str, int], ...] = ()
    slots: tuple[tuple[int, int, int], ...] = ()
    offers: tuple[tuple[str, int], ...] = ()
    wants: tuple[tuple[str, int], ...] = ()
    open_slots: int = 0
    version: int = 0


@dataclass(frozen=True, slots=True)
class Match:
    """One ranked counterpart, with the parts of its score.

    Attributes
    ----------
    volunteer_id : int
        The counterpart (a mentor when asking as learner, a learner when asking as mentor).
    skill : str
        The mentor's offered skill the exchange would be about.
    wanted_skill : str
        The learner's wanted skill it serves (the same as ``skill`` or a related one).
    score : float
        In [0, 1]; higher is better.
    skill_similarity : float
        Taxonomy similarity of ``wanted_skill`` and ``skill``, in (0, 1].
    level_fit : float
        1.0 when the mentor's level reaches the learner's target, lower below it.
    overlap_minutes_per_week : int or None
        Shared available minutes in the coming week; None when either side gave no availability.
    shared_languages : tuple of str
        Primary language subtags both speak, best shared level first, then alphabetical.
    """

    volunteer_id: int
    skill: str
    wanted_skill: str
    score: float
    skill_similarity: float
    level_fit: float
    overlap_minutes_per_week: int | None
    shared_languages: tuple[str, ...]

    @property
    def reasons(self) -> dict[str, object]:
        """The parts of the score a person can check, keyed as in the HTTP API."""
        return {
            "skill_similarity": self.skill_similarity,
            "level_fit": self.level_fit,
            "overlap_minutes_per_week": self.overlap_minutes_per_week,
            "shared_languages": list(self.shared_languages),
            "wanted_skill": self.wanted_skill,
        }


@dataclass(frozen=True, slots=True)
class AvailabilityChange:
    """Add a weekly slot ``(weekday, start_minute, end_minute)`` on the asker's own wall clock.

    The slot lies on no slot the asker already has that weekday, so it can be appended to the
    profile as it is.
    """

    weekday: int
    start_minute: int
    end_minute: int


@dataclass(frozen=True, slots=True)
class LanguageChange:
    """Add a language (a primary subtag such as ``"es"``), at any level."""

    language: str


@dataclass(frozen=True, slots=True)
class SkillChange:
    """Add a skill to the asker's side: a want as learner, an offer as mentor."""

    skill: str


ProfileChange = AvailabilityChange | LanguageChange | SkillChange


@dataclass(frozen=True, slots=True)
class Suggestion:
    """A change to the asker's profile and the counterparts it would add.

    Attributes
    ----------
    change : AvailabilityChange, LanguageChange or SkillChange
    would_add : int
        Counterparts listing the skill exactly (the explained one; for a ``SkillChange``, the
        suggested one) that the query would list after the change and does not list now.
    """

    change: ProfileChange
    would_add: int


@dataclass(frozen=True, slots=True)
class SkillExplanation:
    """Why one of the asker's skills finds the counterparts it does: a funnel, and fixes.

    Counterparts are the live, active volunteers other than the asker who list ``skill``
    exactly on the other side (an offer when asking as learner, a want as mentor). Each
    stage counts those of the stage before that pass one more rule of ``query``.

    Attributes
    ----------
    skill : str
        The asker's own skill (a want as learner, an offer as mentor).
    offering : int
        Counterparts listing ``skill``.
    sharing_language : int
        Of those, the ones sharing a language with the asker.
    overlapping : int
        Of those, the ones free when the asker is (or either gave no availability).
    with_open_slot : int
        Of those, the ones whose pair has a mentor with an open slot: as learner, the
        counterpart mentors with one; as mentor, all of them when the asker has one, else 0.
        It is how many counterparts listing ``skill`` exactly ``query(skill=skill)`` lists.
    suggestions : tuple of Suggestion
        The changes that would add the most counterparts, most first.
    """

    skill: str
    offering: int
    sharing_language: int
    overlapping: int
    with_open_slot: int
    suggestions: tuple[Suggestion, ...]
