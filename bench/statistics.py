"""Statistics reports on a district-sized data set on PostgreSQL.

Makes fresh credits and accounts databases (migrated, seeded with the Muye network), then
generates in SQL (generate_series, no rows through Python): the residents' learning accounts
spread over the 94 learning points in proportion to their population, activities hosted by
every learning point, town and the college, weekly sessions with check-ins, learning records
of the residents over four years, one provenance line per countable record as the ledger
writes it, and volunteer service. Each resident's records are mostly at their own learning
point and one in five online at the college; their lengths and statuses vary record by
record (verified, check-ins and a few pending staff entries and voided ones). A tenth of the
records go to one resident in twenty: keen learners, with some 40 countable hours a year
against the others' 13, so that the learning star rule (30 hours) finds candidates in every
town. Triggers are off while loading (session_replication_role) and the indexes are built
after, as a restore would.

Then times every report (each figure of ``GET /api/v1/statistics/{unit}`` with the accounts
registration count, the lookup behind hours by group and the unit's residents, the probe of
the residents' learning elsewhere, and the learning star candidates) for the district and for
a town, for one year and for the whole four years, with the same functions and SQL the routes
run, and prints the figures and the size of the data set. Nothing is asserted about time. The
databases are dropped at the end.

Usage: uv run python -m bench.statistics [--residents N] [--records N]
       (default: the issue's 300,000 residents and 15,000,000 records; ``--quick``: a tenth)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Sequence
from datetime import date
from typing import Any

import asyncpg
from sqlalchemy import delete, text

from accounts import SERVICE_ROOT as ACCOUNTS_ROOT
from accounts.learners.statistics import (
    GroupLookup,
    group_membership,
    learners_digest,
)
from accounts.network.service import load_network
from credits import SERVICE_ROOT as CREDITS_ROOT
from credits.cli import seed_reference_data
from credits.db import make_credits_engine
from credits.statistics import figures, groups, service, stars
from credits.statistics.keeping import Fresh, KeptReports
from credits.statistics.models import KeptReport
from credits.statistics.period import Period
from credits.statistics.schemas import ReportFigures
from kernel.db import make_engine, make_sessionmaker, run_in_transaction
from kernel.migrations import upgrade_to_head
from kernel.packagedata import read_json
from kernel.settings import normalise_database_url
from testkit.postgres import postgres_server

CATEGORIES = ("law", "health", "digital_skills", "culture_arts", "tai_chi", "elderly_education")
ACTIVITIES_PER_POINT = 20
GROUPS = ("elderly", "youth", "disabled", "unemployed", "rural_residents")


def network() -> list[dict[str, Any]]:
    """The Muye units: key, path, level, population."""
    data = read_json("accounts.network", "data/muye_network.json")
    by_key = {u["key"]: u for u in data["units"]}

    def path(key: str) -> str:
        unit = by_key[key]
        return (path(unit["parent"]) if unit["parent"] else "/") + key + "/"

    return [
        {
            "key": u["key"],
            "path": path(u["key"]),
            "level": u["level"],
            "population": u["population"],
        }
        for u in data["units"]
    ]


CREDITS_LOAD = """
SET session_replication_role = replica;
CREATE TEMP TABLE point AS
  SELECT row_number() OVER (ORDER BY path) - 1 AS n, path FROM unnest($1::text[]) AS path;
CREATE TEMP TABLE bench_activity AS
  SELECT p.n AS point, k, gen_random_uuid() AS id, p.path,
         ($3::text[])[1 + (p.n + k) % array_length($3::text[], 1)] AS category,
         CASE WHEN k % 4 = 3 THEN 'blended' ELSE 'offline' END AS mode
  FROM point p, generate_series(0, $4 - 1) AS k;
INSERT INTO bench_activity
  SELECT -1, k, gen_random_uuid(), '/410711/', ($3::text[])[1 + k % array_length($3::text[], 1)],
         'online'
  FROM generate_series(0, $4 - 1) AS k;
INSERT INTO bench_activity
  SELECT -2 - t.n, k, gen_random_uuid(), t.path,
         ($3::text[])[1 + k % array_length($3::text[], 1)], 'offline'
  FROM (SELECT row_number() OVER (ORDER BY path) - 1 AS n, path FROM unnest($2::text[]) AS path) t,
       generate_series(0, 4) AS k;
INSERT INTO activity (id, title, kind, category_code, mode, host_unit, host_unit_path, status,
                      created_by, created_at)
  SELECT id, 'bench ' || category, 'course', category, mode,
         split_part(rtrim(path, '/'), '/', -1), path, 'open', 'bench', now()
  FROM bench_activity;
CREATE TEMP TABLE bench_learner AS
  SELECT n, md5('learner ' || n)::uuid AS id,
         (SELECT count(*) FROM unnest($6::text[]) AS e WHERE e::bigint <= n)::int AS point
  FROM generate_series(0, $5 - 1) AS n;
ALTER TABLE bench_learner ADD PRIMARY KEY (n);
ANALYZE bench_activity; ANALYZE bench_learner;
"""

RECORDS = """
INSERT INTO learning_record (learner_id, activity_id, category_code, mode, host_unit_path, source,
    started_at, ended_at, minutes, evidence, status, status_changed_at, status_changed_by,
    created_at)
SELECT l.id, a.id, a.category, a.mode, a.path,
       CASE WHEN (g / $3) % 5 = 0 THEN 'partner' WHEN g % 17 = 1 THEN 'staff_entry'
            ELSE 'check_in' END,
       s.at, s.at + make_interval(mins => (30 + ((g + g / $3) % 4) * 30)::int),
       (30 + ((g + g / $3) % 4) * 30)::int, '{}'::json,
       CASE WHEN g % 23 = 2 THEN 'voided' WHEN (g + g / $3) % 3 = 0 THEN 'verified'
            ELSE 'pending' END,
       s.at, 'bench', s.at
FROM generate_series($1::bigint, $2::bigint - 1) AS g
JOIN bench_learner l
  ON l.n = CASE WHEN (g / $3) % 10 = 7 THEN (g % $3) - (g % $3) % 20 ELSE g % $3 END
JOIN bench_activity a
  ON a.point = CASE WHEN (g / $3) % 5 = 0 THEN -1 ELSE l.point END AND a.k = (g / $3) % $4
CROSS JOIN LATERAL (
  SELECT timestamptz '2022-12-01 00:00+08' + (((g * 7919) % 1460) || ' days')::interval
         + ((8 + g % 10) || ' hours')::interval AS at
) s;
"""

AFTER_RECORDS = """
INSERT INTO ledger_transaction (id, kind, created_by, created_at, memo)
  VALUES (1, 'accrual', 'bench', now(), 'bench');
INSERT INTO credit_source (transaction_id, learner_id, key, clause, category_code, earned_on,
                           amount_hundredths, record_ids, unit_path)
  SELECT 1, learner_id, 'hours:' || id, 'hours', category_code,
         (started_at AT TIME ZONE 'Asia/Shanghai')::date,
         CASE WHEN mode = 'online' THEN minutes / 9 ELSE minutes / 6 END, ARRAY[id],
         host_unit_path
  FROM learning_record
  WHERE status = 'verified' OR (status = 'pending' AND source <> 'staff_entry');
INSERT INTO activity_session (id, activity_id, starts_at, ends_at, planned_minutes)
  SELECT gen_random_uuid(), a.id, w.at, w.at + interval '2 hours', 120
  FROM bench_activity a
  CROSS JOIN LATERAL (
    SELECT timestamptz '2022-12-05 09:00+08' + (week * 7 + a.k % 7) * interval '1 day' AS at
    FROM generate_series(0, 207, 4) AS week
  ) w
  WHERE a.mode <> 'online';
INSERT INTO attendance (id, session_id, learner_id, checked_in_at)
  SELECT gen_random_uuid(), s.id, l.id, s.starts_at
  FROM activity_session s
  JOIN bench_activity a ON a.id = s.activity_id
  CROSS JOIN LATERAL generate_series(0, 11) AS i
  JOIN bench_learner l ON l.n = (abs(hashtext(s.id::text)) + i * 97) % $1;
INSERT INTO volunteer_service (id, learner_id, kind, unit, unit_path, activity_id, occasion,
                               served_on, minutes, recorded_by, recorded_at)
  SELECT gen_random_uuid(), l.id, 'lecture', split_part(rtrim(a.path, '/'), '/', -1), a.path,
         a.id, 'activity:' || v, date '2023-01-01' + (v % 1400), 60 + (v % 5) * 30, 'bench', now()
  FROM generate_series(0, $2 - 1) AS v
  JOIN bench_learner l ON l.n = (v * 31) % ($1 / 50)
  JOIN bench_activity a ON a.point = l.point AND a.k = 0;
"""

DROPPED_INDEXES = (
    "ix_learning_record_host_started",
    "ix_learning_record_learner_started",
    "ix_learning_record_learner_newest",
    "ix_learning_record_live_learner_ended",
    "ix_learning_record_activity_id",
    "ix_credit_source_earned_on",
    "ix_credit_source_learner_key",
    "ix_credit_source_transaction_id",
    "ix_credit_source_unit_path_earned_on",
)

ACCOUNTS_LOAD = """
INSERT INTO learning_account (id, account_number, name, id_number_cipher, id_number_index,
    id_number_masked, birth_date, gender, residence_unit_id, residence_path, groups, roles,
    consent_version, consent_at, consent_channel, status, failed_sign_ins, created_at,
    updated_at)
SELECT md5('learner ' || n)::uuid, 'B' || lpad(n::text, 13, '0'), '居民' || n, '\\x00'::bytea,
       md5(n::text), '410711********0000', date '1940-01-01' + (n * 37 % 25000),
       CASE WHEN n % 2 = 0 THEN 'female' ELSE 'male' END, u.id, u.path,
       CASE WHEN n % 5 = 0
            THEN json_build_array(($2::text[])[1 + n / 5 % array_length($2::text[], 1)])
            WHEN n % 7 = 0 THEN json_build_array('elderly', 'rural_residents')
            ELSE '[]'::json END,
       '[]'::json, 'v1', now(), 'import',
       CASE WHEN n % 50 = 0 THEN 'frozen' ELSE 'active' END, 0,
       timestamptz '2023-01-01 00:00+08' + ((n * 13) % 1400) * interval '1 day', now()
FROM generate_series(0, $1 - 1) AS n
JOIN (SELECT row_number() OVER (ORDER BY path) - 1 AS i, id, path FROM unit
      WHERE level_code = 'learning_point') u
  ON u.i = (SELECT count(*) FROM unnest($3::bigint[]) AS e WHERE e <= n);
"""


def point_ends(units: list[dict[str, Any]], residents: int) -> list[int]:
    """Where each learning point's residents end, in the order of the points' paths: resident
    ``n`` lives at the first point whose end is above ``n`` (as many ends as are at or below
    ``n``), so each point gets residents in proportion to its population."""
    points = sorted((u for u in units if u["level"] == "learning_point"), key=lambda u: u["path"])
    whole = sum(int(u["population"]) for u in points)
    ends, running = [], 0
    for unit in points:
        running += int(unit["population"])
        ends.append(-(-running * residents // whole))
    return ends


def _inline(statement: str, *values: object) -> str:
    """``$1``... replaced by literals (our own integers and path or category lists only)."""
    for i, value in reversed(list(enumerate(values, start=1))):
        if isinstance(value, list):
            literal = "ARRAY[" + ", ".join(f"'{v}'" for v in value) + "]::text[]"
        else:
            literal = str(int(str(value)))
        statement = statement.replace(f"${i}", literal)
    return statement


async def load_credits(dsn: str, units: list[dict[str, Any]], residents: int, records: int) -> None:
    points = [u["path"] for u in units if u["level"] == "learning_point"]
    towns = [u["path"] for u in units if u["level"] == "town_school"]
    connection = await asyncpg.connect(dsn)
    try:
        values = (
            points,
            towns,
            list(CATEGORIES),
            ACTIVITIES_PER_POINT,
            residents,
            [str(end) for end in point_ends(units, residents)],
        )
        for statement in [s for s in CREDITS_LOAD.split(";\n") if s.strip()]:
            await connection.execute(_inline(statement, *values))
        for name in DROPPED_INDEXES:
            await connection.execute(f"DROP INDEX IF EXISTS {name}")
        began, chunk = time.perf_counter(), 1_000_000
        for first in range(0, records, chunk):
            await connection.execute(
                RECORDS,
                first,
                min(first + chunk, records),
                residents,
                ACTIVITIES_PER_POINT,
            )
            done = min(first + chunk, records)
            print(f"  records: {done:,} ({time.perf_counter() - began:.0f} s)", flush=True)
        for statement in [s for s in AFTER_RECORDS.split(";\n") if s.strip()]:
            await connection.execute(_inline(statement, residents, residents // 10))
        print(f"  provenance, sessions, check-ins, volunteers: {time.perf_counter() - began:.0f} s")
    finally:
        await connection.close()


async def build_indexes(dsn: str) -> None:
    """Recreate the dropped indexes as the migrations define them, then ANALYZE and VACUUM."""
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute("SET maintenance_work_mem = '512MB'")
        began = time.perf_counter()
        for statement in (
            "CREATE INDEX ix_learning_record_host_started ON learning_record "
            "(host_unit_path, started_at) INCLUDE (id, learner_id, minutes, status, source, "
            "category_code, mode)",
            "CREATE INDEX ix_learning_record_learner_started ON learning_record "
            "(learner_id, started_at)",
            "CREATE INDEX ix_learning_record_learner_newest ON learning_record (learner_id, id)",
            "CREATE INDEX ix_learning_record_live_learner_ended ON learning_record "
            "(learner_id, ended_at) WHERE status IN ('pending', 'verified')",
            "CREATE INDEX ix_learning_record_activity_id ON learning_record (activity_id)",
            "CREATE INDEX ix_credit_source_earned_on ON credit_source (earned_on) "
            "INCLUDE (key, amount_hundredths)",
            "CREATE INDEX ix_credit_source_learner_key ON credit_source (learner_id, key)",
            "CREATE INDEX ix_credit_source_transaction_id ON credit_source (transaction_id)",
            "CREATE INDEX ix_credit_source_unit_path_earned_on ON credit_source "
            "(unit_path, earned_on) INCLUDE (key, amount_hundredths)",
        ):
            await connection.execute(statement)
        await connection.execute("VACUUM (ANALYZE)")
        print(f"  indexes, vacuum, analyze: {time.perf_counter() - began:.0f} s")
    finally:
        await connection.close()


async def sizes(dsn: str, tables: tuple[str, ...]) -> list[str]:
    connection = await asyncpg.connect(dsn)
    try:
        lines = []
        for table in tables:
            count = await connection.fetchval(f"SELECT count(*) FROM {table}")
            size = await connection.fetchval(
                "SELECT pg_size_pretty(pg_total_relation_size($1::regclass))", table
            )
            lines.append(f"  {table:<18} {count:>12,} rows {size:>10} with indexes")
        lines.append(
            "  database: "
            + str(
                await connection.fetchval(
                    "SELECT pg_size_pretty(pg_database_size(current_database()))"
                )
            )
        )
        return lines
    finally:
        await connection.close()


async def report(credits_url: str, accounts_url: str, path: str, period: Period) -> dict[str, Any]:
    """Every figure of one report, as the route reads them (``figures.unit_figures``: three
    parts at once in one snapshot, the registrations in accounts meanwhile), each part timed.

    The group lookup is the accounts service's own work, chunk by chunk as credits asks, with
    the JSON both ends write and read, the route's check of the ids and its audit digest, run
    in this process: the HTTP round trips are not in it, and its Python work shares this
    process with credits' own (in the services it has a process of its own), so the total is
    if anything pessimistic."""
    timings: dict[str, float] = {}
    credits_engine = make_credits_engine(normalise_database_url(credits_url))
    accounts_engine = make_engine(normalise_database_url(accounts_url))
    accounts_sessions = make_sessionmaker(accounts_engine)

    async def registrations() -> Any:
        step = time.perf_counter()
        async with accounts_sessions() as session:
            row = (
                await session.execute(
                    text(
                        "SELECT count(*), count(*) FILTER (WHERE groups::text LIKE '%\"elderly\"%')"
                        " FROM learning_account WHERE residence_path LIKE :p AND created_at < :e"
                    ),
                    {"p": path + "%", "e": period.ends_before},
                )
            ).one()
        timings["registrations (accounts)"] = time.perf_counter() - step
        return row

    async def groups_of(totals: Sequence[service.LearnerTotal]) -> groups.Lookup:
        places: dict[str, list[int]] = {}
        listed, others = 0, None
        async with accounts_sessions() as session:
            for start in range(0, max(len(totals), 1), groups.LOOKUP_CHUNK):
                chunk = [str(t.learner_id) for t in totals[start : start + groups.LOOKUP_CHUNK]]
                body = json.dumps({"unit": "bench", "learners": chunk})
                # as the route reads it: pydantic's check of each id, the audit entry's digests
                asked = GroupLookup.model_validate_json(body).learners
                learners_digest(asked)
                _, found, here, apart = await group_membership(session, path, asked)
                learners_digest(apart)
                answer = json.loads(
                    json.dumps(
                        {"groups": found, "listed_residents": here, "other_residents": apart}
                    )
                )
                for group, at in answer["groups"].items():
                    places.setdefault(group, []).extend(start + n for n in at)
                listed += answer["listed_residents"]
                given = set(answer["other_residents"])
                others = given if others is None else others & given
        residents = groups.Residents(listed, list(others or ()))
        return groups.Lookup(groups.sum_by_group(totals, places), residents, [])

    try:
        async with make_sessionmaker(credits_engine)() as session:
            began = time.perf_counter()
            asked = asyncio.create_task(registrations())
            found = await figures.unit_figures(session, path, period, groups_of, timings)
            registered = await asked
            total = time.perf_counter() - began
        return {
            "participants": found.report.participants,
            "learners": len(found.totals),
            "minutes": sum(line.minutes for line in found.report.hours_by_category_mode),
            "issued": found.report.credits.issued_hundredths,
            "volunteers": [
                (v.year, v.volunteers, v.volunteers_meeting_target) for v in found.report.volunteers
            ],
            "sessions": found.report.activities.sessions,
            "attendance": found.report.activities.attendance,
            "registered": registered[0],
            "elderly": registered[1],
            "by_group": {
                g.group: (g.learners, round(g.hours))
                for g in found.report.hours_by_group or []
                if g.learners
            },
            "timings": timings,
            "total": total,
            "keepable": figures.keepable(found),
        }
    finally:
        await credits_engine.dispose()
        await accounts_engine.dispose()


async def kept_time(credits_url: str, path: str, period: Period, found: Fresh) -> float:
    """Seconds to answer a report again from its kept figures (``credits.statistics.keeping``):
    the row read and its JSON checked back into the report's shape. The service answers so
    when the first reading took ``statistics_keep_after_seconds`` or more (2 s); the accounts
    service's unit and registrations are asked meanwhile, as for every report. The kept row is
    removed afterwards."""
    engine = make_credits_engine(normalise_database_url(credits_url))
    sessions = make_sessionmaker(engine)
    keeping = KeptReports(keep_after=0, keep_for=600)
    key = f"{period.first.isoformat()}..{period.last.isoformat()}"

    async def already_read() -> Fresh:
        return found

    try:
        async with sessions() as session:
            await keeping.read(session, "report", path, key, already_read, fresh=True)
            await session.commit()
        async with sessions() as session:
            began = time.perf_counter()
            reading = await keeping.read(session, "report", path, key, already_read)
            ReportFigures.model_validate(reading.figures)
            elapsed = time.perf_counter() - began
            if not reading.kept:
                raise RuntimeError("the report was not answered from its kept figures")
            await session.execute(delete(KeptReport).where(KeptReport.unit_path == path))
            await session.commit()
        return elapsed
    finally:
        await engine.dispose()


async def star_time(credits_url: str, path: str, year: int) -> tuple[float, int]:
    engine = make_credits_engine(normalise_database_url(credits_url))
    try:
        async with make_sessionmaker(engine)() as session:
            began = time.perf_counter()
            found = await stars.candidates(
                session, unit_path=path, year=year, rule=stars.load_rule()
            )
            return time.perf_counter() - began, len(found)
    finally:
        await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--residents", type=int, default=300_000)
    parser.add_argument("--records", type=int, default=15_000_000)
    parser.add_argument("--quick", action="store_true", help="a tenth of the issue's size")
    parser.add_argument(
        "--keep", action="store_true", help="keep the databases and print their URLs"
    )
    parser.add_argument(
        "--reuse",
        nargs=2,
        metavar=("CREDITS_URL", "ACCOUNTS_URL"),
        help="time the reports on databases a --keep run left (no generating)",
    )
    args = parser.parse_args()
    if args.quick:
        args.residents, args.records = args.residents // 10, args.records // 10
    units = network()
    if args.reuse:
        time_reports(units, *args.reuse)
        return
    with postgres_server() as server:
        credits_url = server.create_database("bench_stats_credits")
        accounts_url = server.create_database("bench_stats_accounts")
        if args.keep:
            print(f"kept: --reuse {credits_url} {accounts_url}")
            server.created.clear()  # not dropped at the end
        upgrade_to_head(CREDITS_ROOT, credits_url)
        upgrade_to_head(ACCOUNTS_ROOT, accounts_url)
        asyncio.run(run_in_transaction(normalise_database_url(credits_url), seed_reference_data))
        network_data = read_json("accounts.network", "data/muye_network.json")

        async def seed_network(session: Any) -> None:
            await load_network(session=session, data=network_data)

        asyncio.run(run_in_transaction(normalise_database_url(accounts_url), seed_network))
        credits_dsn = credits_url.replace("postgresql+asyncpg://", "postgresql://")
        accounts_dsn = accounts_url.replace("postgresql+asyncpg://", "postgresql://")
        print(f"generating {args.residents:,} residents and {args.records:,} records")
        began = time.perf_counter()

        async def load_accounts() -> None:
            connection = await asyncpg.connect(accounts_dsn)
            try:
                await connection.execute(
                    ACCOUNTS_LOAD, args.residents, list(GROUPS), point_ends(units, args.residents)
                )
                await connection.execute("VACUUM (ANALYZE) learning_account")
            finally:
                await connection.close()

        asyncio.run(load_accounts())
        print(f"  accounts: {time.perf_counter() - began:.0f} s")
        asyncio.run(load_credits(credits_dsn, units, args.residents, args.records))
        asyncio.run(build_indexes(credits_dsn))
        print(f"generated in {time.perf_counter() - began:.0f} s; data set:")
        for line in asyncio.run(
            sizes(
                credits_dsn,
                (
                    "learning_record",
                    "credit_source",
                    "activity",
                    "activity_session",
                    "attendance",
                    "volunteer_service",
                ),
            )
        ):
            print(line)
        for line in asyncio.run(sizes(accounts_dsn, ("learning_account", "unit"))):
            print(line)
        time_reports(units, credits_url, accounts_url)
        print(json.dumps({"residents": args.residents, "records": args.records}))


def time_reports(units: list[dict[str, Any]], credits_url: str, accounts_url: str) -> None:
    """Every report for the district and a town, one year and four, cold then warm."""
    town = next(u for u in units if u["key"] == "410711101")
    district = next(u for u in units if u["key"] == "410711")
    periods = {
        "2025": Period(date(2025, 1, 1), date(2025, 12, 31)),
        "2022-12..2026-11": Period(date(2022, 12, 1), date(2026, 11, 30)),
    }
    print("reports (seconds; the first run of each reads from disk, the second is warm):")
    for unit in (district, town):
        for label, period in periods.items():
            for attempt in ("cold", "warm"):
                result = asyncio.run(report(credits_url, accounts_url, unit["path"], period))
                population = unit["population"]
                print(
                    f"  {unit['key']:<10} {label:<17} {attempt}: {result['total']:.2f} s  "
                    f"participants {result['participants']:,} of {population:,} "
                    f"({result['participants'] / population:.1%}; learners at its activities "
                    f"{result['learners']:,}), registered "
                    f"{result['registered']:,} ({result['registered'] / population:.1%}), "
                    f"hours {result['minutes'] / 60:,.0f}, credits "
                    f"{result['issued'] / 100:,.0f}, sessions {result['sessions']:,}, "
                    f"check-ins {result['attendance']:,}"
                )
                if attempt == "warm":
                    print(f"      learners, hours by group: {result['by_group']}")
                if attempt == "warm":
                    print(
                        "      " + ", ".join(f"{k} {v:.2f}" for k, v in result["timings"].items())
                    )
                    again = asyncio.run(
                        kept_time(credits_url, unit["path"], period, result["keepable"])
                    )
                    print(
                        f"      asked again within the keeping time: kept figures {again:.3f} s"
                        f" (registrations meanwhile "
                        f"{result['timings']['registrations (accounts)']:.2f} s)"
                    )
        for attempt in ("cold", "warm"):
            elapsed, found = asyncio.run(star_time(credits_url, unit["path"], 2025))
            print(
                f"  {unit['key']:<10} learning stars 2025 {attempt}: {elapsed:.2f} s, "
                f"{found} candidates"
            )


if __name__ == "__main__":
    main()
