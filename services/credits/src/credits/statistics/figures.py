"""Every figure of a unit's report, read at once and from one snapshot.

A report is a handful of independent aggregate statements (hours by category and mode; the
per-learner totals, then the accounts service's lookup of their groups and of the unit's
residents, then the residents' learning at other units' activities; credits, volunteers,
activities and sessions). On PostgreSQL they run in three parts at once, each on its own
connection, all reading one snapshot (:func:`kernel.db.in_one_snapshot`): on two cores the
district's hours and the group lookup behind hours by group overlap instead of following one
another, and every figure is of the same moment, as if one statement had read them all. On
SQLite the parts run one after the other on the request's session.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from typing import NamedTuple

from sqlalchemy.ext.asyncio import AsyncSession

from credits.statistics import service
from credits.statistics.groups import Lookup
from credits.statistics.keeping import Fresh
from credits.statistics.period import Period
from credits.statistics.schemas import (
    ActivityFigures,
    CreditsFigures,
    GroupHours,
    HoursLine,
    MissingFigure,
    ReportFigures,
    SessionLine,
    VolunteerYear,
)
from credits.statistics.service import LearnerTotal
from kernel.db import in_one_snapshot

# what the accounts service says of the per-learner totals' learners and the unit's residents
# (the route asks it)
GroupsOf = Callable[[Sequence[LearnerTotal]], Awaitable[Lookup]]


class Figures(NamedTuple):
    """The figures of one report that the credits service reads itself, and the
    per-learner totals behind its learners and hours by group."""

    totals: list[LearnerTotal]
    report: ReportFigures


class _Rest(NamedTuple):
    credits: CreditsFigures
    volunteers: list[VolunteerYear]
    activities: ActivityFigures
    sessions: list[SessionLine]
    truncated: bool


async def unit_figures(
    session: AsyncSession,
    unit_path: str,
    period: Period,
    groups_of: GroupsOf,
    timings: dict[str, float] | None = None,
) -> Figures:
    """Every figure of the unit at ``unit_path`` and under it for ``period``; ``timings``, when
    given, gets the seconds each part took (for the benchmark and the log)."""
    spent = timings if timings is not None else {}

    async def paths_of(reader: AsyncSession) -> list[str]:
        # each part resolves the unit's host paths in its own snapshot (a small indexed read)
        return await service.host_paths(reader, unit_path)

    async def hours(reader: AsyncSession) -> list[HoursLine]:
        began = time.perf_counter()
        lines = await service.hours_by_category_mode(reader, await paths_of(reader), period)
        spent["hours by category and mode"] = time.perf_counter() - began
        return lines

    async def learners(
        reader: AsyncSession,
    ) -> tuple[list[LearnerTotal], list[GroupHours] | None, int | None, list[MissingFigure]]:
        began = time.perf_counter()
        totals = await service.learner_totals(reader, await paths_of(reader), period)
        spent["per-learner totals"] = time.perf_counter() - began
        began = time.perf_counter()
        # the reader keeps its snapshot while accounts answers: the residents it names are
        # then looked for in the same snapshot as every other figure
        lookup = await groups_of(totals)
        spent["group lookup (accounts)"] = time.perf_counter() - began
        if lookup.residents is None:
            return totals, lookup.by_group, None, lookup.missing
        began = time.perf_counter()
        elsewhere = await service.learning_elsewhere(reader, lookup.residents.others, period)
        spent["residents' learning elsewhere"] = time.perf_counter() - began
        return totals, lookup.by_group, lookup.residents.listed + elsewhere, lookup.missing

    async def rest(reader: AsyncSession) -> _Rest:
        began = time.perf_counter()
        paths = await paths_of(reader)
        credits = await service.credit_figures(reader, unit_path, paths, period)
        volunteers = await service.volunteer_years(reader, unit_path, period)
        activities, sessions, truncated = await service.activity_figures(reader, paths, period)
        spent["credits, volunteers, activities"] = time.perf_counter() - began
        return _Rest(credits, volunteers, activities, sessions, truncated)

    lines, (totals, by_group, participants, missing), other = await in_one_snapshot(
        session, hours, learners, rest
    )
    return Figures(
        totals=totals,
        report=ReportFigures(
            participants=participants,
            learners=len(totals),
            hours_by_category_mode=lines,
            hours_by_group=by_group,
            missing=missing,
            credits=other.credits,
            volunteers=other.volunteers,
            activities=other.activities,
            sessions=other.sessions,
            sessions_truncated=other.truncated,
        ),
    )


def keepable(found: Figures) -> Fresh:
    """The report's figures as a kept report holds them (the learners counted, not
    listed). A report lacking a figure (accounts did not answer) may not be kept: the next
    one asks again."""
    return Fresh(found.report.model_dump(mode="json"), keepable=not found.report.missing)
