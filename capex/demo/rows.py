"""The demo population as rows of its five tables, batch by batch, without a database."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from capex.demo import tables
from capex.demo.parameters import PARAMETERS
from capex.demo.sampling import FloatArray
from capex.demo.tables import Row
from capex.models.base import utcnow

BATCH_SIZE = 5000

# A batch's rows, one list per table, in this order.
TABLES = ("volunteers", "volunteer_languages", "availability_slots", "skill_offers", "skill_wants")
Batch = tuple[list[Row], list[Row], list[Row], list[Row], list[Row]]


@dataclass(frozen=True, slots=True)
class _Population:
    """What every batch draws from."""

    now: datetime
    password_hash: str
    skill_ids: list[str]
    skill_names: list[str]
    offer_weights: FloatArray
    want_weights: FloatArray


def generate(
    skills: Sequence[tuple[str, str | None, str]],
    *,
    volunteers: int,
    seed: int = 1,
    first_id: int = 1,
    password_hash: str = "",
    clock: Callable[[], datetime] = utcnow,
) -> Iterator[tuple[int, Batch]]:
    """The population as rows, without a database: ``(volunteers so far, batch)`` pairs.

    ``skills`` are ``(id, parent id, name)`` in id order; each batch holds the rows of the
    ``TABLES`` (volunteers, volunteer_languages, availability_slots, skill_offers and
    skill_wants) for up to ``BATCH_SIZE`` volunteers, with ids from ``first_id`` on. Dates
    are relative to ``clock()``. ``populate`` writes exactly these rows; the matching
    benchmark feeds them to the engine.
    """
    rng = np.random.default_rng(seed)
    offer_weights, want_weights = tables.skill_log_weights(
        rng, [skill[0] for skill in skills], [skill[1] for skill in skills]
    )
    population = _Population(
        now=clock().replace(microsecond=0),
        password_hash=password_hash,
        skill_ids=[skill[0] for skill in skills],
        skill_names=[tables.in_sentence(skill[2]) for skill in skills],
        offer_weights=offer_weights,
        want_weights=want_weights,
    )
    ages = tables.signup_ages(rng, volunteers)
    for start in range(0, volunteers, BATCH_SIZE):
        stop = min(start + BATCH_SIZE, volunteers)
        yield stop, _batch(rng, population, start + 1, first_id + start, ages[start:stop])


def _batch(
    rng: np.random.Generator,
    population: _Population,
    first_number: int,
    first_id: int,
    ages: FloatArray,
) -> Batch:
    """Rows of volunteers, languages, slots, offers and wants for one batch.

    The tables draw in this order, which is part of what a seed gives.
    """
    count = len(ages)
    homes = tables.draw_homes(rng, count, PARAMETERS)
    languages = tables.language_rows(rng, homes, first_id, PARAMETERS)
    names = tables.display_names(rng, homes)
    skills = tables.draw_skills(
        rng, population.offer_weights, population.want_weights, count, PARAMETERS
    )
    volunteers = tables.volunteer_rows(
        rng,
        tables.Volunteers(
            now=population.now,
            password_hash=population.password_hash,
            first_number=first_number,
            first_id=first_id,
            ages=ages,
        ),
        homes,
        names,
        skills,
        population.skill_names,
        PARAMETERS,
    )
    slots = tables.slot_rows(rng, count, first_id, PARAMETERS)
    offers = tables.offer_rows(skills, population.skill_ids, first_id)
    wants = tables.want_rows(skills, population.skill_ids, first_id)
    return volunteers, languages, slots, offers, wants
