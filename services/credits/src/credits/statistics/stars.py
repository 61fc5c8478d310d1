"""Learning star (百姓学习之星) candidates: the top learners per town per year, by a rule kept as
data (``data/learning_star_rule.json``), ranked in SQL with a window function."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import case, func, literal, null
from sqlalchemy import select as sql_select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from credits.ledger.models import CreditSource
from credits.records.models import LearningRecord
from credits.statistics import service
from credits.statistics.period import Period
from credits.statistics.schemas import StarCandidate
from kernel.packagedata import read_json


@dataclass(frozen=True)
class StarRule:
    """The selection rule: who may be a candidate, how they are ranked, how many per town."""

    version: str
    min_minutes: int
    top_per_town: int
    town_level_depth: int
    document: dict[str, Any]


def load_rule() -> StarRule:
    """The rule shipped with the service."""
    document = read_json("credits.statistics", "data/learning_star_rule.json")
    if document["rank_by"] != ["credits_earned", "minutes"] or document["ties"] != (
        "include_all_tied"
    ):
        raise ValueError("learning star rule: only credits then minutes, ties included, known")
    return StarRule(
        version=str(document["version"]),
        min_minutes=int(document["min_minutes"]),
        top_per_town=int(document["top_per_town"]),
        town_level_depth=int(document["town_level_depth"]),
        document=document,
    )


def town_of(path: str, depth: int) -> str | None:
    """The path of the unit at ``depth`` on ``path`` (``/a/b/c/``, depth 2: ``/a/b/``)."""
    keys = [k for k in path.split("/") if k]
    if len(keys) < depth:
        return None
    return "/" + "/".join(keys[:depth]) + "/"


async def candidates(
    session: AsyncSession, *, unit_path: str, year: int, rule: StarRule
) -> list[StarCandidate]:
    """The candidates of every town at or under ``unit_path`` for the Beijing ``year``.

    Whichever unit is asked, a learner is placed and ranked on all their countable minutes of
    the year, wherever in the network they were hosted: a town's candidates are the district's
    candidates of that town. Below the district only the learners with learning in the unit
    are read (all of their year's records).
    """
    paths = await service.host_paths(session, unit_path)
    if not paths:
        return []
    wanted = {t for p in paths if (t := town_of(p, rule.town_level_depth)) is not None}
    root = town_of(unit_path, 1) or unit_path
    every_path = paths if root == unit_path else await service.host_paths(session, root)
    towns = {p: town_of(p, rule.town_level_depth) for p in every_path}
    period = Period(date(year, 1, 1), date(year, 12, 31))
    in_year = [
        col(LearningRecord.started_at) >= period.starts_at,
        col(LearningRecord.started_at) < period.ends_before,
        await service.countable(session),
    ]
    mapping = {p: t for p, t in towns.items() if t is not None}
    learner: Any = col(LearningRecord.learner_id)
    host: Any = col(LearningRecord.host_unit_path)
    minutes: Any = col(LearningRecord.minutes)
    source: Any = LearningRecord
    where: list[Any] = [host.in_(every_path), *in_year]
    if root != unit_path:
        # the learners with learning here (an index range of the unit's hosts), then all of
        # their year, wherever it was hosted
        here = sql_select(learner).where(host.in_(paths), *in_year).distinct()
        if session.get_bind().dialect.name == "postgresql":
            # each one's year by the (learner, start) index, not the district's year of records:
            # as a semi-join PostgreSQL read them all, five times the time of the town alone
            learners = here.subquery("here")
            theirs = (
                sql_select(host, minutes)
                .where(learner == learners.c.learner_id, *in_year)
                .offset(0)  # kept apart, so it stays a parameterised index scan per learner
                .lateral("theirs")
            )
            learner, host, minutes = (
                learners.c.learner_id,
                theirs.c.host_unit_path,
                theirs.c.minutes,
            )
            source, where = learners.join(theirs, literal(True)), []
        else:  # SQLite: no LATERAL, and a district on one file is small
            where = [learner.in_(here), *in_year]
    placed_in = case(mapping, value=host, else_=null()) if mapping else literal(None)
    per_town = (
        sql_select(
            learner.label("learner_id"),
            placed_in.label("town"),
            func.sum(minutes).label("minutes"),
        )
        .select_from(source)
        .where(*where)
        .group_by(learner, placed_in)
        .subquery()
    )
    # a learner's town: where most of their minutes were hosted (ties: the first town key)
    placed = sql_select(
        per_town.c.learner_id,
        per_town.c.town,
        func.sum(per_town.c.minutes).over(partition_by=per_town.c.learner_id).label("minutes"),
        func.row_number()
        .over(
            partition_by=per_town.c.learner_id,
            order_by=(per_town.c.town.is_(None), per_town.c.minutes.desc(), per_town.c.town),
        )
        .label("nth"),
    ).subquery()
    # who the rule may rank: placed in a wanted town, with the hours
    ranked_here = sql_select(placed.c.learner_id, placed.c.town, placed.c.minutes).where(
        placed.c.nth == 1,
        placed.c.town.in_(sorted(wanted)),
        placed.c.minutes >= rule.min_minutes,
    )
    only_them: list[Any] = []
    if root == unit_path:  # the district: nearly every learner's credits are read anyway
        eligible: Any = ranked_here.subquery("eligible")
    else:
        # a town: the year's credits of its eligible learners alone (by the learner index),
        # not of the district's 300,000; a CTE used twice is read once
        eligible = ranked_here.cte("eligible")
        only_them = [col(CreditSource.learner_id).in_(sql_select(eligible.c.learner_id))]
    earned = (
        sql_select(
            col(CreditSource.learner_id).label("learner_id"),
            func.sum(col(CreditSource.amount_hundredths)).label("credits"),
        )
        .where(
            col(CreditSource.earned_on) >= period.first,
            col(CreditSource.earned_on) <= period.last,
            *only_them,
        )
        .group_by(col(CreditSource.learner_id))
        .subquery()
    )
    credits = func.coalesce(earned.c.credits, 0)
    ranked = (
        sql_select(
            eligible.c.town,
            eligible.c.learner_id,
            credits.label("credits"),
            eligible.c.minutes,
            func.rank()
            .over(
                partition_by=eligible.c.town,
                order_by=(credits.desc(), eligible.c.minutes.desc()),
            )
            .label("rank"),
        )
        .select_from(eligible)
        .outerjoin(earned, earned.c.learner_id == eligible.c.learner_id)
        .subquery()
    )
    rows = (
        await session.execute(
            sql_select(ranked)
            .where(ranked.c.rank <= rule.top_per_town)
            .order_by(ranked.c.town, ranked.c.rank, ranked.c.learner_id)
        )
    ).all()
    return [
        StarCandidate(
            town=str(t).strip("/").rsplit("/", 1)[-1],
            town_name=None,
            rank=int(r),
            learner_id=learner,
            credits_hundredths=int(c),
            minutes=int(m),
            hours=service.hours(int(m)),
        )
        for t, learner, c, m, r in rows
    ]
