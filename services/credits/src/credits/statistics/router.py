"""Routes of the statistics reports: JSON, or a download (.xlsx / .csv) with Chinese headers.

Staff see their own unit and everything under it (403 for another unit); auditors and
district administrators see every unit. The unit, its population, its residents'
registrations and the groups of the learners counted come from the accounts service, asked
with the caller's own token.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import date
from typing import Annotated, Any, Literal

import httpx
from fastapi import APIRouter, Path, Query, Request, Response

from credits.audit import service as audit
from credits.rules.engine import beijing_today
from credits.statistics import figures, groups, service, stars
from credits.statistics.keeping import Fresh, KeptReports
from credits.statistics.period import EARLIEST, LATEST, Period
from credits.statistics.schemas import (
    Rate,
    RegistrationFigures,
    ReportFigures,
    StarCandidate,
    StarCandidates,
    UnitRef,
    UnitStatistics,
)
from credits.statistics.sheets import REPORT_SHEETS, report_sheets, stars_sheet
from kernel.access import READING_STAFF, covers, require_staff
from kernel.auth import CurrentPrincipal
from kernel.db import SessionDep
from kernel.exports import export_response
from kernel.problems import PROBLEMS, DomainError, Forbidden, NotFound, ServiceUnavailable
from kernel.roles import AUDITOR, DISTRICT_ADMIN
from kernel.tokens import Principal

router = APIRouter(prefix="/api/v1", tags=["statistics"])
Format = Literal["json", "xlsx", "csv"]
UnitKey = Annotated[str, Path(max_length=40, pattern=r"^[0-9A-Za-z_-]+$")]
# kept readings of a unit's report; the number is the shape of ReportFigures, so a reading
# kept before its shape changed is never given (it would not validate)
REPORT_KIND = "report:2"
POPULATION_SOURCE = "办学网络数据 muye_network.json（unit.population）"
DOWNLOAD = {
    "description": "The report (JSON), or the file asked for with `format`",
    "content": {
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {},
        "text/csv": {},
    },
}


class InvalidPeriod(DomainError):
    """``from`` is after ``to``."""

    type = PROBLEMS + "invalid-period"
    status = 422
    title = "Invalid period"


class UnitNotFound(NotFound):
    """No unit has this key."""

    type = PROBLEMS + "unit-not-found"
    title = "Unit not found"


class StatisticsNotVisible(Forbidden):
    """Staff asked for a unit outside their own."""

    type = PROBLEMS + "statistics-not-visible"
    title = "Statistics of another unit"


def _unavailable() -> ServiceUnavailable:
    return ServiceUnavailable(
        "The school network cannot be read right now; try again.",
        detail_zh="暂时无法读取办学网络，请稍后再试。",
    )


async def _get(request: Request, path: str, **params: str) -> httpx.Response:
    accounts: httpx.AsyncClient = request.app.state.accounts
    try:
        return await accounts.get(
            path,
            params=params,
            headers={"authorization": request.headers["authorization"]},
            timeout=10.0,
        )
    except httpx.HTTPError:
        raise _unavailable() from None


async def visible_unit(request: Request, principal: Principal, key: str) -> dict[str, Any]:
    """The unit as the accounts service shows it, when the caller may see its statistics."""
    require_staff(principal, READING_STAFF)
    response = await _get(request, f"/api/v1/units/{key}")
    if response.status_code == 404:
        raise UnitNotFound(f"No unit has the key {key!r}.", detail_zh="找不到该办学单位。")
    if response.status_code != 200:
        raise _unavailable()
    unit: dict[str, Any] = response.json()
    if not principal.has_role(AUDITOR, DISTRICT_ADMIN) and not covers(principal, unit["path"]):
        raise StatisticsNotVisible(
            f"Statistics of {key} are not yours to see: staff see their own unit and those "
            "under it.",
            detail_zh="只能查看本单位及下属单位的统计。",
        )
    return unit


def _period(first: date | None, last: date | None) -> Period:
    today = beijing_today()
    last = last or today
    first = first or date(last.year, 1, 1)
    if first > last:
        raise InvalidPeriod(
            f"The period starts ({first}) after it ends ({last}).",
            detail_zh="统计期间的开始日期晚于结束日期。",
        )
    if first < EARLIEST or last > LATEST:
        raise InvalidPeriod(
            f"A period lies between {EARLIEST} and {LATEST}; not {first} to {last}.",
            detail_zh=f"统计期间须在 {EARLIEST} 至 {LATEST} 之间。",
        )
    return Period(first, last)


def _rate(numerator: int | None, denominator: int | None, source: str) -> Rate:
    return Rate(
        numerator=numerator,
        denominator=denominator,
        rate=round(numerator / denominator, 6) if denominator and numerator is not None else None,
        denominator_source=source,
    )


async def _read_figures(
    request: Request, session: SessionDep, unit: dict[str, Any], period: Period
) -> Fresh:
    """The credits service's own figures of the report, read now."""

    async def groups_of(totals: Sequence[service.LearnerTotal]) -> groups.Lookup:
        # groups and residences are the accounts service's: asked for the learners counted
        return await groups.look_up(
            request.app.state.accounts,
            request.headers["authorization"],
            str(unit["key"]),
            totals,
            service_key=request.app.state.service_key,
        )

    found = await figures.unit_figures(session, str(unit["path"]), period, groups_of)
    return figures.keepable(found)


async def unit_statistics(
    request: Request,
    session: SessionDep,
    unit: dict[str, Any],
    period: Period,
    *,
    fresh: bool = False,
) -> UnitStatistics:
    """The whole report of one unit and period: the credits service's figures (kept ones
    when a recent reading of this report took long, unless ``fresh``), the unit and its
    registrations from the accounts service."""
    path = str(unit["path"])
    # the registrations (accounts) while the credits service reads its own figures
    asked = asyncio.create_task(
        _get(
            request,
            f"/api/v1/units/{unit['key']}/registrations",
            **{"from": period.first.isoformat(), "to": period.last.isoformat()},
        )
    )
    kept_reports: KeptReports = request.app.state.kept_reports
    try:
        reading = await kept_reports.read(
            session,
            REPORT_KIND,
            path,
            f"{period.first.isoformat()}..{period.last.isoformat()}",
            lambda: _read_figures(request, session, unit, period),
            fresh=fresh,
        )
    except BaseException:
        asked.cancel()
        raise
    response = await asked
    if response.status_code != 200:
        raise _unavailable()
    registered: dict[str, Any] = response.json()
    found = ReportFigures.model_validate(reading.figures)
    population = unit.get("population")
    source = POPULATION_SOURCE + ("，演示数据" if unit.get("is_demo") else "")
    registrations = RegistrationFigures(
        registered=int(registered["registered"]),
        active=int(registered["active"]),
        registered_in_period=int(registered["registered_in_period"]),
        by_group={str(k): int(v) for k, v in registered["by_group"].items()},
    )
    return UnitStatistics(
        # the credits service's figures as read (or kept), and around them the unit's
        **dict(found),
        unit=UnitRef(key=str(unit["key"]), name=unit.get("name"), path=path),
        period_from=period.first,
        period_to=period.last,
        population=population,
        population_source=source,
        participation=_rate(found.participants, population, source),
        registrations=registrations,
        real_name_registration=_rate(registrations.registered, population, source),
        total_minutes=sum(line.minutes for line in found.hours_by_category_mode),
        as_of=reading.as_of,
        kept=reading.kept,
    )


@router.get("/statistics/{unit}", response_model=UnitStatistics, responses={200: DOWNLOAD})
async def statistics(
    unit: UnitKey,
    request: Request,
    principal: CurrentPrincipal,
    session: SessionDep,
    first: Annotated[date | None, Query(alias="from", description="first Beijing day")] = None,
    last: Annotated[date | None, Query(alias="to", description="last Beijing day")] = None,
    format: Format = "json",
    sheet: Annotated[
        Literal["summary", "hours", "hours_by_group", "groups", "volunteers", "sessions"],
        Query(description="the table a CSV holds (a workbook holds them all)"),
    ] = "summary",
    fresh: Annotated[
        bool, Query(description="read the figures now, not a kept reading of this report")
    ] = False,
) -> Any:
    """统计: participation, registration, hours by category and mode and by learner group,
    credits issued and converted, volunteer hours against the yearly target, activities,
    sessions and attendance of a unit and everything under it, for a period of Beijing days
    (default: this year). ``participants`` are the unit's residents who learned anywhere
    (the participation rate's numerator); ``learners`` those who learned at its activities,
    wherever they live. A figure the accounts service could not give right now (participants,
    hours by group) is null and named in ``missing``."""
    action = "statistics.report" if format == "json" else "statistics.export"
    async with audit.refusals_recorded(
        session, actor=principal, action=action, target_type="unit", target_id=unit
    ):
        found = await visible_unit(request, principal, unit)
    period = _period(first, last)
    report = await unit_statistics(request, session, found, period, fresh=fresh)
    await audit.record_query(
        session,
        actor=principal,
        action=action,
        target_type="unit",
        target_id=str(found["key"]),
        after={
            "from": period.first.isoformat(),
            "to": period.last.isoformat(),
            "format": format,
            "as_of": report.as_of.isoformat(),
            "kept": report.kept,
        },
    )
    if format == "json":
        return report
    tables = report_sheets(report)
    name = f"统计_{report.unit.key}_{period.first.isoformat()}_{period.last.isoformat()}"
    chosen = [tables[s] for s in REPORT_SHEETS] if format == "xlsx" else [tables[sheet]]
    return export_response(format, name, chosen)


@router.get(
    "/statistics/{unit}/learning-stars",
    response_model=StarCandidates,
    responses={200: DOWNLOAD},
)
async def learning_stars(
    unit: UnitKey,
    request: Request,
    principal: CurrentPrincipal,
    session: SessionDep,
    year: Annotated[int | None, Query(ge=2000, le=2100)] = None,
    format: Format = "json",
    fresh: Annotated[
        bool, Query(description="rank the candidates now, not a kept reading of them")
    ] = False,
) -> Response | StarCandidates:
    """百姓学习之星: the candidates of every town at or under the unit for a Beijing year
    (default: this year), by the rule shipped as data; the rule and its version are given."""
    action = "statistics.learning_stars" if format == "json" else "statistics.export"
    async with audit.refusals_recorded(
        session, actor=principal, action=action, target_type="unit", target_id=unit
    ):
        found = await visible_unit(request, principal, unit)
    rule = stars.load_rule()
    chosen_year = year or beijing_today().year

    async def rank() -> Fresh:
        ranked = await stars.candidates(
            session, unit_path=str(found["path"]), year=chosen_year, rule=rule
        )
        return Fresh({"candidates": [c.model_dump(mode="json") for c in ranked]}, keepable=True)

    kept_reports: KeptReports = request.app.state.kept_reports
    reading = await kept_reports.read(
        session, "stars", str(found["path"]), f"{chosen_year}|{rule.version}", rank, fresh=fresh
    )
    listed = [StarCandidate.model_validate(c) for c in reading.figures["candidates"]]
    towns = sorted({c.town for c in listed})
    answers = await asyncio.gather(*(_get(request, f"/api/v1/units/{t}") for t in towns))
    names = {
        t: a.json().get("name") for t, a in zip(towns, answers, strict=True) if a.status_code == 200
    }
    for candidate in listed:
        candidate.town_name = names.get(candidate.town)
    result = StarCandidates(
        unit=UnitRef(key=str(found["key"]), name=found.get("name"), path=str(found["path"])),
        year=chosen_year,
        rule_version=rule.version,
        rule=rule.document,
        candidates=listed,
        as_of=reading.as_of,
        kept=reading.kept,
    )
    await audit.record_query(
        session,
        actor=principal,
        action=action,
        target_type="unit",
        target_id=str(found["key"]),
        after={
            "year": chosen_year,
            "rule": rule.version,
            "format": format,
            "as_of": reading.as_of.isoformat(),
            "kept": reading.kept,
        },
    )
    if format == "json":
        return result
    return export_response(
        format, f"百姓学习之星候选_{found['key']}_{chosen_year}", [stars_sheet(result)]
    )
