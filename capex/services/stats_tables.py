"""Each statistics answer as tables (``capex.services.tables``), for CSV and open data.

An answer gives one table, or several when its JSON holds several lists (the funnel's
stages and losses; the mentors' load, waiting requests and top mentors). Every figure of
the JSON is in a table, under the same field name (the overview's ``exchanges`` object
flattened to ``exchanges_<state>``). A table's ``name`` is its file stem in an export.

Open data drops the columns that name or identify someone: mentors' ids and names,
exchange ids, and the skill of a single waiting request (with the mentor's waiting time, a
rarely offered skill would point at the mentor).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from capex.services import stats
from capex.services.tables import Cell, Column, Table, to_tab
from capex.vocabulary import ExchangeState


def _count(name: str, title: str) -> Column:
    return Column(name, title, count=True)


def _text(name: str, title: str, *, personal: bool = False) -> Column:
    return Column(name, title, "string", personal=personal)


_MEDIAN_TITLE = "Median hours from a request to the mentor's answer"


def overview_tables(answer: stats.Overview) -> list[Table]:
    states = list(ExchangeState)
    columns = (
        _count("volunteers", "Active volunteers"),
        _count("active_volunteers_30d", "Active volunteers seen in the last 30 days"),
        _count("new_volunteers_30d", "Volunteers who joined in the last 30 days"),
        _count("mentors", "Mentors (take learners and offer a skill)"),
        _count("mentors_with_open_slots", "Mentors with an open slot"),
        _count("learners", "Learners (want a skill)"),
        *(_count(f"exchanges_{state}", f"Exchanges {state}") for state in states),
        _count("requests_waiting", "Requests waiting for the mentor"),
        Column(
            "acceptance_rate",
            "Accepted over requests answered or ended",
            derived_from=tuple(f"exchanges_{state}" for state in states),
        ),
        Column(
            "completion_rate",
            "Completed over accepted exchanges that ended",
            derived_from=("exchanges_completed", "exchanges_cancelled"),
        ),
        Column(
            "expiry_rate",
            "Expired over requests answered or ended",
            derived_from=tuple(f"exchanges_{state}" for state in states),
        ),
        Column(
            "median_response_hours",
            _MEDIAN_TITLE,
            derived_from=("exchanges_accepted", "exchanges_declined"),
        ),
    )
    row: tuple[Cell, ...] = (
        answer.volunteers,
        answer.active_volunteers_30d,
        answer.new_volunteers_30d,
        answer.mentors,
        answer.mentors_with_open_slots,
        answer.learners,
        *(answer.exchanges[state] for state in states),
        answer.requests_waiting,
        answer.acceptance_rate,
        answer.completion_rate,
        answer.expiry_rate,
        answer.median_response_hours,
    )
    return [
        Table("overview", "capex: volunteers and exchanges, the headline figures", columns, (row,))
    ]


def skill_tables(answer: stats.SkillTable) -> list[Table]:
    area = answer.level == "area"
    columns = (
        _text("skill", "Area (root skill) id" if area else "Skill id"),
        _text("name", "Name"),
        _count("offered", "Mentors offering it"),
        _count("open_slots", "Open mentor slots for it"),
        _count("wanted", "Learners wanting it"),
        Column("gap", "Wanting learners less open slots", derived_from=("wanted", "open_slots")),
        _count("requested", "Requests"),
        _count("accepted", "Requests ever accepted"),
        _count("completed", "Exchanges completed"),
        _count("expired", "Requests expired unanswered"),
        Column("median_response_hours", _MEDIAN_TITLE, derived_from=("accepted",)),
    )
    rows = tuple(
        (
            item.skill,
            item.name,
            item.offered,
            item.open_slots,
            item.wanted,
            item.gap,
            item.requested,
            item.accepted,
            item.completed,
            item.expired,
            item.median_response_hours,
        )
        for item in answer.items
    )
    what = "area (root skill)" if area else "skill"
    return [
        Table(
            "areas" if area else "skills",
            f"capex: supply of mentors and demand of learners per {what}, and its exchanges",
            columns,
            rows,
        )
    ]


def funnel_tables(answer: stats.Funnel) -> list[Table]:
    stages = Table(
        "funnel",
        "capex: exchanges from request to feedback, stage by stage",
        (
            _text("stage", "Stage"),
            _count("count", "Exchanges that reached it"),
            Column("share_of_previous", "Share of the previous stage", derived_from=("count",)),
        ),
        tuple((stage.stage, stage.count, stage.share_of_previous) for stage in answer.stages),
    )
    lost = Table(
        "funnel_lost",
        "capex: requests lost before completion, by how they ended",
        (_text("state", "How it ended"), _count("count", "Exchanges")),
        tuple((str(state), count) for state, count in answer.lost.items()),
    )
    return [stages, lost]


def timeline_tables(answer: stats.Timeline) -> list[Table]:
    columns = (
        _text("period", "Month (YYYY-MM)" if answer.interval == "month" else "ISO week"),
        _count("new_volunteers", "Volunteers who joined"),
        _count("requested", "Requests made"),
        _count("accepted", "Requests accepted"),
        _count("completed", "Exchanges completed"),
        _count("expired", "Requests expired"),
    )
    rows = tuple(
        (row.period, row.new_volunteers, row.requested, row.accepted, row.completed, row.expired)
        for row in answer.items
    )
    return [
        Table(
            f"timeline_{answer.interval}",
            f"capex: volunteers joining and exchanges moving, per {answer.interval}",
            columns,
            rows,
        )
    ]


def _reach_columns(key: Column) -> tuple[Column, ...]:
    return (
        key,
        _count("volunteers", "Active volunteers"),
        _count("mentors", "Mentors"),
        _count("open_slots", "Open mentor slots"),
        _count("learners", "Learners"),
        _count("waiting_learners", "Learners no mentor with an open slot can teach"),
        _count("requested", "Requests by its learners"),
        _count("completed", "Exchanges completed by its learners"),
    )


def _reach(row: stats.Reach) -> tuple[Cell, ...]:
    return (
        row.volunteers,
        row.mentors,
        row.open_slots,
        row.learners,
        row.waiting_learners,
        row.requested,
        row.completed,
    )


def region_tables(answer: stats.RegionTable) -> list[Table]:
    return [
        Table(
            "regions",
            "capex: volunteers, mentors and learners per region (empty: none given)",
            _reach_columns(_text("region", "Region")),
            tuple((row.region, *_reach(row)) for row in answer.items),
        )
    ]


def language_tables(answer: stats.LanguageTable) -> list[Table]:
    return [
        Table(
            "languages",
            "capex: volunteers, mentors and learners per language spoken",
            _reach_columns(_text("language", "Language (primary subtag)")),
            tuple((row.language, *_reach(row)) for row in answer.items),
        )
    ]


def mentor_tables(answer: stats.MentorStats) -> list[Table]:
    load = Table(
        "mentors_load",
        "capex: mentors by how many learners they have accepted now",
        (
            Column("accepted_now", "Learners accepted now"),
            _count("mentors", "Mentors"),
        ),
        tuple((row.accepted_now, row.mentors) for row in answer.load),
    )
    mentor = (
        Column("mentor_id", "Mentor's id", personal=True),
        _text("mentor_username", "Mentor's username", personal=True),
        _text("mentor_display_name", "Mentor's name", personal=True),
    )
    waiting = Table(
        "mentors_waiting_requests",
        "capex: the requests waiting longest for their mentor's answer, oldest first",
        (
            Column("exchange_id", "Exchange id", personal=True),
            *mentor,
            _text("skill", "Skill id", personal=True),
            Column("waiting_days", "Days waiting"),
        ),
        tuple(
            (
                row.exchange_id,
                row.mentor.id,
                row.mentor.username,
                row.mentor.display_name,
                row.skill,
                row.waiting_days,
            )
            for row in answer.waiting_requests
        ),
    )
    top = Table(
        "mentors_top",
        "capex: the mentors with the most completed exchanges",
        (
            *mentor,
            _count("completed", "Exchanges completed"),
            Column("rating", "Mean rating by learners, 1 to 5", derived_from=("ratings",)),
            _count("ratings", "Ratings"),
        ),
        tuple(
            (
                row.mentor.id,
                row.mentor.username,
                row.mentor.display_name,
                row.completed,
                row.rating,
                row.ratings,
            )
            for row in answer.top
        ),
    )
    return [load, waiting, top]


@dataclass(frozen=True, slots=True)
class Export:
    """Every table, and when the figures were taken (the earliest answer's ``as_of``)."""

    as_of: datetime
    tables: list[Table]


def every_table(source: stats.StatsSource, query: stats.StatsQuery) -> Export:
    """Every table of every answer, for one query: what an export writes."""
    overview = source.overview(query)
    return Export(
        overview.as_of,
        [
            *overview_tables(overview),
            *skill_tables(source.skills(query)),
            *skill_tables(source.skills(query, level="area")),
            *funnel_tables(source.funnel(query)),
            *timeline_tables(source.timeline(query)),
            *timeline_tables(source.timeline(query, interval="week")),
            *region_tables(source.regions(query)),
            *language_tables(source.languages(query)),
            *mentor_tables(source.mentors(query)),
        ],
    )


def open_data(table: Table, *, min_cell: int, as_of: datetime) -> dict[str, Any]:
    """``table`` as the Commons tabular data document both the API and the export give."""
    return to_tab(table, min_cell=min_cell, sources=f"capex statistics as of {as_of.isoformat()}")
