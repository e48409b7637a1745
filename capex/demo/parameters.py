"""Every number that shapes the demo population, named, with what it means.

The region data (time zones, languages, names) lives in ``data/regions.toml``; these are the
chances and choices that hold everywhere. Changing one changes what a seed gives (the
population digests in ``tests/test_demo.py``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Choice:
    """Values drawn with ``rng.choice``: by the weights ``p``, or uniformly when ``p`` is None."""

    values: tuple[int, ...]
    p: tuple[float, ...] | None = None


@dataclass(frozen=True, slots=True)
class Parameters:
    """The chances and choices of the demo population, as of the current generator."""

    # --- sign-ups (seconds before now; density falls linearly with age) ---
    # Share of volunteers who signed up in a campaign burst rather than steadily.
    campaign_share: float = 0.15
    # Days before now of the campaigns' centres.
    campaign_days: tuple[float, ...] = (45.0, 210.0, 400.0, 575.0)
    # Standard deviation of a campaign sign-up around its centre, in days.
    campaign_spread_days: float = 4.0

    # --- skill popularity (log weights of a Zipf-like ranking) ---
    # Weight of a root skill ("Technology") against a leaf's 1: hardly ever named.
    root_damping: float = 0.02
    # Weight of an inner skill ("Programming") against a leaf's 1.
    inner_damping: float = 0.3
    # Standard deviation of the log-weight jitter that tells offers and wants apart.
    popularity_jitter: float = 0.4

    # --- home and languages ---
    # Share of volunteers who leave their region empty.
    region_unstated: float = 0.02
    # The language most people add to their own; ``english`` per region gives how often.
    lingua_franca: str = "en"
    # Level of a volunteer's first language (native).
    first_language_level: int = 5
    # Level of the lingua franca, for those who add it.
    lingua_franca_level: Choice = Choice((2, 3, 4), (0.25, 0.45, 0.3))
    # Chance of one more language of the region, for those who added the lingua franca ...
    extra_language_with_lingua_franca: float = 0.2
    # ... and for those who did not.
    extra_language_without: float = 0.4
    # How many of the region's languages are tried for that extra one (a repeat is skipped).
    extra_language_tries: int = 3
    # Level of the extra language.
    extra_language_level: Choice = Choice((1, 2, 3, 4), (0.3, 0.3, 0.25, 0.15))

    # --- offers and wants ---
    # Share of volunteers who offer skills (the mentors).
    offers_share: float = 0.35
    # Chance of wanting skills for someone who offers some ...
    wants_when_offering: float = 0.6
    # ... and for someone who offers none.
    wants_otherwise: float = 0.9
    # How many skills a mentor offers.
    offer_count: Choice = Choice((1, 2, 3, 4), (0.4, 0.3, 0.2, 0.1))
    # How many skills a learner wants.
    want_count: Choice = Choice((1, 2, 3), (0.5, 0.35, 0.15))
    # Level of an offered skill (a mentor knows it at least fairly well).
    offer_level: Choice = Choice((2, 3, 4), (0.3, 0.45, 0.25))
    # Level of a wanted skill (what the learner knows of it already).
    want_level: Choice = Choice((1, 2, 3, 4), (0.35, 0.35, 0.2, 0.1))
    # Chance that an offer carries a note (``notes`` in data/texts.toml).
    offer_note: float = 0.1
    # Chance that a want carries a note.
    want_note: float = 0.15
    # How many learners a mentor takes at once (0 for who offers nothing).
    mentor_capacity: Choice = Choice((1, 2, 3, 4, 5), (0.25, 0.3, 0.2, 0.1, 0.15))

    # --- the account's life ---
    # Share of volunteers whose bio is empty.
    empty_bio: float = 0.25
    # Years of editing before signing up, drawn from 0 up to this (exclusive), for bios.
    years_editing_below: int = 12
    # Share of accounts deactivated (at a uniform time between sign-up and now).
    deactivated: float = 0.01
    # Share of accounts seen since sign-up.
    seen: float = 0.9
    # Exponent on the uniform draw of when they were last seen: below 1, mostly lately.
    last_seen_exponent: float = 1 / 3

    # --- weekly availability (minutes after local midnight; weekdays 0-4, weekend 5-6) ---
    # Share of volunteers who give no availability at all.
    no_availability: float = 0.10
    # Of the others, the share with a usual weekday evening.
    evening_person: float = 0.8
    # Beta(a, b) of how many weekdays an evening person is free.
    evening_rate_beta: tuple[float, float] = (2.0, 2.0)
    # When the usual evening starts: 17:00-22:00, most often 18:00-19:30.
    evening_start: Choice = Choice(
        (1020, 1050, 1080, 1110, 1140, 1170, 1200, 1230, 1260, 1320),
        (0.06, 0.08, 0.16, 0.15, 0.17, 0.12, 0.1, 0.06, 0.06, 0.04),
    )
    # How long the usual evening lasts (cut at midnight).
    evening_length: Choice = Choice((60, 90, 120, 150, 180), (0.2, 0.3, 0.3, 0.1, 0.1))
    # On a given evening, starting half an hour earlier, on time, or later.
    evening_shift: Choice = Choice((-30, 0, 30), (0.1, 0.8, 0.1))
    # Share with a lunch hour on weekdays.
    lunch_person: float = 0.06
    # Chance that a lunch person is free on a given weekday.
    lunch_day: float = 0.5
    # When the lunch hour starts (it ends by 13:30).
    lunch_start: Choice = Choice((720, 750))
    # How long the lunch hour lasts.
    lunch_length: int = 60
    # Share with weekend blocks.
    weekend_person: float = 0.55
    # Chance of a morning block on a given weekend day (it ends by 14:00).
    weekend_morning: float = 0.55
    morning_start: Choice = Choice((480, 540, 570, 600, 630, 660))
    morning_length: Choice = Choice((90, 120, 150, 180))
    # Chance of an afternoon block on a given weekend day (it starts at 15:00 or later).
    weekend_afternoon: float = 0.45
    afternoon_start: Choice = Choice((900, 930, 960))
    afternoon_length: Choice = Choice((60, 120, 180, 240))


PARAMETERS = Parameters()


@dataclass(frozen=True, slots=True)
class HistoryParameters:
    """The chances and delays of the demo exchange history (``capex.demo.history``).

    Changing one changes what a seed gives (the history digest in
    ``tests/test_demo_history.py``).
    """

    # --- when ---
    # How far back the history reaches, in days (requests spread uniformly over the time
    # both participants were signed up within it).
    window_days: float = 730.0

    # --- the mentor's answer ---
    # Share of requests the learner withdraws before any answer.
    withdrawn: float = 0.05
    # Share of requests the mentor never answers: they expire after ``request_ttl_days``.
    unanswered: float = 0.15
    # Chance that an answered request is accepted by a mentor with no load ...
    accept_base: float = 0.85
    # ... divided by (1 + this x load), load being the mentor's requests per place and month.
    accept_load_slope: float = 0.5
    # Mean hours until the mentor answers (exponential; cut at 0.9 x the TTL).
    answer_mean_hours: float = 30.0
    # Hours after the TTL before the periodic task writes the expiry (uniform up to this).
    expiry_lag_hours: float = 1.0

    # --- after acceptance ---
    # Share of accepted exchanges that are completed (the others are cancelled).
    completed: float = 0.8
    # Days after acceptance before a completion at the earliest ...
    completion_min_days: float = 7.0
    # ... plus a Gamma(shape, scale in days) wait: ~4 weeks more on average.
    completion_gamma: tuple[float, float] = (2.0, 14.0)
    # Days after acceptance of a cancellation: uniform between 0 and this.
    cancel_within_days: float = 60.0
    # Share of cancellations and completions done by the mentor (the rest: the learner).
    mentor_closes: float = 0.5

    # --- feedback on completed exchanges ---
    # Chance that the learner rates the mentor ...
    learner_feedback: float = 0.6
    # ... and that the mentor rates the learner.
    mentor_feedback: float = 0.35
    # Mean days after completion of a rating (exponential; cut at now).
    feedback_mean_days: float = 3.0
    # Ratings 1-5, skewed high.
    rating: Choice = Choice((1, 2, 3, 4, 5), (0.02, 0.04, 0.12, 0.32, 0.5))


HISTORY_PARAMETERS = HistoryParameters()
