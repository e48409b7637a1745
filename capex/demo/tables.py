"""One generator per demo table, each drawing from the ``rng`` it is given.

A batch calls them in one fixed order (``capex.demo.rows``), which is part of what a seed
gives: homes (each volunteer's region and time zone), then ``language_rows``,
``display_names``, ``draw_skills`` (for ``offer_rows`` and ``want_rows``),
``volunteer_rows`` and ``slot_rows``. Each function draws all it needs in one go, as arrays,
then builds its rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from capex.demo.parameters import PARAMETERS, Parameters
from capex.demo.profiles import REGION_CODES, REGION_PROFILES, TEXTS, RegionProfile
from capex.demo.sampling import (
    BoolArray,
    FloatArray,
    IntArray,
    choose_per_row,
    draw,
    pick_skills,
)
from capex.services.accounts import username_key
from capex.vocabulary import Role

DEMO_EMAIL_DOMAIN = "demo.capex.invalid"

Row = dict[str, Any]

_PROFILES: tuple[RegionProfile, ...] = tuple(REGION_PROFILES.values())
_ZONES = tuple(tuple(profile.zones) for profile in _PROFILES)
_LANGUAGES = tuple(tuple(profile.languages) for profile in _PROFILES)
# Bounds of the names drawn: an index is this draw modulo the region's number of names.
_NAME_DRAWS = 1 << 16


def signup_ages(
    rng: np.random.Generator, count: int, days: int = 730, *, params: Parameters = PARAMETERS
) -> FloatArray:
    """Seconds before now at which each volunteer signed up, oldest first; shape (count,).

    Sign-ups grow over time (density falling linearly with age), with bursts around a few
    campaigns, so that statistics timelines look like a real community's.
    """
    span = days * 86400.0
    ages = (1.0 - np.sqrt(rng.random(count))) * span
    campaign = rng.random(count) < params.campaign_share
    centres = np.array(params.campaign_days) * 86400.0
    burst = centres[rng.integers(0, len(centres), count)] + rng.normal(
        0.0, params.campaign_spread_days * 86400.0, count
    )
    ages = np.where(campaign, np.clip(burst, 0.0, span), ages)
    return np.sort(ages)[::-1].copy()


def skill_log_weights(
    rng: np.random.Generator,
    skill_ids: Sequence[str],
    parent_ids: Sequence[str | None],
    exponent: float = 1.1,
    *,
    params: Parameters = PARAMETERS,
) -> tuple[FloatArray, FloatArray]:
    """Log popularity of each skill as an offer and as a want, each of shape (n_skills,).

    A Zipf-like ranking (weight ``1 / rank**exponent``) over a random order of the skills,
    so that a few are very popular and most are rare. Leaves are what people name; inner
    skills ("Programming") are chosen less, roots ("Technology") hardly ever. Offers and
    wants share the ranking, each with its own jitter.
    """
    n_skills = len(skill_ids)
    parents = {parent for parent in parent_ids if parent is not None}
    ranks = rng.permutation(n_skills) + 1
    base = -exponent * np.log(ranks.astype(np.float64))
    damping = np.array(
        [
            params.root_damping
            if parent is None
            else params.inner_damping
            if skill in parents
            else 1.0
            for skill, parent in zip(skill_ids, parent_ids, strict=True)
        ]
    )
    base += np.log(damping)
    offers = base + rng.normal(0.0, params.popularity_jitter, n_skills)
    wants = base + rng.normal(0.0, params.popularity_jitter, n_skills)
    return offers, wants


@dataclass(frozen=True, slots=True)
class Homes:
    """Where each of a batch's volunteers lives; arrays of shape (n,)."""

    # Index into REGION_CODES.
    region: IntArray
    # Whether the volunteer states the region on their profile.
    stated: BoolArray
    # Index into that region's time zones.
    zone: IntArray


def draw_homes(rng: np.random.Generator, count: int, params: Parameters = PARAMETERS) -> Homes:
    """Each volunteer's region (by the regions' shares) and time zone within it."""
    region = choose_per_row(rng, [[p.share for p in _PROFILES]], np.zeros(count, np.int64))
    stated = rng.random(count) >= params.region_unstated
    zone = choose_per_row(rng, [list(p.zones.values()) for p in _PROFILES], region)
    return Homes(region=region, stated=stated, zone=zone)


def language_rows(
    rng: np.random.Generator, homes: Homes, first_id: int, params: Parameters = PARAMETERS
) -> list[Row]:
    """volunteer_languages: a first language of the region, often English, sometimes one more."""
    count = len(homes.region)
    weights = [list(p.languages.values()) for p in _PROFILES]
    first_language = choose_per_row(rng, weights, homes.region).tolist()
    extra_languages = [
        choose_per_row(rng, weights, homes.region).tolist()
        for _ in range(params.extra_language_tries)
    ]
    lingua_franca_draw = rng.random(count).tolist()
    lingua_franca_level = draw(rng, params.lingua_franca_level, count).tolist()
    extra_draw = rng.random(count).tolist()
    extra_level = draw(rng, params.extra_language_level, count).tolist()

    lingua_franca = params.lingua_franca
    rows: list[Row] = []
    for row, region in enumerate(homes.region.tolist()):
        codes = _LANGUAGES[region]
        spoken = [(codes[first_language[row]], params.first_language_level)]
        if spoken[0][0] != lingua_franca and lingua_franca_draw[row] < _PROFILES[region].english:
            spoken.append((lingua_franca, lingua_franca_level[row]))
        extra_chance = (
            params.extra_language_with_lingua_franca
            if len(spoken) > 1
            else params.extra_language_without
        )
        if extra_draw[row] < extra_chance:
            for candidate in extra_languages:
                code = codes[candidate[row]]
                if all(code != known for known, _ in spoken):
                    spoken.append((code, extra_level[row]))
                    break
        volunteer_id = first_id + row
        rows.extend(
            {
                "volunteer_id": volunteer_id,
                "code": code,
                "language": code.split("-")[0],
                "level": level,
                "position": position,
            }
            for position, (code, level) in enumerate(spoken)
        )
    return rows


def display_names(rng: np.random.Generator, homes: Homes) -> list[str]:
    """A first and a last name of each volunteer's region."""
    count = len(homes.region)
    first_name = rng.integers(0, _NAME_DRAWS, count).tolist()
    last_name = rng.integers(0, _NAME_DRAWS, count).tolist()
    names = []
    for row, region in enumerate(homes.region.tolist()):
        profile = _PROFILES[region]
        names.append(
            f"{profile.first_names[first_name[row] % len(profile.first_names)]} "
            f"{profile.last_names[last_name[row] % len(profile.last_names)]}"
        )
    return names


@dataclass(frozen=True, slots=True)
class SkillChoices:
    """What one side of a batch names: skills (n, k), which are real (n, k), levels, notes."""

    # Skill indices, strongest draw first.
    skills: IntArray
    # Which entries each volunteer actually has.
    mask: BoolArray
    levels: IntArray
    # Index into the notes, or -1 for none.
    notes: IntArray

    def per_volunteer(self, skill_names: Sequence[str]) -> list[list[str]]:
        """The names of each volunteer's skills, in position order."""
        named: list[list[str]] = [[] for _ in range(len(self.mask))]
        owner, position = np.nonzero(self.mask)
        for row, skill in zip(owner.tolist(), self.skills[owner, position].tolist(), strict=True):
            named[row].append(skill_names[skill])
        return named


@dataclass(frozen=True, slots=True)
class Skills:
    """A batch's offers and wants, and each volunteer's mentor capacity (n,)."""

    offers: SkillChoices
    wants: SkillChoices
    capacity: IntArray


def draw_skills(
    rng: np.random.Generator,
    offer_weights: FloatArray,
    want_weights: FloatArray,
    count: int,
    params: Parameters = PARAMETERS,
) -> Skills:
    """Who offers and wants which skills, at which level, with which note, and capacity.

    ``offer_weights`` and ``want_weights`` are the skills' log popularity (n_skills,);
    nobody wants to learn what they offer to teach.
    """
    offers_skills = rng.random(count) < params.offers_share
    wants_skills = rng.random(count) < np.where(
        offers_skills, params.wants_when_offering, params.wants_otherwise
    )
    offer_count = np.where(offers_skills, draw(rng, params.offer_count, count), 0)
    want_count = np.where(wants_skills, draw(rng, params.want_count, count), 0)
    offered, offer_mask = pick_skills(rng, offer_weights, offer_count)
    exclude = np.zeros((count, len(want_weights)), dtype=bool)
    mentor_row, offer_column = np.nonzero(offer_mask)
    exclude[mentor_row, offered[mentor_row, offer_column]] = True
    wanted, want_mask = pick_skills(rng, want_weights, want_count, exclude)
    offer_level = draw(rng, params.offer_level, offered.shape)
    want_level = draw(rng, params.want_level, wanted.shape)
    offer_note = _notes(rng, params.offer_note, offered.shape)
    want_note = _notes(rng, params.want_note, wanted.shape)
    capacity = np.where(offers_skills, draw(rng, params.mentor_capacity, count), 0)
    return Skills(
        offers=SkillChoices(offered, offer_mask, offer_level, offer_note),
        wants=SkillChoices(wanted, want_mask, want_level, want_note),
        capacity=capacity,
    )


def _notes(rng: np.random.Generator, chance: float, shape: tuple[int, ...]) -> IntArray:
    noted = rng.random(shape) < chance
    notes: IntArray = np.where(noted, rng.integers(0, len(TEXTS.notes), shape), -1)
    return notes


def offer_rows(skills: Skills, skill_ids: Sequence[str], first_id: int) -> list[Row]:
    """skill_offers, from ``draw_skills``."""
    return _skill_rows(skills.offers, skill_ids, first_id)


def want_rows(skills: Skills, skill_ids: Sequence[str], first_id: int) -> list[Row]:
    """skill_wants, from ``draw_skills``."""
    return _skill_rows(skills.wants, skill_ids, first_id)


def _skill_rows(choices: SkillChoices, skill_ids: Sequence[str], first_id: int) -> list[Row]:
    # Row-major nonzero: by volunteer, then by position, as the rows are numbered.
    owner, position = np.nonzero(choices.mask)
    notes = (*TEXTS.notes, "")  # a note index of -1 is no note
    return [
        {
            "volunteer_id": first_id + row,
            "skill_id": skill_ids[skill],
            "level": level,
            "note": notes[note],
            "position": column,
        }
        for row, column, skill, level, note in zip(
            owner.tolist(),
            position.tolist(),
            choices.skills[owner, position].tolist(),
            choices.levels[owner, position].tolist(),
            choices.notes[owner, position].tolist(),
            strict=True,
        )
    ]


@dataclass(frozen=True, slots=True)
class Volunteers:
    """What the volunteers table needs besides its own draws, for one batch."""

    now: datetime
    password_hash: str
    # The number in the first volunteer's username (``demo{number}``) and their id.
    first_number: int
    first_id: int
    # Seconds before ``now`` at which each signed up, (n,).
    ages: FloatArray


def volunteer_rows(
    rng: np.random.Generator,
    batch: Volunteers,
    homes: Homes,
    names: Sequence[str],
    skills: Skills,
    skill_names: Sequence[str],
    params: Parameters = PARAMETERS,
) -> list[Row]:
    """volunteers: accounts with their bio, home, capacity and the dates of their life."""
    count = len(batch.ages)
    ages = batch.ages
    bio_draw = rng.random(count).tolist()
    bio_template = rng.integers(0, _NAME_DRAWS, count).tolist()
    years_editing = rng.integers(0, params.years_editing_below, count).tolist()
    inactive = rng.random(count) < params.deactivated
    deactivated_age = ages * rng.random(count)
    end_age = np.where(inactive, deactivated_age, 0.0)
    seen = rng.random(count) < params.seen
    seen_age = ages - (ages - end_age) * rng.random(count) ** params.last_seen_exponent
    updated_age = ages - (ages - np.where(seen, seen_age, end_age)) * rng.random(count)

    offer_names = skills.offers.per_volunteer(skill_names)
    want_names = skills.wants.per_volunteer(skill_names)
    region, stated, zone = homes.region.tolist(), homes.stated.tolist(), homes.zone.tolist()
    capacity = skills.capacity.tolist()
    created_seconds, deactivated_seconds, updated_seconds = (
        np.round(ages).tolist(),
        np.round(deactivated_age).tolist(),
        np.round(updated_age).tolist(),
    )
    seen_seconds = np.round(seen_age).tolist()
    is_inactive, is_seen = inactive.tolist(), seen.tolist()
    now = batch.now
    rows: list[Row] = []
    for row in range(count):
        username = f"demo{batch.first_number + row}"
        created = now - timedelta(seconds=created_seconds[row])
        rows.append(
            {
                "id": batch.first_id + row,
                "username": username,
                "username_key": username_key(username),
                "email": f"{username}@{DEMO_EMAIL_DOMAIN}",
                "password_hash": batch.password_hash,
                "display_name": names[row],
                "bio": _bio(
                    offer_names[row],
                    want_names[row],
                    created.year - years_editing[row],
                    bio_draw[row],
                    bio_template[row],
                    params,
                ),
                "timezone": _ZONES[region[row]][zone[row]],
                "region": REGION_CODES[region[row]] if stated[row] else None,
                "mentor_capacity": capacity[row],
                "role": Role.VOLUNTEER,
                "is_active": not is_inactive[row],
                "deactivated_at": (
                    now - timedelta(seconds=deactivated_seconds[row]) if is_inactive[row] else None
                ),
                "last_seen_at": (
                    now - timedelta(seconds=seen_seconds[row]) if is_seen[row] else None
                ),
                "created_at": created,
                "updated_at": now - timedelta(seconds=updated_seconds[row]),
            }
        )
    return rows


def _bio(
    offers: list[str], wants: list[str], year: int, draw: float, template: int, params: Parameters
) -> str:
    if draw < params.empty_bio:
        return ""
    if offers and wants:
        templates = TEXTS.offers_and_wants_bios
    elif offers:
        templates = TEXTS.offers_bios
    elif wants:
        templates = TEXTS.wants_bios
    else:
        templates = TEXTS.neither_bios
    return templates[template % len(templates)].format(
        offers=_and_list(offers[:2]), wants=_and_list(wants[:2]), year=year
    )


def _and_list(items: list[str]) -> str:
    return " and ".join(items) if len(items) <= 2 else ", ".join(items[:-1]) + " and " + items[-1]


def in_sentence(name: str) -> str:
    """A skill name as it reads inside a sentence: "Grant writing" -> "grant writing"."""
    first_word = name.split()[0]
    if first_word in TEXTS.proper_names or name.startswith("Wik") or name[1:] != name[1:].lower():
        return name
    return name[0].lower() + name[1:]


def weekly_availability(
    rng: np.random.Generator, count: int, *, params: Parameters = PARAMETERS
) -> tuple[IntArray, IntArray, IntArray, IntArray]:
    """Weekly slots in local time: ``(owner, weekday, start_minute, end_minute)``, each (m,).

    About one volunteer in ten gives none. The others have a usual weekday evening (same
    start and length, on some weekdays, sometimes half an hour earlier or later), a few a
    lunch hour, many a Saturday or Sunday morning or afternoon block. Times are on quarter
    hours and slots on one day never overlap: lunch ends by 13:30, evenings start at 16:30
    or later, weekend mornings end by 14:00 and afternoons start at 15:00 or later.
    """
    has_any = rng.random(count) >= params.no_availability
    weekdays = np.arange(5)

    evening_person = has_any & (rng.random(count) < params.evening_person)
    evening_rate = rng.beta(*params.evening_rate_beta, count)
    usual_start = draw(rng, params.evening_start, count)
    usual_length = draw(rng, params.evening_length, count)
    evening = evening_person[:, None] & (rng.random((count, 5)) < evening_rate[:, None])
    evening_start = usual_start[:, None] + draw(rng, params.evening_shift, (count, 5))
    evening_end = np.minimum(evening_start + usual_length[:, None], 1440)

    lunch_person = has_any & (rng.random(count) < params.lunch_person)
    lunch = lunch_person[:, None] & (rng.random((count, 5)) < params.lunch_day)
    lunch_start = np.repeat(draw(rng, params.lunch_start, count)[:, None], 5, axis=1)
    lunch_end = lunch_start + params.lunch_length

    weekend_person = has_any & (rng.random(count) < params.weekend_person)
    morning = weekend_person[:, None] & (rng.random((count, 2)) < params.weekend_morning)
    morning_start = draw(rng, params.morning_start, (count, 2))
    morning_end = morning_start + draw(rng, params.morning_length, (count, 2))
    afternoon = weekend_person[:, None] & (rng.random((count, 2)) < params.weekend_afternoon)
    afternoon_start = draw(rng, params.afternoon_start, (count, 2))
    afternoon_end = afternoon_start + draw(rng, params.afternoon_length, (count, 2))

    # Whoever gives availability gives at least one evening.
    fallback_day = rng.integers(0, 5, count)
    empty = has_any & ~(evening.any(1) | lunch.any(1) | morning.any(1) | afternoon.any(1))
    evening[empty, fallback_day[empty]] = True

    weekend = np.array([5, 6])
    mask = np.hstack([evening, lunch, morning, afternoon])
    weekday = np.broadcast_to(np.concatenate([weekdays, weekdays, weekend, weekend]), mask.shape)
    start = np.hstack([evening_start, lunch_start, morning_start, afternoon_start])
    end = np.hstack([evening_end, lunch_end, morning_end, afternoon_end])
    owner, column = np.nonzero(mask)
    return (
        owner.astype(np.int64),
        weekday[owner, column].astype(np.int64),
        start[owner, column].astype(np.int64),
        end[owner, column].astype(np.int64),
    )


def slot_rows(
    rng: np.random.Generator, count: int, first_id: int, params: Parameters = PARAMETERS
) -> list[Row]:
    """availability_slots: ``weekly_availability`` of ``count`` volunteers from ``first_id``."""
    owner, weekday, start, end = weekly_availability(rng, count, params=params)
    return [
        {"volunteer_id": first_id + o, "weekday": w, "start_minute": s, "end_minute": e}
        for o, w, s, e in zip(
            owner.tolist(), weekday.tolist(), start.tolist(), end.tolist(), strict=True
        )
    ]
