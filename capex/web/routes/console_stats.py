"""The coordinators' console: the dashboard with its charts, the gap table with its
downloads, and the mentors' page with reminders (see docs/web.md)."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import date
from email.utils import format_datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Path, Query
from pydantic import TypeAdapter, ValidationError
from starlette.responses import HTMLResponse, RedirectResponse, Response

from capex.deps import NowDep, SessionDep, StatsDep
from capex.errors import Invalid, NotFound, field_error
from capex.regions import REGIONS
from capex.schemas.common import MAX_ID
from capex.schemas.profiles import LanguageCode
from capex.services import reminders, stats_tables
from capex.services.stats import SkillRow, SkillTable, StatsFilter, StatsQuery
from capex.services.stats_filters import filter_choices
from capex.services.tables import to_csv
from capex.web import charts
from capex.web.i18n import N_
from capex.web.pages import NOTICES, FormDep, HtmlRoute, Visit, VisitDep

router = APIRouter(route_class=HtmlRoute)

NOTICES.update(
    {
        "reminders-sent": N_("The mentors are reminded."),
        "reminders-some-skipped": N_(
            "Reminders sent; some were skipped: a request's mentor is reminded at most once "
            "in 24 hours."
        ),
        "reminders-all-skipped": N_(
            "No reminder sent: each of these mentors was reminded in the last 24 hours."
        ),
        "reminders-none": N_("No reminder sent: choose at least one waiting request."),
    }
)

# An SVG shown through <img> runs no script; matplotlib's inline styles need 'unsafe-inline'.
CHART_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:",
    "Cache-Control": "private, max-age=60",
    # The words follow the reader's language (its cookie, the account, or the browser's).
    "Vary": "Accept-Language, Cookie",
}
SVG_MEDIA_TYPE = "image/svg+xml"
CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
TAB_MEDIA_TYPE = "application/vnd.capex.tabular+json"

COLUMNS = (
    ("skill", N_("Id")),
    ("name", N_("Skill")),
    ("offered", N_("Mentors offering it")),
    ("open_slots", N_("Open slots")),
    ("wanted", N_("Learners wanting it")),
    ("gap", N_("Gap")),
    ("requested", N_("Requested")),
    ("accepted", N_("Accepted")),
    ("completed", N_("Completed")),
    ("expired", N_("Expired")),
    ("median_response_hours", N_("Median hours to answer")),
)
SORTABLE = tuple(name for name, _ in COLUMNS)
TEXT_COLUMNS = ("skill", "name")
Level = Literal["skill", "area"]
Order = Literal["asc", "desc"]

_language = TypeAdapter(LanguageCode)


# -- filters -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Filters:
    """The console's filter form as asked: what the services get, and what the form shows."""

    stats: StatsFilter
    values: dict[str, str]

    def query(self, **more: str) -> str:
        """The filters (and ``more``) as a query string, empty values left out."""
        pairs = {**self.values, **more}
        return urlencode({key: value for key, value in pairs.items() if value})


def _day(name: str, text: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise Invalid(
            f"{name} is not a date (YYYY-MM-DD)", [field_error(["query", name], "not a date")]
        ) from None


def filters_of(region: str, language: str, area: str, since: str, until: str) -> Filters:
    """The filters of the console's GET form; an empty field does not filter."""
    region, language, area = region.strip(), language.strip(), area.strip()
    if region and region not in REGIONS:
        raise Invalid(f"unknown region {region!r}", [field_error(["query", "region"], "unknown")])
    code: str | None = None
    if language:
        try:
            code = _language.validate_python(language)
        except ValidationError:
            raise Invalid(
                f"unknown language {language!r}",
                [field_error(["query", "language"], "not a language code")],
            ) from None
    first, last = _day("since", since.strip()), _day("until", until.strip())
    if first is not None and last is not None and first > last:
        raise Invalid(
            f"since ({first}) is after until ({last})",
            [field_error(["query", "until"], "on or after since")],
        )
    stats = StatsFilter(
        region=region or None, language=code, area=area or None, since=first, until=last
    )
    values = {
        "region": region,
        "language": code or "",
        "area": area,
        "since": first.isoformat() if first else "",
        "until": last.isoformat() if last else "",
    }
    return Filters(stats, values)


Text = Annotated[str, Query(max_length=64)]


def _context(session: SessionDep, filters: Filters, nav: str) -> dict[str, Any]:
    return {
        "nav": "console",
        "console_nav": nav,
        "filters": filters,
        "choices": filter_choices(session),
    }


def _coordinators_only(visit: Visit) -> None:
    """Sign-in for a visitor, the 403 page for a volunteer without the role."""
    _ = visit.coordinator


# -- dashboard -----------------------------------------------------------------------------


@router.get("/console", response_class=HTMLResponse)
def dashboard(
    visit: VisitDep,
    session: SessionDep,
    source: StatsDep,
    region: Text = "",
    language: Text = "",
    area: Text = "",
    since: Text = "",
    until: Text = "",
) -> Response:
    """The coordinators' dashboard: supply and demand, the funnel, the months, answer times."""
    _coordinators_only(visit)
    filters = filters_of(region, language, area, since, until)
    query = StatsQuery(visit.settings, filters.stats)
    lang = visit.language
    overview = source.overview(query)
    skill_table = source.skills(query)
    areas = source.skills(query, level="area")
    funnel = source.funnel(query)
    timeline = source.timeline(query)
    context = {
        **_context(session, filters, "dashboard"),
        "overview": overview,
        "top": charts.top_gaps(skill_table.items),
        "funnel": funnel,
        "timeline": timeline,
        "areas": charts.answered_areas(areas),
        "stage_names": charts.STAGE_NAMES,
        "headlines": {
            "supply": charts.supply_headline(skill_table.items, lang),
            "funnel": charts.funnel_headline(funnel, lang),
            "timeline": charts.timeline_headline(timeline, lang),
            "response": charts.response_headline(areas, overview.median_response_hours, lang),
        },
    }
    return visit.render("console/stats_dashboard.html", context)


@router.get("/console/charts/{name}.svg")
def chart(
    visit: VisitDep,
    source: StatsDep,
    name: Annotated[str, Path(max_length=16)],
    region: Text = "",
    language: Text = "",
    area: Text = "",
    since: Text = "",
    until: Text = "",
) -> Response:
    """One of the dashboard's charts as SVG, for the same filters as the page."""
    _coordinators_only(visit)
    if name not in charts.CHARTS:
        raise NotFound(visit._("There is no such chart."))
    filters = filters_of(region, language, area, since, until)
    query = StatsQuery(visit.settings, filters.stats)
    lang = visit.language
    if name == "supply":
        svg = charts.supply_svg(source.skills(query).items, lang)
    elif name == "funnel":
        svg = charts.funnel_svg(source.funnel(query), lang)
    elif name == "timeline":
        svg = charts.timeline_svg(source.timeline(query), lang)
    else:
        svg = charts.response_svg(source.skills(query, level="area"), lang)
    response = Response(svg, media_type=SVG_MEDIA_TYPE, headers=CHART_HEADERS)
    visit.finish(response)
    return response


# -- the gap table -------------------------------------------------------------------------


def sorted_rows(rows: list[SkillRow], column: str, descending: bool) -> list[SkillRow]:
    """``rows`` by ``column`` (ties by skill id), an empty value last either way."""
    by_id = sorted(rows, key=lambda row: row.skill)
    present = [row for row in by_id if getattr(row, column) is not None]
    empty = [row for row in by_id if getattr(row, column) is None]
    # A reversed sort stays stable: ties keep their id order.
    present.sort(key=lambda row: getattr(row, column), reverse=descending)
    return present + empty


@dataclass(frozen=True, slots=True)
class GapTable:
    """The gap table as shown: its filters, level, sort, and rows in that order."""

    filters: Filters
    level: str
    sort: str
    order: str
    table: SkillTable


def _gap_table(
    visit: Visit,
    source: StatsDep,
    filters: Filters,
    level: Level,
    sort: str,
    order: Order | None,
) -> GapTable:
    if sort not in SORTABLE:
        raise Invalid(f"cannot sort by {sort!r}", [field_error(["query", "sort"], "unknown")])
    chosen = order or ("asc" if sort in TEXT_COLUMNS else "desc")
    answer = source.skills(StatsQuery(visit.settings, filters.stats), level=level)
    rows = sorted_rows(answer.items, sort, chosen == "desc")
    return GapTable(filters, level, sort, chosen, replace(answer, items=rows))


def _view_of(gap: GapTable) -> dict[str, str]:
    return {"level": gap.level, "sort": gap.sort, "order": gap.order}


@router.get("/console/skills", response_class=HTMLResponse)
def gap_table(
    visit: VisitDep,
    session: SessionDep,
    source: StatsDep,
    region: Text = "",
    language: Text = "",
    area: Text = "",
    since: Text = "",
    until: Text = "",
    level: Level = "skill",
    sort: Text = "gap",
    order: Order | None = None,
) -> Response:
    """Every skill (or area) with supply, demand and exchanges; sortable; downloadable."""
    _coordinators_only(visit)
    filters = filters_of(region, language, area, since, until)
    gap = _gap_table(visit, source, filters, level, sort, order)
    links = {}
    for column in SORTABLE:
        if column == gap.sort:
            flipped = "asc" if gap.order == "desc" else "desc"
        else:
            flipped = "asc" if column in TEXT_COLUMNS else "desc"
        links[column] = "?" + filters.query(level=gap.level, sort=column, order=flipped)
    context = {
        **_context(session, filters, "skills"),
        "gap": gap,
        "columns": COLUMNS,
        "sort_links": links,
        "download_query": filters.query(**_view_of(gap)),
    }
    return visit.render("console/stats_skills.html", context)


def _download(
    visit: Visit,
    source: StatsDep,
    suffix: str,
    filters: Filters,
    level: Level,
    sort: str,
    order: Order | None,
) -> Response:
    _coordinators_only(visit)
    gap = _gap_table(visit, source, filters, level, sort, order)
    table = stats_tables.skill_tables(gap.table)[0]
    if suffix == "csv":
        body, media = to_csv(table), CSV_MEDIA_TYPE
    else:
        document = stats_tables.open_data(
            table, min_cell=visit.settings.stats_min_cell, as_of=gap.table.as_of
        )
        body, media = json.dumps(document, ensure_ascii=False), TAB_MEDIA_TYPE
    response = Response(
        body,
        media_type=media,
        headers={
            "Last-Modified": format_datetime(gap.table.as_of, usegmt=True),
            "Content-Disposition": f'attachment; filename="{table.name}.{suffix}"',
        },
    )
    visit.finish(response)
    return response


@router.get("/console/skills.{suffix}")
def gap_table_download(
    visit: VisitDep,
    source: StatsDep,
    suffix: Literal["csv", "tab"],
    region: Text = "",
    language: Text = "",
    area: Text = "",
    since: Text = "",
    until: Text = "",
    level: Level = "skill",
    sort: Text = "gap",
    order: Order | None = None,
) -> Response:
    """The gap table as shown, as CSV or as open data (Wikimedia Commons tabular JSON)."""
    filters = filters_of(region, language, area, since, until)
    return _download(visit, source, suffix, filters, level, sort, order)


# -- mentors -------------------------------------------------------------------------------


@router.get("/console/mentors", response_class=HTMLResponse)
def mentors(
    visit: VisitDep,
    session: SessionDep,
    source: StatsDep,
    now: NowDep,
    days: Annotated[int, Query(ge=0, le=365)] = 7,
) -> Response:
    """Mentors' load, who is full or idle, and the requests waiting longer than ``days``."""
    _coordinators_only(visit)
    load = source.mentors(StatsQuery(visit.settings)).load
    roster = reminders.mentor_roster(session, visit.settings, now=now)
    waiting = reminders.waiting_requests(session, visit.settings, older_than_days=days, now=now)
    context = {
        "nav": "console",
        "console_nav": "mentors",
        "load": load,
        "roster": roster,
        "waiting": waiting,
        "days": days,
        "now": now,
        "reminder_hours": int(reminders.REMINDER_INTERVAL.total_seconds() // 3600),
    }
    return visit.render("console/stats_mentors.html", context)


def _ids(values: list[Any]) -> list[int]:
    ids = []
    for value in values:
        if isinstance(value, str) and value.isdigit() and 1 <= int(value) <= MAX_ID:
            ids.append(int(value))
    return ids


@router.post("/console/mentors/remind")
def remind(visit: VisitDep, session: SessionDep, form: FormDep, now: NowDep) -> RedirectResponse:
    """Remind the mentors of the chosen waiting requests (or of all shown)."""
    me = visit.coordinator
    everything = form.get("action") == "all"
    chosen = _ids(form.getlist("shown") if everything else form.getlist("exchange"))
    days = form.get("days")
    back = "/console/mentors" + (
        f"?days={days}" if isinstance(days, str) and days.isdigit() else ""
    )
    if not chosen:
        return visit.redirect(back, notice="reminders-none")
    result = reminders.remind_mentors(session, visit.settings, chosen, by=me, now=now)
    if not result.sent:
        notice = "reminders-all-skipped" if result.skipped else "reminders-none"
    else:
        notice = "reminders-some-skipped" if result.skipped else "reminders-sent"
    return visit.redirect(back, notice=notice)
