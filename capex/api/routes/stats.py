"""Statistics for coordinators: JSON, CSV, and open data (Commons tabular data)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import format_datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from capex.api.deps import Coordinator, SettingsDep, StatsDep
from capex.config import Settings
from capex.errors import Invalid, field_error
from capex.schemas.common import Problem, Schema
from capex.schemas.profiles import LanguageCode, Region
from capex.schemas.skills import SkillId
from capex.schemas.stats import (
    Day,
    FunnelRead,
    LanguageStatsRead,
    MentorStatsRead,
    OverviewRead,
    RegionStatsRead,
    SkillStatsRead,
    TimelineRead,
)
from capex.services import stats_tables
from capex.services.stats import StatsFilter, StatsQuery
from capex.services.tables import Table, to_csv

router = APIRouter(prefix="/stats", tags=["statistics"])

CSV_MEDIA_TYPE = "text/csv"
# A Wikimedia Commons tabular data document (the JSON of a Data:….tab page).
TAB_MEDIA_TYPE = "application/vnd.capex.tabular+json"

_TAB_DOCUMENT: dict[str, Any] = {
    "type": "object",
    "description": "A Wikimedia Commons tabular data document: counts below "
    "CAPEX_STATS_MIN_CELL are null, and nobody is named.",
    "required": ["license", "description", "schema", "data"],
    "properties": {
        "license": {"type": "string", "enum": ["CC0-1.0"]},
        "description": {"type": "object", "additionalProperties": {"type": "string"}},
        "sources": {"type": "string"},
        "schema": {
            "type": "object",
            "required": ["fields"],
            "properties": {
                "fields": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["name", "type", "title"],
                        "properties": {
                            "name": {"type": "string"},
                            "type": {"type": "string", "enum": ["number", "string", "boolean"]},
                            "title": {
                                "type": "object",
                                "additionalProperties": {"type": "string"},
                            },
                        },
                    },
                }
            },
        },
        "data": {
            "type": "array",
            "items": {
                "type": "array",
                "items": {"type": ["number", "string", "boolean", "null"]},
            },
        },
    },
}

_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The figures: JSON, CSV (`?format=csv` or `Accept: text/csv`), or open "
        f"data (`?format=tab` or `Accept: {TAB_MEDIA_TYPE}`). `Last-Modified` is `as_of`.",
        "content": {
            CSV_MEDIA_TYPE: {"schema": {"type": "string"}},
            TAB_MEDIA_TYPE: {"schema": _TAB_DOCUMENT},
        },
    },
    401: {"model": Problem},
    403: {"model": Problem},
    422: {"model": Problem},
}

Format = Literal["json", "csv", "tab"]


def stats_filter(
    region: Annotated[Region | None, Query(description="volunteers of this region")] = None,
    language: Annotated[
        LanguageCode | None, Query(description="volunteers speaking it; 'pt' also finds 'pt-BR'")
    ] = None,
    area: Annotated[SkillId | None, Query(description="skills under this root skill")] = None,
    since: Annotated[Day | None, Query(description="exchanges made on or after this day")] = None,
    until: Annotated[Day | None, Query(description="exchanges made on or before this day")] = None,
) -> StatsFilter:
    if since is not None and until is not None and since > until:
        raise Invalid(
            f"since ({since}) is after until ({until})",
            [field_error(["query", "until"], "on or after since")],
        )
    return StatsFilter(region=region, language=language, area=area, since=since, until=until)


@dataclass(frozen=True, slots=True)
class Asked:
    """A statistics request: its query, and the format it wants the answer in."""

    query: StatsQuery
    format: Format
    settings: Settings


def asked(
    request: Request,
    _coordinator: Coordinator,
    settings: SettingsDep,
    filters: Annotated[StatsFilter, Depends(stats_filter)],
    format: Annotated[
        Format | None,
        Query(description="json (the default), csv, or tab (open data); beats Accept"),
    ] = None,
) -> Asked:
    return Asked(StatsQuery(settings, filters), format or _accepted(request), settings)


AskedDep = Annotated[Asked, Depends(asked)]


def _accepted(request: Request) -> Format:
    """The format the Accept header prefers (the first listed wins a tie); JSON by default."""
    kinds: dict[str, Format] = {
        CSV_MEDIA_TYPE: "csv",
        TAB_MEDIA_TYPE: "tab",
        "application/json": "json",
        "*/*": "json",
    }
    choices: list[tuple[float, int, Format]] = []
    for position, item in enumerate(request.headers.get("accept", "").split(",")):
        media, *parameters = (part.strip() for part in item.split(";"))
        quality = 1.0
        for parameter in parameters:
            key, _, value = parameter.partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        kind = kinds.get(media.lower())
        if kind is not None and quality > 0:
            choices.append((quality, -position, kind))
    return max(choices)[2] if choices else "json"


def _rendered(
    asked: Asked,
    answer: Any,
    tables: Callable[[Any], list[Table]],
    model: type[Schema],
    table: str | None = None,
) -> Response:
    """The answer in the format asked for: JSON as ``model``, or ``table`` (by default the
    first) of its ``tables`` as CSV or open data."""
    as_of = format_datetime(answer.as_of, usegmt=True)
    if asked.format == "json":
        return Response(
            model.model_validate(answer).model_dump_json(),
            media_type="application/json",
            headers={"Last-Modified": as_of},
        )
    made = tables(answer)
    chosen = made[0] if table is None else next(t for t in made if t.name == table)
    if asked.format == "csv":
        body, media, suffix = to_csv(chosen), f"{CSV_MEDIA_TYPE}; charset=utf-8", "csv"
    else:
        document = stats_tables.open_data(
            chosen, min_cell=asked.settings.stats_min_cell, as_of=answer.as_of
        )
        body, media, suffix = json.dumps(document, ensure_ascii=False), TAB_MEDIA_TYPE, "tab"
    return Response(
        body,
        media_type=media,
        headers={
            "Last-Modified": as_of,
            "Content-Disposition": f'attachment; filename="{chosen.name}.{suffix}"',
        },
    )


@router.get("/overview", response_model=OverviewRead, responses=_RESPONSES)
def read_overview(asked: AskedDep, source: StatsDep) -> Any:
    """The headline figures: people, exchanges by state, rates, response time."""
    answer = source.overview(asked.query)
    return _rendered(asked, answer, stats_tables.overview_tables, OverviewRead)


@router.get("/skills", response_model=SkillStatsRead, responses=_RESPONSES)
def read_skills(
    asked: AskedDep,
    source: StatsDep,
    level: Annotated[
        Literal["skill", "area"], Query(description="per skill or per area")
    ] = "skill",
) -> Any:
    """Supply and demand per skill (or root area), the largest gap first, with exchanges."""
    answer = source.skills(asked.query, level=level)
    return _rendered(asked, answer, stats_tables.skill_tables, SkillStatsRead)


@router.get("/funnel", response_model=FunnelRead, responses=_RESPONSES)
def read_funnel(
    asked: AskedDep,
    source: StatsDep,
    table: Annotated[
        Literal["stages", "lost"], Query(description="which table CSV and open data give")
    ] = "stages",
) -> Any:
    """How requests fare from asking to feedback, and where the others were lost."""
    answer = source.funnel(asked.query)
    return _rendered(
        asked,
        answer,
        stats_tables.funnel_tables,
        FunnelRead,
        {"stages": "funnel", "lost": "funnel_lost"}[table],
    )


@router.get("/timeline", response_model=TimelineRead, responses=_RESPONSES)
def read_timeline(
    asked: AskedDep,
    source: StatsDep,
    interval: Annotated[Literal["month", "week"], Query()] = "month",
) -> Any:
    """Volunteers joining and exchanges moving, per month or ISO week, oldest first."""
    answer = source.timeline(asked.query, interval=interval)
    return _rendered(asked, answer, stats_tables.timeline_tables, TimelineRead)


@router.get("/regions", response_model=RegionStatsRead, responses=_RESPONSES)
def read_regions(asked: AskedDep, source: StatsDep) -> Any:
    """People and exchanges per region; a learner's region for their exchanges."""
    answer = source.regions(asked.query)
    return _rendered(asked, answer, stats_tables.region_tables, RegionStatsRead)


@router.get("/languages", response_model=LanguageStatsRead, responses=_RESPONSES)
def read_languages(asked: AskedDep, source: StatsDep) -> Any:
    """People and exchanges per language, and the learners no mentor speaking it can teach."""
    answer = source.languages(asked.query)
    return _rendered(asked, answer, stats_tables.language_tables, LanguageStatsRead)


@router.get("/mentors", response_model=MentorStatsRead, responses=_RESPONSES)
def read_mentors(
    asked: AskedDep,
    source: StatsDep,
    table: Annotated[
        Literal["load", "waiting_requests", "top"],
        Query(description="which table CSV and open data give"),
    ] = "load",
    limit: Annotated[int, Query(ge=1, le=100, description="waiting requests and top mentors")] = 20,
) -> Any:
    """Mentors by load, the requests waiting longest, and the mentors who complete most."""
    answer = source.mentors(asked.query, limit=limit)
    return _rendered(asked, answer, stats_tables.mentor_tables, MentorStatsRead, f"mentors_{table}")
