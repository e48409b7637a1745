"""A synthetic population of volunteers that looks like the movement, for demos and benchmarks.

``populate`` writes users ``demo1`` .. ``demoN`` with profiles drawn from one seeded
``np.random.Generator``: the same seed and count give the same people. Skill popularity is
long-tailed, regions come with their own time zones, languages and names, availability is
mostly local evenings and weekend blocks, and sign-ups spread over the last two years.
Rows are written with Core bulk inserts in batches: 100,000 volunteers take ~10 s on SQLite
and ~30 s on PostgreSQL (2 cores).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import Table, func, insert, select, text
from sqlalchemy.orm import Session

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
from capex.services.accounts import hash_password, username_key

DEFAULT_DEMO_PASSWORD = "capex-demo-2026"
DEMO_EMAIL_DOMAIN = "demo.capex.invalid"
BATCH_SIZE = 5000

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
Row = dict[str, Any]


@dataclass(frozen=True)
class DemoResult:
    created: int
    first_id: int
    last_id: int
    seconds: float


@dataclass(frozen=True)
class RegionProfile:
    """Who lives in a region: its share of volunteers, time zones, languages and names."""

    share: float
    zones: dict[str, float]
    # First (mother-tongue) languages, BCP 47 in standard form.
    languages: dict[str, float]
    # The chance that someone whose first language is not English lists English too.
    english: float
    first_names: tuple[str, ...]
    last_names: tuple[str, ...]


def _names(names: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in names.split(","))


REGION_PROFILES: dict[str, RegionProfile] = {
    "nwe": RegionProfile(
        share=0.22,
        zones={
            "Europe/Berlin": 0.22,
            "Europe/Paris": 0.18,
            "Europe/London": 0.14,
            "Europe/Madrid": 0.12,
            "Europe/Rome": 0.1,
            "Europe/Amsterdam": 0.08,
            "Europe/Stockholm": 0.05,
            "Europe/Helsinki": 0.04,
            "Europe/Dublin": 0.03,
            "Europe/Lisbon": 0.04,
        },
        languages={
            "de": 0.22,
            "fr": 0.18,
            "en": 0.15,
            "es": 0.1,
            "it": 0.1,
            "nl": 0.08,
            "sv": 0.04,
            "ca": 0.04,
            "fi": 0.03,
            "pt": 0.03,
            "da": 0.02,
            "nb": 0.01,
        },
        english=0.85,
        first_names=_names(
            "Emma, Lukas, Sophie, Jan, Anna, Thomas, Julia, Pierre, Camille, Lars, Ingrid, "
            "Giulia, Marco, Laura, Oliver, Freya"
        ),
        last_names=_names(
            "Müller, Schmidt, Dubois, Martin, de Vries, Jansen, Andersson, Johansson, Rossi, "
            "Bianchi, García, Murphy, Jones, Bernard, Nielsen, Fischer"
        ),
    ),
    "cee": RegionProfile(
        share=0.13,
        zones={
            "Europe/Warsaw": 0.2,
            "Europe/Kyiv": 0.15,
            "Europe/Moscow": 0.15,
            "Europe/Istanbul": 0.1,
            "Europe/Prague": 0.08,
            "Europe/Belgrade": 0.08,
            "Europe/Bucharest": 0.07,
            "Europe/Budapest": 0.05,
            "Asia/Tbilisi": 0.04,
            "Asia/Yerevan": 0.04,
            "Asia/Almaty": 0.02,
            "Asia/Tashkent": 0.02,
        },
        languages={
            "ru": 0.2,
            "pl": 0.18,
            "uk": 0.15,
            "tr": 0.1,
            "cs": 0.07,
            "sr": 0.07,
            "ro": 0.06,
            "hu": 0.05,
            "ka": 0.04,
            "hy": 0.04,
            "kk": 0.02,
            "uz": 0.02,
        },
        english=0.7,
        first_names=_names(
            "Anna, Piotr, Olena, Andriy, Katarzyna, Tomáš, Ivana, Nikola, Elena, Dmitri, "
            "Mariam, Giorgi, Aigerim, Mehmet, Zeynep, Ana"
        ),
        last_names=_names(
            "Kowalski, Nowak, Shevchenko, Kovalenko, Novák, Horvat, Petrović, Popescu, "
            "Ivanov, Beridze, Hovhannisyan, Nurlanov, Yılmaz, Kaya, Wójcik, Kuznetsova"  # noqa: RUF001 (a Turkish name)
        ),
    ),
    "ssa": RegionProfile(
        share=0.15,
        zones={
            "Africa/Lagos": 0.3,
            "Africa/Nairobi": 0.15,
            "Africa/Accra": 0.14,
            "Africa/Johannesburg": 0.1,
            "Africa/Kampala": 0.07,
            "Africa/Dar_es_Salaam": 0.06,
            "Africa/Abidjan": 0.05,
            "Africa/Dakar": 0.04,
            "Africa/Kinshasa": 0.04,
            "Africa/Addis_Ababa": 0.05,
        },
        languages={
            "en": 0.3,
            "yo": 0.13,
            "sw": 0.12,
            "fr": 0.12,
            "ha": 0.09,
            "ig": 0.08,
            "ak": 0.05,
            "zu": 0.04,
            "am": 0.04,
            "wo": 0.02,
            "ln": 0.01,
        },
        english=0.7,
        first_names=_names(
            "Amara, Chinedu, Ngozi, Kwame, Abena, Wanjiru, Otieno, Thabo, Zanele, Fatou, "
            "Moussa, Aisha, Tunde, Kofi, Nia, Sipho"
        ),
        last_names=_names(
            "Okafor, Adeyemi, Mensah, Kamau, Odhiambo, Ndlovu, Dlamini, Diallo, Traoré, "
            "Mwangi, Boateng, Bello, Nkosi, Abubakar, Asante, Achieng"
        ),
    ),
    "sa": RegionProfile(
        share=0.12,
        zones={
            "Asia/Kolkata": 0.6,
            "Asia/Dhaka": 0.14,
            "Asia/Karachi": 0.1,
            "Asia/Kathmandu": 0.1,
            "Asia/Colombo": 0.06,
        },
        languages={
            "hi": 0.3,
            "bn": 0.2,
            "ta": 0.1,
            "ur": 0.1,
            "ne": 0.08,
            "te": 0.06,
            "ml": 0.06,
            "si": 0.04,
            "en": 0.06,
        },
        english=0.8,
        first_names=_names(
            "Priya, Arjun, Ananya, Rahul, Fatima, Ayesha, Imran, Sita, Bikash, Nusrat, "
            "Tanvir, Lakshmi, Karthik, Suman, Pooja, Ravi"
        ),
        last_names=_names(
            "Sharma, Patel, Khan, Das, Rahman, Iyer, Shrestha, Hossain, Gupta, Singh, "
            "Perera, Chowdhury, Thapa, Reddy, Ahmed, Nair"
        ),
    ),
    "lac": RegionProfile(
        share=0.12,
        zones={
            "America/Sao_Paulo": 0.3,
            "America/Mexico_City": 0.18,
            "America/Argentina/Buenos_Aires": 0.14,
            "America/Bogota": 0.12,
            "America/Lima": 0.08,
            "America/Santiago": 0.08,
            "America/Caracas": 0.05,
            "America/Port-au-Prince": 0.02,
            "America/Havana": 0.03,
        },
        languages={
            "es": 0.58,
            "pt-BR": 0.32,
            "en": 0.03,
            "qu": 0.03,
            "ht": 0.02,
            "gn": 0.02,
        },
        english=0.5,
        first_names=_names(
            "Sofía, Mateo, Valentina, Santiago, Camila, Lucas, Gabriela, João, Ana, Diego, "
            "Isabela, Luis, Mariana, Pedro, Daniela, Jorge"
        ),
        last_names=_names(
            "González, Rodríguez, Silva, Santos, Pérez, Oliveira, Gómez, Fernández, López, "
            "Souza, Martínez, Díaz, Ramírez, Costa, Torres, Flores"
        ),
    ),
    "na": RegionProfile(
        share=0.1,
        zones={
            "America/New_York": 0.35,
            "America/Chicago": 0.17,
            "America/Los_Angeles": 0.2,
            "America/Toronto": 0.1,
            "America/Denver": 0.07,
            "America/Vancouver": 0.05,
            "America/Halifax": 0.03,
            "America/St_Johns": 0.03,
        },
        languages={"en": 0.82, "es": 0.08, "fr-CA": 0.06, "zh": 0.02, "vi": 0.02},
        english=0.95,
        first_names=_names(
            "Emily, Michael, Sarah, David, Jessica, James, Olivia, Daniel, Maria, Kevin, "
            "Aiyana, Wei, Jasmine, Carlos, Hannah, Noah"
        ),
        last_names=_names(
            "Smith, Johnson, Williams, Brown, Garcia, Miller, Davis, Nguyen, Lee, Martinez, "
            "Wilson, Anderson, Thompson, Tremblay, Roy, Clark"
        ),
    ),
    "mena": RegionProfile(
        share=0.07,
        zones={
            "Africa/Cairo": 0.25,
            "Asia/Tehran": 0.2,
            "Asia/Riyadh": 0.1,
            "Africa/Casablanca": 0.1,
            "Africa/Algiers": 0.08,
            "Africa/Tunis": 0.07,
            "Asia/Amman": 0.06,
            "Asia/Baghdad": 0.06,
            "Asia/Beirut": 0.04,
            "Asia/Jerusalem": 0.04,
        },
        languages={"ar": 0.66, "fa": 0.2, "he": 0.04, "ku": 0.04, "kab": 0.03, "fr": 0.03},
        english=0.6,
        first_names=_names(
            "Ahmed, Fatima, Omar, Layla, Youssef, Mariam, Ali, Sara, Karim, Nour, Hassan, "
            "Zahra, Amir, Leila, Reza, Yasmin"
        ),
        last_names=_names(
            "Hassan, Ali, Mahmoud, Ibrahim, El Amrani, Haddad, Khalil, Rahimi, Karimi, "
            "Benali, Mansour, Saleh, Abdullah, Nasser, Hosseini, Cohen"
        ),
    ),
    "eseap": RegionProfile(
        share=0.09,
        zones={
            "Asia/Jakarta": 0.16,
            "Asia/Manila": 0.12,
            "Asia/Tokyo": 0.12,
            "Asia/Taipei": 0.1,
            "Asia/Seoul": 0.09,
            "Asia/Ho_Chi_Minh": 0.08,
            "Australia/Sydney": 0.08,
            "Asia/Bangkok": 0.06,
            "Asia/Kuala_Lumpur": 0.05,
            "Asia/Hong_Kong": 0.05,
            "Australia/Adelaide": 0.02,
            "Asia/Yangon": 0.02,
            "Pacific/Auckland": 0.04,
            "Pacific/Chatham": 0.01,
        },
        languages={
            "id": 0.16,
            "zh": 0.15,
            "ja": 0.12,
            "en": 0.12,
            "ko": 0.09,
            "fil": 0.1,
            "vi": 0.09,
            "th": 0.06,
            "ms": 0.05,
            "yue": 0.04,
            "mi": 0.02,
        },
        english=0.6,
        first_names=_names(
            "Wei, Mei, Hiroshi, Yuki, Min-jun, Ji-woo, Siti, Budi, Maria, Jose, Linh, Minh, "
            "Nurul, Aroha, Somchai, Chen"
        ),
        last_names=_names(
            "Wang, Li, Zhang, Chen, Tanaka, Sato, Kim, Park, Santoso, Wijaya, Reyes, Santos, "
            "Nguyen, Tran, Ngata, Lim"
        ),
    ),
}

REGION_CODES = tuple(REGION_PROFILES)

# Skill names that are proper nouns keep their capital inside a sentence.
_PROPER_NAMES = {"Python", "Lua", "Quarry", "Toolforge", "Pywikibot", "Kartographer"}

_MENTOR_BIOS = (
    "Happy to help with {offers}.",
    "Wikimedian since {year}. I mentor newcomers in {offers}.",
    "I can share what I know about {offers}; ask me anything.",
    "Organizer in my local community. Glad to help others with {offers}.",
)
_LEARNER_BIOS = (
    "Learning {wants}.",
    "New to the movement, looking for a mentor in {wants}.",
    "Editing since {year}; now I want to get better at {wants}.",
    "I would love some help with {wants} for our next project.",
)
_BOTH_BIOS = (
    "I can help with {offers}. I want to learn {wants}.",
    "Wikimedian since {year}. Offering {offers}; learning {wants}.",
    "Glad to share {offers}, and looking for someone to teach me {wants}.",
)
_QUIET_BIOS = ("Wikimedian.", "Editing since {year}.", "Mostly reading for now.")
_NOTES = (
    "for our local edit-a-thon",
    "for a GLAM project",
    "in my own language",
    "for our user group",
    "hands-on, with examples",
    "for Wiki Loves Monuments",
)


# Weekday evenings start between 17:00 and 22:00, most often around 18:00-19:30.
_EVENING_STARTS = np.array([1020, 1050, 1080, 1110, 1140, 1170, 1200, 1230, 1260, 1320])
_EVENING_START_P = np.array([0.06, 0.08, 0.16, 0.15, 0.17, 0.12, 0.1, 0.06, 0.06, 0.04])
_DEMO_USERNAME = re.compile(r"demo([1-9][0-9]*)")


@dataclass(frozen=True)
class _Population:
    """What every batch draws from."""

    now: datetime
    password_hash: str
    skill_ids: list[str]
    skill_names: list[str]
    offer_weights: FloatArray
    want_weights: FloatArray


def populate(
    session: Session,
    *,
    volunteers: int,
    seed: int = 1,
    password: str = DEFAULT_DEMO_PASSWORD,
    progress: Callable[[int], None] | None = None,
) -> DemoResult:
    """Write volunteers ``demo1`` .. ``demo{volunteers}``, all signing in with ``password``.

    The same ``seed`` and ``volunteers`` give the same population. ``progress`` is called
    with the number of volunteers written so far, after each batch. Raises ``Conflict`` when
    any of these usernames exists. Flushes but does not commit: the caller does.
    """
    started = time.perf_counter()
    if volunteers < 1:
        raise Invalid("the number of demo volunteers must be at least 1")
    session.flush()
    _refuse_existing(session, volunteers)
    skills = session.execute(select(Skill.id, Skill.parent_id, Skill.name).order_by(Skill.id)).all()
    if not skills:
        raise Invalid("the skill taxonomy is empty; run the migrations first")

    first_id = _reserve_ids(session, volunteers)
    tables = [
        _table(model)
        for model in (Volunteer, VolunteerLanguage, AvailabilitySlot, SkillOffer, SkillWant)
    ]
    for stop, batch in generate(
        [(row.id, row.parent_id, row.name) for row in skills],
        volunteers=volunteers,
        seed=seed,
        first_id=first_id,
        password_hash=hash_password(password),
    ):
        for table, rows in zip(tables, batch, strict=True):
            if rows:
                session.execute(insert(table), rows)
        if progress is not None:
            progress(stop)
    session.flush()
    return DemoResult(
        created=volunteers,
        first_id=first_id,
        last_id=first_id + volunteers - 1,
        seconds=time.perf_counter() - started,
    )


Batch = tuple[list[Row], list[Row], list[Row], list[Row], list[Row]]


def generate(
    skills: Sequence[tuple[str, str | None, str]],
    *,
    volunteers: int,
    seed: int = 1,
    first_id: int = 1,
    password_hash: str = "",
) -> Iterator[tuple[int, Batch]]:
    """The population as rows, without a database: ``(volunteers so far, batch)`` pairs.

    ``skills`` are ``(id, parent id, name)`` in id order; each batch holds the rows of the
    volunteers, volunteer_languages, availability_slots, skill_offers and skill_wants tables
    for up to ``BATCH_SIZE`` volunteers, with ids from ``first_id`` on. ``populate`` writes
    exactly these rows; the matching benchmark feeds them to the engine.
    """
    rng = np.random.default_rng(seed)
    offer_weights, want_weights = skill_log_weights(
        rng, [skill[0] for skill in skills], [skill[1] for skill in skills]
    )
    population = _Population(
        now=utcnow().replace(microsecond=0),
        password_hash=password_hash,
        skill_ids=[skill[0] for skill in skills],
        skill_names=[_in_sentence(skill[2]) for skill in skills],
        offer_weights=offer_weights,
        want_weights=want_weights,
    )
    ages = signup_ages(rng, volunteers)
    for start in range(0, volunteers, BATCH_SIZE):
        stop = min(start + BATCH_SIZE, volunteers)
        yield stop, _batch_rows(rng, population, start + 1, first_id + start, ages[start:stop])


def skill_log_weights(
    rng: np.random.Generator,
    skill_ids: Sequence[str],
    parent_ids: Sequence[str | None],
    exponent: float = 1.1,
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
            0.02 if parent is None else 0.3 if skill in parents else 1.0
            for skill, parent in zip(skill_ids, parent_ids, strict=True)
        ]
    )
    base += np.log(damping)
    offers = base + rng.normal(0.0, 0.4, n_skills)
    wants = base + rng.normal(0.0, 0.4, n_skills)
    return offers, wants


def signup_ages(rng: np.random.Generator, count: int, days: int = 730) -> FloatArray:
    """Seconds before now at which each volunteer signed up, oldest first; shape (count,).

    Sign-ups grow over time (density falling linearly with age), with bursts around a few
    campaigns, so that statistics timelines look like a real community's.
    """
    span = days * 86400.0
    ages = (1.0 - np.sqrt(rng.random(count))) * span
    campaign = rng.random(count) < 0.15
    centres = np.array([45.0, 210.0, 400.0, 575.0]) * 86400.0
    burst = centres[rng.integers(0, len(centres), count)] + rng.normal(0.0, 4 * 86400.0, count)
    ages = np.where(campaign, np.clip(burst, 0.0, span), ages)
    return np.sort(ages)[::-1].copy()


def pick_skills(
    rng: np.random.Generator,
    log_weights: FloatArray,
    counts: IntArray,
    exclude: BoolArray | None = None,
) -> tuple[IntArray, BoolArray]:
    """Distinct skills per volunteer, drawn without replacement in proportion to the weights.

    Gumbel-top-k sampling. ``counts`` has shape (n,); ``exclude`` (n, n_skills) marks skills
    a volunteer may not get. Returns skill indices of shape (n, k), strongest draw first,
    and the mask (n, k) of the entries each volunteer actually has.
    """
    n_skills = len(log_weights)
    k = max(1, min(int(counts.max(initial=1)), n_skills))
    keys = log_weights[None, :] + rng.gumbel(size=(len(counts), n_skills))
    if exclude is not None:
        keys[exclude] = -np.inf
    top = np.argpartition(-keys, k - 1, axis=1)[:, :k]
    top_keys = np.take_along_axis(keys, top, axis=1)
    order = np.argsort(-top_keys, axis=1, kind="stable")
    chosen = np.take_along_axis(top, order, axis=1)
    mask = (np.arange(k)[None, :] < counts[:, None]) & np.isfinite(
        np.take_along_axis(top_keys, order, axis=1)
    )
    return chosen.astype(np.int64), mask


def weekly_availability(
    rng: np.random.Generator, count: int
) -> tuple[IntArray, IntArray, IntArray, IntArray]:
    """Weekly slots in local time: ``(owner, weekday, start_minute, end_minute)``, each (m,).

    About one volunteer in ten gives none. The others have a usual weekday evening (same
    start and length, on some weekdays, sometimes half an hour earlier or later), a few a
    lunch hour, many a Saturday or Sunday morning or afternoon block. Times are on quarter
    hours and slots on one day never overlap: lunch ends by 13:30, evenings start at 16:30
    or later, weekend mornings end by 14:00 and afternoons start at 15:00 or later.
    """
    has_any = rng.random(count) >= 0.10
    weekdays = np.arange(5)

    evening_person = has_any & (rng.random(count) < 0.8)
    evening_rate = rng.beta(2.0, 2.0, count)
    usual_start = rng.choice(_EVENING_STARTS, p=_EVENING_START_P, size=count)
    usual_length = rng.choice([60, 90, 120, 150, 180], p=[0.2, 0.3, 0.3, 0.1, 0.1], size=count)
    evening = evening_person[:, None] & (rng.random((count, 5)) < evening_rate[:, None])
    evening_start = usual_start[:, None] + rng.choice(
        [-30, 0, 30], p=[0.1, 0.8, 0.1], size=(count, 5)
    )
    evening_end = np.minimum(evening_start + usual_length[:, None], 1440)

    lunch_person = has_any & (rng.random(count) < 0.06)
    lunch = lunch_person[:, None] & (rng.random((count, 5)) < 0.5)
    lunch_start = np.repeat(rng.choice([720, 750], size=count)[:, None], 5, axis=1)
    lunch_end = lunch_start + 60

    weekend_person = has_any & (rng.random(count) < 0.55)
    morning = weekend_person[:, None] & (rng.random((count, 2)) < 0.55)
    morning_start = rng.choice([480, 540, 570, 600, 630, 660], size=(count, 2))
    morning_end = morning_start + rng.choice([90, 120, 150, 180], size=(count, 2))
    afternoon = weekend_person[:, None] & (rng.random((count, 2)) < 0.45)
    afternoon_start = rng.choice([900, 930, 960], size=(count, 2))
    afternoon_end = afternoon_start + rng.choice([60, 120, 180, 240], size=(count, 2))

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


def _choose_per_row(
    rng: np.random.Generator, tables: Sequence[Sequence[float]], which: IntArray
) -> IntArray:
    """One index per row into ``tables[which[row]]``, drawn by that table's weights."""
    width = max(len(table) for table in tables)
    cumulative = np.full((len(tables), width), 2.0)
    for index, table in enumerate(tables):
        weights = np.asarray(table, dtype=np.float64)
        cumulative[index, : len(table)] = np.cumsum(weights / weights.sum())
        cumulative[index, len(table) - 1] = 1.0
    draws = rng.random(len(which))
    chosen: IntArray = (draws[:, None] >= cumulative[which]).sum(axis=1).astype(np.int64)
    return chosen


def _batch_rows(
    rng: np.random.Generator,
    population: _Population,
    first_number: int,
    first_id: int,
    ages: FloatArray,
) -> tuple[list[Row], list[Row], list[Row], list[Row], list[Row]]:
    """Rows of volunteers, languages, slots, offers and wants for one batch."""
    count = len(ages)
    profiles = [REGION_PROFILES[code] for code in REGION_CODES]
    region = _choose_per_row(rng, [[p.share for p in profiles]], np.zeros(count, np.int64))
    region_given = rng.random(count) >= 0.02
    zone = _choose_per_row(rng, [list(p.zones.values()) for p in profiles], region)
    first_language = _choose_per_row(rng, [list(p.languages.values()) for p in profiles], region)
    extra_language = [
        _choose_per_row(rng, [list(p.languages.values()) for p in profiles], region)
        for _ in range(3)
    ]
    english_draw = rng.random(count)
    english_level = rng.choice([2, 3, 4], p=[0.25, 0.45, 0.3], size=count)
    extra_draw = rng.random(count)
    extra_level = rng.choice([1, 2, 3, 4], p=[0.3, 0.3, 0.25, 0.15], size=count)
    first_name = rng.integers(0, 1 << 16, count)
    last_name = rng.integers(0, 1 << 16, count)

    offers_skills = rng.random(count) < 0.35
    wants_skills = rng.random(count) < np.where(offers_skills, 0.6, 0.9)
    offer_count = np.where(
        offers_skills, rng.choice([1, 2, 3, 4], p=[0.4, 0.3, 0.2, 0.1], size=count), 0
    )
    want_count = np.where(wants_skills, rng.choice([1, 2, 3], p=[0.5, 0.35, 0.15], size=count), 0)
    offered, offer_mask = pick_skills(rng, population.offer_weights, offer_count)
    # Nobody wants to learn what they offer to teach.
    exclude = np.zeros((count, len(population.skill_ids)), dtype=bool)
    mentor_row, offer_column = np.nonzero(offer_mask)
    exclude[mentor_row, offered[mentor_row, offer_column]] = True
    wanted, want_mask = pick_skills(rng, population.want_weights, want_count, exclude)
    offer_level = rng.choice([2, 3, 4], p=[0.3, 0.45, 0.25], size=offered.shape)
    want_level = rng.choice([1, 2, 3, 4], p=[0.35, 0.35, 0.2, 0.1], size=wanted.shape)
    offer_note = np.where(
        rng.random(offered.shape) < 0.1, rng.integers(0, len(_NOTES), offered.shape), -1
    )
    want_note = np.where(
        rng.random(wanted.shape) < 0.15, rng.integers(0, len(_NOTES), wanted.shape), -1
    )
    capacity = np.where(
        offers_skills, rng.choice([1, 2, 3, 4, 5], p=[0.25, 0.3, 0.2, 0.1, 0.15], size=count), 0
    )

    bio_draw = rng.random(count)
    bio_template = rng.integers(0, 1 << 16, count)
    years_editing = rng.integers(0, 12, count)
    inactive = rng.random(count) < 0.01
    deactivated_age = ages * rng.random(count)
    end_age = np.where(inactive, deactivated_age, 0.0)
    seen = rng.random(count) < 0.9
    seen_age = ages - (ages - end_age) * rng.random(count) ** (1 / 3)
    updated_age = ages - (ages - np.where(seen, seen_age, end_age)) * rng.random(count)
    owner, weekday, start, end = weekly_availability(rng, count)

    now = population.now
    names = population.skill_names
    ids = population.skill_ids
    volunteers: list[Row] = []
    languages: list[Row] = []
    offers: list[Row] = []
    wants: list[Row] = []
    for row in range(count):
        number = first_number + row
        volunteer_id = first_id + row
        profile = profiles[region[row]]
        created = now - timedelta(seconds=round(float(ages[row])))
        offer_names = [names[s] for s, ok in zip(offered[row], offer_mask[row], strict=True) if ok]
        want_names = [names[s] for s, ok in zip(wanted[row], want_mask[row], strict=True) if ok]
        username = f"demo{number}"
        volunteers.append(
            {
                "id": volunteer_id,
                "username": username,
                "username_key": username_key(username),
                "email": f"{username}@{DEMO_EMAIL_DOMAIN}",
                "password_hash": population.password_hash,
                "display_name": (
                    f"{profile.first_names[first_name[row] % len(profile.first_names)]} "
                    f"{profile.last_names[last_name[row] % len(profile.last_names)]}"
                ),
                "bio": _bio(
                    offer_names,
                    want_names,
                    created.year - int(years_editing[row]),
                    float(bio_draw[row]),
                    int(bio_template[row]),
                ),
                "timezone": list(profile.zones)[zone[row]],
                "region": REGION_CODES[region[row]] if region_given[row] else None,
                "mentor_capacity": int(capacity[row]),
                "role": "volunteer",
                "is_active": not inactive[row],
                "deactivated_at": (
                    now - timedelta(seconds=round(float(deactivated_age[row])))
                    if inactive[row]
                    else None
                ),
                "last_seen_at": (
                    now - timedelta(seconds=round(float(seen_age[row]))) if seen[row] else None
                ),
                "created_at": created,
                "updated_at": now - timedelta(seconds=round(float(updated_age[row]))),
            }
        )
        codes = list(profile.languages)
        spoken = [(codes[first_language[row]], 5)]
        if spoken[0][0] != "en" and english_draw[row] < profile.english:
            spoken.append(("en", int(english_level[row])))
        if extra_draw[row] < (0.2 if len(spoken) > 1 else 0.4):
            for candidate in extra_language:
                code = codes[candidate[row]]
                if all(code != known for known, _ in spoken):
                    spoken.append((code, int(extra_level[row])))
                    break
        languages.extend(
            {
                "volunteer_id": volunteer_id,
                "code": code,
                "language": code.split("-")[0],
                "level": level,
                "position": position,
            }
            for position, (code, level) in enumerate(spoken)
        )
        for table, chosen, mask, levels, notes in (
            (offers, offered, offer_mask, offer_level, offer_note),
            (wants, wanted, want_mask, want_level, want_note),
        ):
            table.extend(
                {
                    "volunteer_id": volunteer_id,
                    "skill_id": ids[chosen[row, position]],
                    "level": int(levels[row, position]),
                    "note": _NOTES[notes[row, position]] if notes[row, position] >= 0 else "",
                    "position": position,
                }
                for position in range(chosen.shape[1])
                if mask[row, position]
            )
    slots = [
        {"volunteer_id": first_id + o, "weekday": w, "start_minute": s, "end_minute": e}
        for o, w, s, e in zip(
            owner.tolist(), weekday.tolist(), start.tolist(), end.tolist(), strict=True
        )
    ]
    return volunteers, languages, slots, offers, wants


def _bio(offers: list[str], wants: list[str], year: int, draw: float, template: int) -> str:
    if draw < 0.25:
        return ""
    templates: tuple[str, ...]
    if offers and wants:
        templates = _BOTH_BIOS
    elif offers:
        templates = _MENTOR_BIOS
    elif wants:
        templates = _LEARNER_BIOS
    else:
        templates = _QUIET_BIOS
    return templates[template % len(templates)].format(
        offers=_and_list(offers[:2]), wants=_and_list(wants[:2]), year=year
    )


def _and_list(items: list[str]) -> str:
    return " and ".join(items) if len(items) <= 2 else ", ".join(items[:-1]) + " and " + items[-1]


def _in_sentence(name: str) -> str:
    """A skill name as it reads inside a sentence: "Grant writing" -> "grant writing"."""
    first_word = name.split()[0]
    if first_word in _PROPER_NAMES or name.startswith("Wik") or name[1:] != name[1:].lower():
        return name
    return name[0].lower() + name[1:]


def _refuse_existing(session: Session, count: int) -> None:
    taken = [
        int(match.group(1))
        for key in session.scalars(
            select(Volunteer.username_key).where(Volunteer.username_key.like("demo%"))
        )
        if (match := _DEMO_USERNAME.fullmatch(key)) and int(match.group(1)) <= count
    ]
    if taken:
        raise Conflict(f"demo volunteers already exist (demo{min(taken)}); use a fresh database")


def _reserve_ids(session: Session, count: int) -> int:
    """The first of ``count`` consecutive free volunteer ids, given explicitly on insert.

    On PostgreSQL the block is also taken from the id sequence, so that accounts registered
    afterwards (or meanwhile) get ids after it.
    """
    max_id = session.scalar(select(func.max(Volunteer.id))) or 0
    if session.get_bind().dialect.name != "postgresql":
        return max_id + 1
    sequence = "pg_get_serial_sequence('volunteers', 'id')"
    next_value = session.scalar(text(f"SELECT nextval({sequence})")) or 1
    first_id = max(max_id + 1, int(next_value))
    session.execute(text(f"SELECT setval({sequence}, :last)"), {"last": first_id + count - 1})
    return first_id


def _table(model: type[Any]) -> Table:
    return Volunteer.metadata.tables[model.__tablename__]
