"""A synthetic population of volunteers that looks like the movement, for demos and benchmarks.

``populate`` writes users ``demo1`` .. ``demoN`` with profiles drawn from one seeded
``np.random.Generator``: the same seed and count give the same people. Skill popularity is
long-tailed, regions come with their own time zones, languages and names, availability is
mostly local evenings and weekend blocks, and sign-ups spread over the last two years.
Rows are written with Core bulk inserts in batches, so 100,000 volunteers take seconds.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import Table, func, insert, select, text
from sqlalchemy.orm import Session

from capex.errors import Conflict, Invalid
from capex.models import AvailabilitySlot, Skill, SkillOffer, SkillWant, Volunteer, VolunteerLanguage
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
        first_names=(
            "Emma", "Lukas", "Sophie", "Jan", "Anna", "Thomas", "Julia", "Pierre",
            "Camille", "Lars", "Ingrid", "Giulia", "Marco", "Laura", "Oliver", "Freya",
        ),
        last_names=(
            "Müller", "Schmidt", "Dubois", "Martin", "de Vries", "Jansen", "Andersson",
            "Johansson", "Rossi", "Bianchi", "García", "Murphy", "Jones", "Bernard",
            "Nielsen", "Fischer",
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
        first_names=(
            "Anna", "Piotr", "Olena", "Andriy", "Katarzyna", "Tomáš", "Ivana", "Nikola",
            "Elena", "Dmitri", "Mariam", "Giorgi", "Aigerim", "Mehmet", "Zeynep", "Ana",
        ),
        last_names=(
            "Kowalski", "Nowak", "Shevchenko", "Kovalenko", "Novák", "Horvat", "Petrović",
            "Popescu", "Ivanov", "Beridze", "Hovhannisyan", "Nurlanov", "Yılmaz", "Kaya",
            "Wójcik", "Kuznetsova",
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
        first_names=(
            "Amara", "Chinedu", "Ngozi", "Kwame", "Abena", "Wanjiru", "Otieno", "Thabo",
            "Zanele", "Fatou", "Moussa", "Aisha", "Tunde", "Kofi", "Nia", "Sipho",
        ),
        last_names=(
            "Okafor", "Adeyemi", "Mensah", "Kamau", "Odhiambo", "Ndlovu", "Dlamini",
            "Diallo", "Traoré", "Mwangi", "Boateng", "Bello", "Nkosi", "Abubakar",
            "Asante", "Achieng",
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
        first_names=(
            "Priya", "Arjun", "Ananya", "Rahul", "Fatima", "Ayesha", "Imran", "Sita",
            "Bikash", "Nusrat", "Tanvir", "Lakshmi", "Karthik", "Suman", "Pooja", "Ravi",
        ),
        last_names=(
            "Sharma", "Patel", "Khan", "Das", "Rahman", "Iyer", "Shrestha", "Hossain",
            "Gupta", "Singh", "Perera", "Chowdhury", "Thapa", "Reddy", "Ahmed", "Nair",
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
        first_names=(
            "Sofía", "Mateo", "Valentina", "Santiago", "Camila", "Lucas", "Gabriela",
            "João", "Ana", "Diego", "Isabela", "Luis", "Mariana", "Pedro", "Daniela", "Jorge",
        ),
        last_names=(
            "González", "Rodríguez", "Silva", "Santos", "Pérez", "Oliveira", "Gómez",
            "Fernández", "López", "Souza", "Martínez", "Díaz", "Ramírez", "Costa",
            "Torres", "Flores",
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
        first_names=(
            "Emily", "Michael", "Sarah", "David", "Jessica", "James", "Olivia", "Daniel",
            "Maria", "Kevin", "Aiyana", "Wei", "Jasmine", "Carlos", "Hannah", "Noah",
        ),
        last_names=(
            "Smith", "Johnson", "Williams", "Brown", "Garcia", "Miller", "Davis", "Nguyen",
            "Lee", "Martinez", "Wilson", "Anderson", "Thompson", "Tremblay", "Roy", "Clark",
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
        first_names=(
            "Ahmed", "Fatima", "Omar", "Layla", "Youssef", "Mariam", "Ali", "Sara",
            "Karim", "Nour", "Hassan", "Zahra", "Amir", "Leila", "Reza", "Yasmin",
        ),
        last_names=(
            "Hassan", "Ali", "Mahmoud", "Ibrahim", "El Amrani", "Haddad", "Khalil",
            "Rahimi", "Karimi", "Benali", "Mansour", "Saleh", "Abdullah", "Nasser",
            "Hosseini", "Cohen",
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
        first_names=(
            "Wei", "Mei", "Hiroshi", "Yuki", "Min-jun", "Ji-woo", "Siti", "Budi",
            "Maria", "Jose", "Linh", "Minh", "Nurul", "Aroha", "Somchai", "Chen",
        ),
        last_names=(
            "Wang", "Li", "Zhang", "Chen", "Tanaka", "Sato", "Kim", "Park", "Santoso",
            "Wijaya", "Reyes", "Santos", "Nguyen", "Tran", "Ngata", "Lim",
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
    "I can help with {offers} and I want to learn {wants}.",
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


def populate(
    session: Session,
    *,
    volunteers: int,
    seed: int = 1,
    password: str = DEFAULT_DEMO_PASSWORD,
    progress: Callable[[int], None] | None = None,
) -> DemoResult:
    """Write volunteers ``demo1`` .. ``demo{volunteers}``, all with one password.

    The same ``seed`` and ``volunteers`` give the same population; ``progress`` is called
    with the number of volunteers written so far after each batch. Raises ``Conflict``
    when any of these usernames exists. The caller commits.
    """
    started = time.perf_counter()
    if volunteers < 1:
        raise Invalid("volunteers must be at least 1")
    session.flush()
    _refuse_existing(session, volunteers)
    skill_rows = session.execute(select(Skill.id, Skill.parent_id).order_by(Skill.id)).all()
    if not skill_rows:
        raise Invalid("the skill taxonomy is empty; run the migrations first")
    skill_ids = [row.id for row in skill_rows]
    parent_ids = [row.parent_id for row in skill_rows]
    names = dict(session.execute(select(Skill.id, Skill.name)).tuples().all())
    skill_names = [_in_sentence(names[skill_id]) for skill_id in skill_ids]

    rng = np.random.default_rng(seed)
    offer_weights, want_weights = skill_log_weights(rng, parent_ids)
    now = utcnow().replace(microsecond=0)
    ages = signup_ages(rng, volunteers)
    password_hash = hash_password(password)
    first_id = _reserve_ids(session, volunteers)

    tables = [_table(model) for model in (Volunteer, VolunteerLanguage, AvailabilitySlot)]
    tables += [_table(SkillOffer), _table(SkillWant)]
    for start in range(0, volunteers, BATCH_SIZE):
        count = min(BATCH_SIZE, volunteers - start)
        batch = _Batch(
            rng=rng,
            number=start + 1,
            first_id=first_id + start,
            ages=ages[start : start + count],
            now=now,
            password_hash=password_hash,
            skill_ids=skill_ids,
            skill_names=skill_names,
            offer_weights=offer_weights,
            want_weights=want_weights,
        )
        for table, rows in zip(tables, batch.rows(), strict=True):
            if rows:
                session.execute(insert(table), rows)
        if progress is not None:
            progress(start + count)
    return DemoResult(
        created=volunteers,
        first_id=first_id,
        last_id=first_id + volunteers - 1,
        seconds=time.perf_counter() - started,
    )


def skill_log_weights(
    rng: np.random.Generator, parent_ids: Sequence[str | None], exponent: float = 1.1
) -> tuple[FloatArray, FloatArray]:
    """Log popularity of each skill as an offer and as a want, shapes (n_skills,).

    One Zipf-like ranking (weight ``1 / rank**exponent``) over a random order of the skills,
    so a few are very popular and most are rare; roots and inner skills are much less often
    chosen than leaves. Offers and wants share the ranking with some independent jitter.
    """
    n_skills = len(parent_ids)
    has_children = {parent for parent in parent_ids if parent is not None}
    # parent_ids is in skill id order; a skill is a parent when its id is some parent_id.
    ranks = rng.permutation(n_skills)
    base = -exponent * np.log1p(ranks.astype(np.float64))
    damping = np.ones(n_skills)
    for index, parent in enumerate(parent_ids):
        if parent is None:
            damping[index] = 0.02
    base += np.log(damping)
    base_with_inner = base.copy()
    offers = base_with_inner + rng.normal(0.0, 0.4, n_skills)
    wants = base_with_inner + rng.normal(0.0, 0.4, n_skills)
    return offers, wants, has_children  # type: ignore[return-value]


def signup_ages(rng: np.random.Generator, count: int, days: int = 730) -> FloatArray:
    """Seconds before now at which each volunteer signed up, oldest first, shape (count,).

    Sign-ups grow over time (density falling linearly with age) with bursts around a few
    campaigns, as the movement's sign-up curves do.
    """
    span = days * 86400.0
    ages = (1.0 - np.sqrt(rng.random(count))) * span
    campaign = rng.random(count) < 0.15
    centres = np.array([45.0, 210.0, 400.0, 575.0]) * 86400.0
    burst = centres[rng.integers(0, len(centres), count)] + rng.normal(0.0, 4 * 86400.0, count)
    ages = np.where(campaign, np.clip(burst, 0.0, span), ages)
    return np.sort(ages)[::-1].copy()
