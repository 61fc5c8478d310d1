"""Registration figures of a unit (and everything under it) for the statistics reports, and
the groups of the learners a report counts.

Counts only, summed in SQL: how many residents of the unit hold a learning account (each is a
real-name account: it is opened with a checked citizen ID number), how many are active, how
many were opened in a period, and how many are in each group the plans single out. The unit's
resident population is the network's data (``unit.population``, with where it came from).

``POST /api/v1/learner-groups/lookup`` answers the credits service's report: which of the
learner ids it names are in which group, as places in its list, how many of them live in the
unit, and the ids of the unit's other residents (whose learning elsewhere the report looks
for: its participation rate counts residents wherever they learn). No names, no other personal
data. It is service-to-service: the gateway does not route it. See docs/decisions.md on what
it may tell.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any, NamedTuple
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, WithJsonSchema
from sqlalchemy import String, bindparam, case, cast, func, text
from sqlalchemy import select as sql_select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from accounts.audit import service as audit
from accounts.learners.models import GROUPS, LearningAccount
from accounts.network.models import Unit
from accounts.network.repository import UnitRepository
from accounts.network.service import UnitNotFound
from kernel import servicecalls
from kernel.access import READING_STAFF, covers, require_staff
from kernel.auditapi import commit_query
from kernel.auth import CurrentPrincipal
from kernel.db import SessionDep
from kernel.problems import PROBLEMS, DomainError, Forbidden
from kernel.roles import AUDITOR, DISTRICT_ADMIN
from kernel.tokens import Principal

CHINA = ZoneInfo("Asia/Shanghai")
# learner ids one group lookup may name (the credits service asks in chunks of this size): a
# district's participants in one request, so the account table is joined once, not per chunk
GROUP_LOOKUP_LIMIT = 400_000
router = APIRouter(prefix="/api/v1", tags=["statistics"])


class Registrations(BaseModel):
    """Learning accounts of the unit's residents (the unit and everything under it)."""

    unit: str
    name: str
    path: str
    population: int | None
    population_is_demo: bool
    registered: int
    active: int
    registered_in_period: int
    by_group: dict[str, int]


async def _statistics_unit(session: AsyncSession, principal: Principal, key: str) -> Unit:
    """The unit, when the caller may read its statistics: reading staff covering it, auditors
    and district administrators (403 otherwise, 404 for an unknown key)."""
    require_staff(principal, READING_STAFF)
    unit = await UnitRepository(session).get_by_key(key)
    if unit is None:
        raise UnitNotFound(f"No unit has the key {key!r}.", detail_zh="找不到该办学单位。")
    if not principal.has_role(AUDITOR, DISTRICT_ADMIN) and not covers(principal, unit.path):
        raise Forbidden(
            f"Statistics of {key} are not yours to see: staff see their own unit and those "
            "under it.",
            detail_zh="只能查看本单位及下属单位的统计。",
        )
    return unit


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), CHINA).astimezone(UTC)


@router.get("/units/{key}/registrations", response_model=Registrations)
async def registrations(
    key: str,
    principal: CurrentPrincipal,
    session: SessionDep,
    from_: Annotated[date, Query(alias="from")],
    to: date,
) -> Registrations:
    """Accounts of residents of the unit opened by the end of ``to`` (Beijing day), and those
    opened from ``from`` to ``to``: staff covering the unit, auditors and district admins."""
    unit = await _statistics_unit(session, principal, key)
    ends = _midnight(to + timedelta(days=1))
    begins = _midnight(from_)
    created = col(LearningAccount.created_at)
    # groups are a JSON list; its text holds each group as a quoted word on both databases
    groups_text = cast(col(LearningAccount.groups), String)
    row = (
        await session.execute(
            sql_select(
                func.count(),
                func.count().filter(col(LearningAccount.status) == "active"),
                func.count().filter(created >= begins),
                *(func.sum(case((groups_text.like(f'%"{g}"%'), 1), else_=0)) for g in GROUPS),
            ).where(
                col(LearningAccount.residence_path).startswith(unit.path, autoescape=True),
                created < ends,
            )
        )
    ).one()
    registered, active, in_period, *per_group = row
    demo = unit.is_demo
    return Registrations(
        unit=unit.key,
        name=unit.name,
        path=unit.path,
        population=unit.population,
        population_is_demo=demo,
        registered=int(registered),
        active=int(active),
        registered_in_period=int(in_period),
        by_group={g: int(n or 0) for g, n in zip(GROUPS, per_group, strict=True)},
    )


# a learner id as the credits service writes it (str(uuid): lowercase, hyphenated), kept as
# text: a district's 300,000 are checked against the pattern in pydantic's core and go to the
# database and the audit digest as they came, never made into uuid.UUID objects and back
# (that cost 0.27 s to parse and 0.2 s to print again for each district report)
_LEARNER_ID = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
LearnerId = Annotated[
    str,
    StringConstraints(pattern=_LEARNER_ID),
    WithJsonSchema({"type": "string", "format": "uuid", "pattern": _LEARNER_ID}),
]


class GroupLookup(BaseModel):
    """Learner ids a statistics report of ``unit`` counts, whose groups are asked for."""

    model_config = ConfigDict(extra="forbid")
    unit: str = Field(max_length=40, description="the key of the unit whose report asks")
    learners: list[LearnerId] = Field(
        max_length=GROUP_LOOKUP_LIMIT,
        description="the learners the report counts at the unit's activities (may be none)",
    )


class GroupMembership(BaseModel):
    """Per group, the places (0-based) in ``learners`` of the learners in it; a learner may be
    in several groups or none. ``found``: how many places name a learning account (an id
    naming none is in no group). ``listed_residents``: how many of the listed learners live in
    the unit or under it now; ``other_residents``: the ids of those who live there and were
    not listed (the report looks for their learning at other units' activities). No names and
    no personal data are given back."""

    unit: str
    asked: int
    found: int
    groups: dict[str, list[int]]
    listed_residents: int
    other_residents: list[str]


async def groups_at(session: AsyncSession, learners: Sequence[str]) -> list[tuple[int, str]]:
    """(place in ``learners``, groups as JSON text) of every learning account among them, on
    SQLite, in one statement whatever their number: the ids go in as one JSON text read by
    ``json_each``, never as one bound parameter each (SQLite caps those at 32,766). Only places
    and text come back: no id is turned back into Python. (PostgreSQL gathers the places per
    group itself: ``_GROUP_PLACES``.)"""
    table: Any = LearningAccount.__table__  # type: ignore[attr-defined]
    # SQLite keeps a UUID as its 32 hex digits; json_each gives each element's index as key
    listed = json.dumps([learner.replace("-", "") for learner in learners])
    asked: Any = func.json_each(listed).table_valued("key", "value")
    rows = await session.execute(
        sql_select(asked.c.key, cast(table.c.groups, String)).select_from(
            asked.join(table, asked.c.value == table.c.id)
        )
    )
    return [(int(n), str(text)) for n, text in rows.all()]


class NotTheCreditsService(DomainError):
    """An internal route called without the credits service's signature."""

    type = PROBLEMS + "service-signature-required"
    status = 403
    title = "Only the credits service may call this"


async def _signed_by_a_service(request: Request) -> None:
    """Refuse a request that does not carry a valid service signature (kernel.servicecalls):
    a staff token alone, even one that may read the unit, is not enough."""
    if not servicecalls.verify(
        request.app.state.service_key,
        request.headers.get(servicecalls.HEADER),
        request.method,
        request.url.path,
        await request.body(),
    ):
        raise NotTheCreditsService(
            "This route answers the credits service's statistics only; its request must be"
            " signed with the service call key."
        )


def learners_digest(learners: list[str]) -> str | None:
    """The audit trail's digest of the ids a group lookup asked for (order does not matter)."""
    return audit.digest({"learners": sorted(learners)})


@router.post(
    "/learner-groups/lookup",
    response_model=GroupMembership,
    dependencies=[Depends(_signed_by_a_service)],
)
async def learner_groups(
    body: GroupLookup, principal: CurrentPrincipal, session: SessionDep
) -> GroupMembership:
    """For the statistics report of ``unit`` (asked by the credits service, signed with the
    service call key, with the token of staff who may read the unit): which of the learners
    it counts are in which group. Only the places in the list come back, per group. Not
    routed by the gateway."""
    unit = await _statistics_unit(session, principal, body.unit)
    found, groups, listed, others = await group_membership(session, unit.path, body.learners)
    # group membership is personal data (disability among it), and so is who lives where:
    # every lookup is on the trail, with a digest of the ids asked for and of the residents'
    # ids given, committed before the answer leaves
    audit.record(
        session,
        actor=principal,
        action="learner_groups.lookup",
        target_type="unit",
        target_id=unit.key,
        after={
            "asked": len(body.learners),
            "found": found,
            "learners_digest": learners_digest(body.learners),
            "listed_residents": listed,
            "other_residents": len(others),
            "other_residents_digest": learners_digest(others),
        },
    )
    await commit_query(session)
    return GroupMembership(
        unit=unit.key,
        asked=len(body.learners),
        found=found,
        groups=groups,
        listed_residents=listed,
        other_residents=others,
    )


# PostgreSQL, one statement: the listed ids that name an account (their count: the row with no
# group; how many live under the unit: "~listed"), each group's places as one array, and the
# ids of the unit's residents not listed as one array ("~others", a hashed anti-join). Every id
# is cast and joined once (two statements cost a district 2.3-2.6 s against 1.7-2.1 s for this)
_MEMBERSHIP = text(
    "WITH asked AS MATERIALIZED (SELECT id, place FROM unnest(CAST(:learners AS uuid[]))"
    " WITH ORDINALITY AS asked(id, place)),"
    " hit AS MATERIALIZED (SELECT asked.place - 1 AS place, account.id, account.groups,"
    " account.residence_path LIKE :under ESCAPE '\\' AS here"
    " FROM asked JOIN learning_account AS account ON account.id = asked.id)"
    " SELECT NULL AS grp, count(*) AS n, NULL::bigint[] AS places, NULL::text[] AS ids FROM hit"
    " UNION ALL SELECT '~listed', count(*) FILTER (WHERE here), NULL, NULL FROM hit"
    " UNION ALL SELECT grp, count(*), array_agg(place ORDER BY place), NULL"
    " FROM hit, json_array_elements_text(hit.groups) AS grp GROUP BY grp"
    " UNION ALL SELECT '~others', NULL, NULL, array_agg(account.id::text)"
    " FROM learning_account AS account WHERE account.residence_path LIKE :under ESCAPE '\\'"
    " AND NOT EXISTS (SELECT 1 FROM hit WHERE hit.id = account.id)"
).bindparams(bindparam("learners", type_=ARRAY(String)))


def _like_prefix(path: str) -> str:
    """A LIKE pattern matching ``path`` and everything under it (its wildcards escaped)."""
    escaped = path.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


class Membership(NamedTuple):
    """What the lookup tells of its learners and of the unit's residents."""

    found: int
    groups: dict[str, list[int]]
    listed_residents: int
    other_residents: list[str]


async def group_membership(
    session: AsyncSession, unit_path: str, learners: Sequence[str]
) -> Membership:
    """How many of ``learners`` (ids as lowercase hyphenated text) name an account; per group
    (every group, in order) the places in ``learners`` of those in it (an id named twice is
    answered at both places); how many of the places name a resident of ``unit_path`` or a
    unit under it (where they live now); and the ids of the residents there not among
    ``learners`` (in no particular order).

    On PostgreSQL one statement (``_MEMBERSHIP``): a district's 300,000 learners come back as a
    handful of arrays, not a row each with its groups to parse here."""
    if session.get_bind().dialect.name == "postgresql":
        rows = await session.execute(
            _MEMBERSHIP, {"learners": list(learners), "under": _like_prefix(unit_path)}
        )
        named, listed, others = 0, 0, list[str]()
        places = {g: list[int]() for g in GROUPS}
        for group, n, at, ids in rows.all():
            if group is None:
                named = int(n)
            elif group == "~listed":
                listed = int(n)
            elif group == "~others":
                others = list(ids or [])
            elif group in places:
                places[group] = list(at)
        return Membership(named, places, listed, others)
    found = await groups_at(session, learners)
    groups: dict[str, list[int]] = {g: [] for g in GROUPS}
    for place, listed_groups in found:
        if listed_groups != "[]":
            for group in json.loads(listed_groups):
                if group in groups:
                    groups[group].append(place)
    rows = await session.execute(
        sql_select(col(LearningAccount.id)).where(
            col(LearningAccount.residence_path).startswith(unit_path, autoescape=True)
        )
    )
    residents = {str(resident) for resident in rows.scalars().all()}
    here = sum(1 for learner in learners if learner in residents)
    return Membership(
        len(found),
        {g: sorted(n) for g, n in groups.items()},
        here,
        list(residents.difference(learners)),
    )
