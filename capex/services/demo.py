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


