"""The plain scorer: one pair at a time, with sets, dicts and zoneinfo.

It is the specification the vectorised :class:`~capex.matching.index.MatchIndex` is tested
against (same scores to 1e-9, same order); it shares no code with it beyond the record and match
types. Quadratic and slow on purpose: read it, don't deploy it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from capex.matching.types import (
    AvailabilityChange,
    LanguageChange,
    Match,
    Role,
    SkillChange,
    SkillExplanation,
    Suggestion,
    VolunteerRecord,
)

MINUTES_PER_WEEK = 7 * 24 * 60
SIMILARITY_QUANTUM = 2.0**-32
# Morning, afternoon and evening, in minutes after local midnight (as ``MatchIndex``).
DAY_PARTS = ((360, 720), (720, 1080), (1080, 1440))


class ReferenceMatcher:
    """Scores and ranks pairs the slow, obvious way; parameters as for ``SkillSpace`` and
    ``MatchIndex``.

    Parameters
    ----------
    parents : mapping of str to str or None
        Every skill id and its parent's id (None for a root area).
    week_start : datetime
        Aware Monday 00:00 UTC that starts the coming week.
    decay, min_similarity : float
        As for :class:`~capex.matching.taxonomy.SkillSpace`.
    level_decay, base_weight, availability_weight, language_weight : float
        As for :class:`~capex.matching.index.MatchIndex`.
    overlap_saturation_minutes : int
        As for :class:`~capex.matching.index.MatchIndex`.
    unknown_availability : float
        As for :class:`~capex.matching.index.MatchIndex`.
    """

    def __init__(
        self,
        parents: Mapping[str, str | None],
        week_start: datetime,
        *,
        decay: float = 0.5,
        min_similarity: float = 0.1,
        level_decay: float = 0.5,
        base_weight: float = 0.55,
        availability_weight: float = 0.30,
        language_weight: float = 0.15,
        overlap_saturation_minutes: int = 120,
        unknown_availability: float = 0.5,
    ) -> None:
        self.parents = dict(parents)
        self.week_start = week_start
        self.decay = decay
        self.min_similarity = min_similarity
        self.level_decay = level_decay
        self.base_weight = base_weight
        self.availability_weight = availability_weight
        self.language_weight = language_weight
        self.overlap_saturation_minutes = overlap_saturation_minutes
        self.unknown_availability = unknown_availability
        self._minutes: dict[VolunteerRecord, set[int] | None] = {}

    # -- skills ------------------------------------------------------------------------------

    def skill_vector(self, skill: str) -> dict[str, float]:
        """The skill, its parent with weight ``decay``, its grandparent ``decay**2``, ..."""
        vector: dict[str, float] = {}
        current: str | None = skill
        distance = 0
        while current is not None:
            vector[current] = self.decay**distance
            current = self.parents[current]
            distance += 1
        return vector

    def similarity(self, a: str, b: str) -> float:
        """Cosine of the two skill vectors, rounded, and 0 below ``min_similarity``."""
        if a == b:
            return 1.0
        va, vb = self.skill_vector(a), self.skill_vector(b)
        dot = sum(weight * vb[skill] for skill, weight in va.items() if skill in vb)
        norm_a = math.sqrt(sum(weight * weight for weight in va.values()))
        norm_b = math.sqrt(sum(weight * weight for weight in vb.values()))
        cosine = round(dot / (norm_a * norm_b) / SIMILARITY_QUANTUM) * SIMILARITY_QUANTUM
        if cosine <= 0.0 or cosine < self.min_similarity:
            return 0.0
        return cosine

    def level_fit(self, level: int, target: int) -> float:
        """1 at or above the target, ``level_decay`` per missing level below it."""
        if level >= target:
            return 1.0
        return self.level_decay ** (target - level)

    # -- availability ------------------------------------------------------------------------

    def wall_time_to_utc(self, day: datetime, minute: int, zone: ZoneInfo) -> datetime:
        """The instant the wall clock in ``zone`` first shows ``minute`` past midnight of
        ``day``; a wall time skipped by a daylight-saving jump moves to the next one shown."""
        while True:
            wall = datetime.combine(day.date(), time(0), tzinfo=zone) + timedelta(minutes=minute)
            instant = wall.astimezone(UTC)
            if instant.astimezone(zone).replace(tzinfo=None) == wall.replace(tzinfo=None):
                return instant
            minute += 1

    def available_minutes(self, record: VolunteerRecord) -> set[int] | None:
        """Minutes of the coming UTC week (0 = Monday 00:00 UTC) the volunteer is available,
        or None if they gave no time zone or no slots."""
        if record in self._minutes:
            return self._minutes[record]
        if record.timezone is None or not record.slots:
            return None
        zone = ZoneInfo(record.timezone)
        minutes: set[int] = set()
        for weekday, start, end in record.slots:
            day = self.week_start + timedelta(days=weekday)
            first = self.wall_time_to_utc(day, start, zone)
            last = self.wall_time_to_utc(day, end, zone)
            begin = (first - self.week_start) // timedelta(minutes=1)
            finish = (last - self.week_start) // timedelta(minutes=1)
            for minute in range(begin, finish):
                minutes.add(minute % MINUTES_PER_WEEK)
        self._minutes[record] = minutes
        return minutes

    # -- languages ---------------------------------------------------------------------------

    @staticmethod
    def language_levels(record: VolunteerRecord) -> dict[str, int]:
        """Primary subtag ('pt' for 'pt-BR') to the volunteer's best level in it."""
        levels: dict[str, int] = {}
        for code, level in record.languages:
            primary = code.split("-")[0].lower()
            levels[primary] = max(level, levels.get(primary, 0))
        return levels

    # -- one pair ----------------------------------------------------------------------------

    def score_pair(
        self,
        learner: VolunteerRecord,
        mentor: VolunteerRecord,
        *,
        wanted_skill: str | None = None,
        offered_skill: str | None = None,
    ) -> tuple[float, Match] | None:
        """Score one learner-mentor pair, or None if the pair is excluded.

        Returns the score and a Match describing the pair (its ``volunteer_id`` is the
        mentor's; :meth:`query` swaps in the counterpart). ``wanted_skill`` or
        ``offered_skill`` restrict the pair to that want or offer.
        """
        if not learner.active or not mentor.active or learner.id == mentor.id:
            return None
        if mentor.open_slots < 1:
            return None

        options = []
        for wanted, target in learner.wants:
            if wanted_skill is not None and wanted != wanted_skill:
                continue
            for offered, level in mentor.offers:
                if offered_skill is not None and offered != offered_skill:
                    continue
                similarity = self.similarity(wanted, offered)
                fit = self.level_fit(level, target)
                if similarity * fit > 0:
                    options.append((-(similarity * fit), -similarity, wanted, offered, fit))
        if not options:
            return None
        options.sort()
        _, _, wanted, offered, fit = options[0]
        similarity = self.similarity(wanted, offered)
        skill_score = similarity * fit

        learner_languages = self.language_levels(learner)
        mentor_languages = self.language_levels(mentor)
        shared = {
            code: min(level, mentor_languages[code])
            for code, level in learner_languages.items()
            if code in mentor_languages
        }
        if not shared:
            return None
        language = max(shared.values()) / 5

        learner_minutes = self.available_minutes(learner)
        mentor_minutes = self.available_minutes(mentor)
        overlap: int | None = None
        if learner_minutes is None or mentor_minutes is None:
            availability = self.unknown_availability
        else:
            overlap = len(learner_minutes & mentor_minutes)
            if overlap == 0:
                return None
            saturation = self.overlap_saturation_minutes
            availability = min(overlap, saturation) / saturation

        multiplier = (
            self.base_weight
            + self.availability_weight * availability
            + self.language_weight * language
        )
        score = min(1.0, skill_score * multiplier)
        match = Match(
            volunteer_id=mentor.id,
            skill=offered,
            wanted_skill=wanted,
            score=score,
            skill_similarity=similarity,
            level_fit=fit,
            overlap_minutes_per_week=overlap,
            shared_languages=tuple(sorted(shared, key=lambda code: (-shared[code], code))),
        )
        return score, match

    # -- a query -----------------------------------------------------------------------------

    def query(
        self,
        world: Sequence[VolunteerRecord],
        volunteer: int | VolunteerRecord,
        role: Role = "learner",
        skill: str | None = None,
        limit: int = 10,
    ) -> list[Match]:
        """What :meth:`MatchIndex.query` should answer over the records ``world``."""
        if isinstance(volunteer, VolunteerRecord):
            me = volunteer
        else:
            me = next(record for record in world if record.id == volunteer)
        results: list[Match] = []
        for other in world:
            if other.id == me.id:
                continue
            if role == "learner":
                scored = self.score_pair(me, other, wanted_skill=skill)
            else:
                scored = self.score_pair(other, me, offered_skill=skill)
            if scored is None:
                continue
            _, match = scored
            results.append(
                Match(
                    volunteer_id=other.id,
                    skill=match.skill,
                    wanted_skill=match.wanted_skill,
                    score=match.score,
                    skill_similarity=match.skill_similarity,
                    level_fit=match.level_fit,
                    overlap_minutes_per_week=match.overlap_minutes_per_week,
                    shared_languages=match.shared_languages,
                )
            )
        results.sort(key=lambda match: (-match.score, match.volunteer_id))
        return results[:limit]

    # -- why so few --------------------------------------------------------------------------

    def neighbours(self, skill: str) -> list[str]:
        """The parent, the siblings and the children of ``skill``, by id."""
        parent = self.parents[skill]
        near = {other for other, above in self.parents.items() if above == skill}
        if parent is not None:
            near.add(parent)
            near |= {other for other, above in self.parents.items() if above == parent}
        near.discard(skill)
        return sorted(near)

    def _rules(
        self, me: VolunteerRecord, other: VolunteerRecord, role: Role
    ) -> tuple[bool, bool, bool]:
        """Whether ``other`` shares a language with ``me``, meets me in time, and whether
        the pair's mentor has an open slot (an inactive ``me`` has none)."""
        mine, theirs = self.language_levels(me), self.language_levels(other)
        speaks = any(code in theirs for code in mine)
        my_minutes, their_minutes = self.available_minutes(me), self.available_minutes(other)
        meets = my_minutes is None or their_minutes is None or bool(my_minutes & their_minutes)
        mentor = other if role == "learner" else me
        return speaks, meets, me.active and mentor.open_slots >= 1

    def _listing(
        self, world: Sequence[VolunteerRecord], me: VolunteerRecord, role: Role, skill: str
    ) -> list[VolunteerRecord]:
        """The active others who list ``skill`` exactly on the other side."""
        return [
            other
            for other in world
            if other.active
            and other.id != me.id
            and skill in {s for s, _ in (other.offers if role == "learner" else other.wants)}
        ]

    def explain_skills(
        self,
        world: Sequence[VolunteerRecord],
        volunteer: int | VolunteerRecord,
        role: Role = "learner",
        skill: str | None = None,
        *,
        few: int = 5,
        n_suggestions: int = 3,
    ) -> list[SkillExplanation]:
        """What :meth:`MatchIndex.explain_skills` should answer over the records ``world``."""
        if isinstance(volunteer, VolunteerRecord):
            me = volunteer
        else:
            me = next(record for record in world if record.id == volunteer)
        own = {s for s, _ in (me.wants if role == "learner" else me.offers)}
        explained = []
        for mine in sorted(own):
            if skill is not None and mine != skill:
                continue
            others = self._listing(world, me, role, mine)
            rules = [self._rules(me, other, role) for other in others]
            suggestions: list[Suggestion] = []

            blocked = [
                other
                for other, (speaks, meets, has_slot) in zip(others, rules, strict=True)
                if speaks and has_slot and not meets
            ]
            if blocked and me.timezone is not None:
                for weekday in range(7):
                    for start, end in DAY_PARTS:
                        if any(
                            day == weekday and own_start < end and start < own_end
                            for day, own_start, own_end in me.slots
                        ):
                            continue
                        block = VolunteerRecord(
                            id=-1, timezone=me.timezone, slots=((weekday, start, end),)
                        )
                        minutes = self.available_minutes(block) or set()
                        would_add = sum(
                            1
                            for other in blocked
                            if minutes & (self.available_minutes(other) or set())
                        )
                        if would_add:
                            change = AvailabilityChange(weekday, start, end)
                            suggestions.append(Suggestion(change, would_add))

            unspoken: dict[str, int] = {}
            for other, (speaks, meets, has_slot) in zip(others, rules, strict=True):
                if meets and has_slot and not speaks:
                    for code in self.language_levels(other):
                        unspoken[code] = unspoken.get(code, 0) + 1
            suggestions += [
                Suggestion(LanguageChange(code), count) for code, count in unspoken.items()
            ]

            if len(others) < few:
                for near in self.neighbours(mine):
                    if near in own:
                        continue
                    would_add = sum(
                        1
                        for other in self._listing(world, me, role, near)
                        if all(self._rules(me, other, role))
                    )
                    if would_add:
                        suggestions.append(Suggestion(SkillChange(near), would_add))

            def order(suggestion: Suggestion) -> tuple[int, int, tuple[int | str, ...]]:
                change = suggestion.change
                if isinstance(change, AvailabilityChange):
                    return -suggestion.would_add, 0, (change.weekday, change.start_minute)
                if isinstance(change, LanguageChange):
                    return -suggestion.would_add, 1, (change.language,)
                return -suggestion.would_add, 2, (change.skill,)

            explained.append(
                SkillExplanation(
                    skill=mine,
                    offering=len(others),
                    sharing_language=sum(1 for speaks, _, _ in rules if speaks),
                    overlapping=sum(1 for speaks, meets, _ in rules if speaks and meets),
                    with_open_slot=sum(1 for rule in rules if all(rule)),
                    suggestions=tuple(sorted(suggestions, key=order)[:n_suggestions]),
                )
            )
        return explained
