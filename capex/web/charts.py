"""The console's charts, drawn on the server as SVG by matplotlib.

Pure functions: each takes a statistics answer and the reader's ``Language`` (for the
titles, the axis labels and the numbers) and returns SVG text. No pyplot: a ``Figure``
made directly is thread-safe and needs no GUI. The output is deterministic: the SVG ids
come from a fixed hash salt and no date is written, so the same figures give the same
bytes. Beside each chart the page shows a table of the same numbers and a text
alternative made by the ``*_headline`` function of the same chart.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
matplotlib.rcParams["svg.hashsalt"] = "capex-console"
# Text stays text: smaller files, and the browser draws the words in its own font.
matplotlib.rcParams["svg.fonttype"] = "none"

from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import FuncFormatter, MaxNLocator  # noqa: E402

from capex.services.stats import Funnel, SkillRow, SkillTable, Timeline  # noqa: E402
from capex.web.i18n import N_, Language  # noqa: E402

# Okabe-Ito: told apart by people with any common colour blindness.
BLUE, ORANGE, GREEN, VERMILION, PURPLE = "#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7"
TOP_SKILLS = 15
CHARTS = ("supply", "funnel", "timeline", "response")
STAGE_NAMES = {
    "requested": N_("Requested"),
    "answered": N_("Answered"),
    "accepted": N_("Accepted"),
    "completed": N_("Completed"),
    "feedback": N_("With feedback"),
}


def _figure(height: float = 4.2) -> tuple[Figure, Axes]:
    figure = Figure(figsize=(7.2, height), layout="constrained")
    axes = figure.subplots()
    axes.spines[["top", "right"]].set_visible(False)
    return figure, axes


def _svg(figure: Figure) -> str:
    out = io.StringIO()
    figure.savefig(out, format="svg", metadata={"Date": None})
    return out.getvalue()


def _numbers(axes: Axes, lang: Language, axis: str = "x") -> None:
    formatter = FuncFormatter(lambda value, _position: lang.number(value))
    target = axes.xaxis if axis == "x" else axes.yaxis
    target.set_major_formatter(formatter)
    target.set_major_locator(MaxNLocator(integer=True))


def _empty(axes: Axes, lang: Language) -> None:
    axes.set_axis_off()
    axes.text(0.5, 0.5, lang.gettext("No figures yet."), ha="center", va="center")


def _short(name: str, most: int = 28) -> str:
    return name if len(name) <= most else name[: most - 1] + "…"


def top_gaps(rows: Sequence[SkillRow]) -> list[SkillRow]:
    """The skills with the worst gaps (most wanting learners over open slots), at most 15."""
    ranked = sorted(rows, key=lambda row: (-row.gap, row.skill))
    return [row for row in ranked if row.wanted or row.open_slots][:TOP_SKILLS]


def supply_svg(rows: Sequence[SkillRow], lang: Language) -> str:
    """Wanting learners against open slots for the skills with the worst gaps."""
    shown = top_gaps(rows)
    figure, axes = _figure(max(3.0, 1.2 + 0.36 * len(shown)))
    axes.set_title(lang.gettext("Learners wanting a skill against open mentor slots"))
    if not shown:
        _empty(axes, lang)
        return _svg(figure)
    positions = list(range(len(shown)))
    height = 0.4
    axes.barh(
        [p - height / 2 for p in positions],
        [row.wanted for row in shown],
        height,
        color=VERMILION,
        label=lang.gettext("Learners wanting it"),
    )
    axes.barh(
        [p + height / 2 for p in positions],
        [row.open_slots for row in shown],
        height,
        color=BLUE,
        label=lang.gettext("Open slots"),
    )
    axes.set_yticks(positions, [_short(row.name) for row in shown])
    axes.invert_yaxis()
    axes.set_xlabel(lang.gettext("People"))
    _numbers(axes, lang)
    axes.legend(loc="lower right")
    return _svg(figure)


def supply_headline(rows: Sequence[SkillRow], lang: Language) -> str:
    shown = top_gaps(rows)
    if not shown:
        return lang.gettext("No skill is wanted or offered yet.")
    worst = shown[0]
    return lang.ngettext(
        "%(skill)s: %(wanted)s learner wants it, %(slots)s open slots",
        "%(skill)s: %(wanted)s learners want it, %(slots)s open slots",
        worst.wanted,
        skill=worst.name,
        wanted=lang.number(worst.wanted),
        slots=lang.number(worst.open_slots),
    )


def funnel_svg(funnel: Funnel, lang: Language) -> str:
    """Exchanges at each stage from request to feedback, with the share kept."""
    figure, axes = _figure(3.4)
    axes.set_title(lang.gettext("From request to completion"))
    if not funnel.stages or funnel.stages[0].count == 0:
        _empty(axes, lang)
        return _svg(figure)
    names = [lang.gettext(STAGE_NAMES.get(stage.stage, stage.stage)) for stage in funnel.stages]
    counts = [stage.count for stage in funnel.stages]
    positions = list(range(len(counts)))
    axes.barh(positions, counts, 0.6, color=GREEN)
    axes.set_yticks(positions, names)
    axes.invert_yaxis()
    for position, stage in zip(positions, funnel.stages, strict=True):
        label = lang.number(stage.count)
        if stage.share_of_previous is not None:
            label += f" ({lang.percent(stage.share_of_previous)})"
        axes.annotate(
            label,
            (stage.count, position),
            xytext=(4, 0),
            textcoords="offset points",
            va="center",
        )
    axes.set_xlabel(lang.gettext("Exchanges"))
    axes.set_xlim(0, max(counts) * 1.25)
    _numbers(axes, lang)
    return _svg(figure)


def funnel_headline(funnel: Funnel, lang: Language) -> str:
    counts = {stage.stage: stage.count for stage in funnel.stages}
    return lang.gettext(
        "%(requested)s requested, %(accepted)s accepted, %(completed)s completed",
        requested=lang.number(counts.get("requested", 0)),
        accepted=lang.number(counts.get("accepted", 0)),
        completed=lang.number(counts.get("completed", 0)),
    )


def timeline_svg(timeline: Timeline, lang: Language) -> str:
    """Requests, acceptances, completions, expiries and new volunteers per month."""
    figure, axes = _figure(4.0)
    axes.set_title(lang.gettext("Month by month"))
    if not timeline.items:
        _empty(axes, lang)
        return _svg(figure)
    positions = list(range(len(timeline.items)))
    series = (
        ("requested", N_("Requested"), BLUE, "o"),
        ("accepted", N_("Accepted"), GREEN, "s"),
        ("completed", N_("Completed"), PURPLE, "^"),
        ("expired", N_("Expired"), VERMILION, "x"),
        ("new_volunteers", N_("New volunteers"), ORANGE, "d"),
    )
    periods = [row.period for row in timeline.items]
    if len(positions) < 3:
        # A line needs a few months to say anything: grouped bars until then.
        width = 0.8 / len(series)
        for index, (field, label, colour, _marker) in enumerate(series):
            values = [getattr(row, field) for row in timeline.items]
            offsets = [p - 0.4 + width * (index + 0.5) for p in positions]
            axes.bar(offsets, values, width, color=colour, label=lang.gettext(label))
        axes.set_xticks(positions, periods)
    else:
        for field, label, colour, marker in series:
            values = [getattr(row, field) for row in timeline.items]
            axes.plot(positions, values, color=colour, marker=marker, label=lang.gettext(label))
        step = max(1, len(positions) // 12)
        axes.set_xticks(positions[::step], periods[::step], rotation=45)
    axes.set_xlabel(lang.gettext("Month"))
    axes.set_ylabel(lang.gettext("Count"))
    axes.set_ylim(bottom=0)
    _numbers(axes, lang, "y")
    axes.legend(loc="upper left", fontsize="small")
    return _svg(figure)


def timeline_headline(timeline: Timeline, lang: Language) -> str:
    if not timeline.items:
        return lang.gettext("Nothing has happened yet.")
    last = timeline.items[-1]
    return lang.gettext(
        "%(period)s: %(requested)s requested, %(accepted)s accepted, %(completed)s completed, "
        "%(joined)s new volunteers",
        period=last.period,
        requested=lang.number(last.requested),
        accepted=lang.number(last.accepted),
        completed=lang.number(last.completed),
        joined=lang.number(last.new_volunteers),
    )


def answered_areas(areas: SkillTable) -> list[SkillRow]:
    """The areas with a median response time, the slowest first."""
    timed = [row for row in areas.items if row.median_response_hours is not None]
    return sorted(timed, key=lambda row: (-(row.median_response_hours or 0.0), row.skill))


def response_svg(areas: SkillTable, lang: Language) -> str:
    """The median hours from a request to the mentor's answer, per area."""
    shown = answered_areas(areas)
    figure, axes = _figure(max(3.0, 1.2 + 0.32 * len(shown)))
    axes.set_title(lang.gettext("Median hours until the mentor answers, per area"))
    if not shown:
        _empty(axes, lang)
        return _svg(figure)
    positions = list(range(len(shown)))
    hours = [row.median_response_hours or 0.0 for row in shown]
    axes.barh(positions, hours, 0.6, color=ORANGE)
    axes.set_yticks(positions, [_short(row.name) for row in shown])
    axes.invert_yaxis()
    axes.set_xlabel(lang.gettext("Hours"))
    # Answers within the hour still show an axis from 0 to 1 hour.
    axes.set_xlim(0, max(1.0, max(hours) * 1.1))
    axes.xaxis.set_major_formatter(FuncFormatter(lambda value, _position: lang.number(value)))
    return _svg(figure)


def response_headline(areas: SkillTable, median: float | None, lang: Language) -> str:
    shown = answered_areas(areas)
    if median is None or not shown:
        return lang.gettext("No request has been answered yet.")
    return lang.gettext(
        "Mentors answer in %(hours)s hours (median); slowest area: %(area)s, %(slowest)s hours",
        hours=lang.number(median),
        area=shown[0].name,
        slowest=lang.number(shown[0].median_response_hours or 0.0),
    )
