"""The credit rule engine, tested directly (pure module): examples and properties."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

import credits.rules
from credits.rules import engine
from credits.rules.engine import RecordFacts, RuleSet
from credits.rules.schemas import RuleVersionCreate, to_ruleset

DEFAULT_FILE = Path(credits.rules.__file__).parent / "data" / "muye_default.json"


def default_rules(version_id: int = 1) -> RuleSet:
    data = json.loads(DEFAULT_FILE.read_text())
    RuleVersionCreate.model_validate({k: data[k] for k in RuleVersionCreate.model_fields})
    return to_ruleset(
        version_id=version_id,
        effective_from=date.fromisoformat(data["effective_from"]),
        effective_to=None,
        body=data["body"],
    )


RULES = default_rules()
BASE = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # 09:00 in Beijing
CATEGORIES = ("law", "health", "digital_skills")


def record(
    id_: int,
    *,
    minutes: int = 120,
    at: datetime = BASE,
    category: str = "law",
    mode: str = "offline",
    source: str = "check_in",
    status: str = "verified",
    activity: str = "a1",
    kind: str = "course",
    session: str | None = None,
) -> RecordFacts:
    return RecordFacts(
        id=id_,
        started_at=at,
        minutes=minutes,
        category=category,
        mode=mode,
        source=source,
        status=status,
        activity_id=activity,
        activity_kind=kind,
        session_id=session,
    )


def total(credits: list[engine.Credit]) -> int:
    return sum(c.hundredths for c in credits)


def test_ten_taught_hours_make_one_credit() -> None:
    credits = engine.entitlements([record(1, minutes=600)], [RULES], {})
    assert [(c.key, c.hundredths, c.clause, c.version_id) for c in credits] == [
        ("hours:1", 100, "hours.offline", 1)
    ]


def test_short_online_stretches_earn_what_one_long_stretch_does() -> None:
    # 9 stretches of 10 minutes on 9 days = 90 minutes online = 10 hundredths at 900 min/credit;
    # rounding each on its own would pay floor(1.11) * 9 = 9
    stretches = [
        record(i, minutes=10, mode="online", at=BASE + timedelta(days=i)) for i in range(9)
    ]
    credits = engine.entitlements(stretches, [RULES], {})
    assert total(credits) == 10
    assert [c.hundredths for c in credits] == [1, 1, 1, 1, 1, 1, 1, 1, 2]


def test_online_minutes_beyond_four_hours_a_day_do_not_count() -> None:
    day = [
        record(i, minutes=120, mode="online", at=BASE + timedelta(hours=2 * i)) for i in range(4)
    ]
    credits = engine.entitlements(day, [RULES], {})
    assert total(credits) == 240 * 100 // 900  # 26, not 53
    next_day = record(9, minutes=300, mode="online", at=BASE + timedelta(days=1))
    assert total(engine.entitlements([*day, next_day], [RULES], {})) == 480 * 100 // 900


def test_pending_staff_entry_waits_for_verification_but_partner_record_counts() -> None:
    staff = record(1, source="staff_entry", status="pending", minutes=600)
    partner = record(2, source="partner", status="pending", minutes=180, mode="online")
    credits = engine.entitlements([staff, partner], [RULES], {})
    assert [c.key for c in credits] == ["hours:2"]
    verified = record(1, source="staff_entry", status="verified", minutes=600)
    assert total(engine.entitlements([verified, partner], [RULES], {})) == 100 + 20


def test_rejected_and_voided_records_never_count() -> None:
    records = [
        record(1, status="rejected"),
        record(2, status="voided", at=BASE + timedelta(days=1)),
    ]
    assert engine.entitlements(records, [RULES], {}) == []


def test_category_and_year_caps() -> None:
    # 20 long days of law: capped at 10 credits in the category
    law = [record(i, minutes=600, at=BASE + timedelta(days=i)) for i in range(20)]
    assert total(engine.entitlements(law, [RULES], {})) == 1000
    # 5 categories x 10 credits: capped at 30 a year
    many = [
        record(100 * c + i, minutes=600, category=f"c{c}", at=BASE + timedelta(days=i, hours=c))
        for c in range(5)
        for i in range(10)
    ]
    assert total(engine.entitlements(many, [RULES], {})) == 3000
    # the next year starts afresh
    later = [record(9000 + i, minutes=600, at=BASE + timedelta(days=365 + i)) for i in range(3)]
    assert total(engine.entitlements([*law, *later], [RULES], {})) == 1300


def test_completion_award_at_eighty_percent_of_sessions() -> None:
    sessions = [
        record(i, minutes=60, session=f"s{i}", at=BASE + timedelta(days=7 * i)) for i in range(4)
    ]
    credits = engine.entitlements(sessions, [RULES], {"a1": 5})
    awards = [c for c in credits if c.clause == "completion"]
    assert len(awards) == 1
    assert awards[0].hundredths == 50
    assert awards[0].record_ids == (0, 1, 2, 3)
    assert awards[0].earned_on == engine.local_day(sessions[3].started_at)
    # three of five is 60%: no award; lectures never get one
    assert not [
        c for c in engine.entitlements(sessions[:3], [RULES], {"a1": 5}) if c.clause == "completion"
    ]
    lectures = [
        record(i, session=f"s{i}", kind="lecture", at=BASE + timedelta(days=i)) for i in range(4)
    ]
    assert not [
        c for c in engine.entitlements(lectures, [RULES], {"a1": 4}) if c.clause == "completion"
    ]


def test_later_published_version_wins_for_the_days_it_covers() -> None:
    corrected = RuleSet(
        version_id=2,
        effective_from=date(2026, 1, 1),
        effective_to=date(2027, 1, 1),
        minutes_per_credit={"offline": 300, "online": 900, "blended": 720},
    )
    before = record(1, minutes=600, at=datetime(2025, 12, 1, 2, tzinfo=UTC))
    inside = record(2, minutes=600)
    credits = engine.entitlements([before, inside], [RULES, corrected], {})
    assert [(c.key, c.hundredths, c.version_id) for c in credits] == [
        ("hours:1", 100, 1),
        ("hours:2", 200, 2),
    ]


def test_beijing_day_decides_the_year() -> None:
    # 2026-12-31 17:00 UTC is 2027-01-01 01:00 in Beijing
    late = record(1, minutes=600, at=datetime(2026, 12, 31, 17, tzinfo=UTC))
    assert engine.entitlements([late], [RULES], {})[0].earned_on == date(2027, 1, 1)


def test_expiry_takes_the_oldest_credits_first() -> None:
    earned = {2019: 500, 2020: 300, 2024: 400}
    today = date(2026, 1, 1)  # 2020's credits expire at the start of 2026 (5 years after)

    def expiring(balance: int, earned_by_year: dict[int, int] = earned) -> int:
        return engine.expiring_hundredths(
            earned_by_year=earned_by_year, balance=balance, expiry_years=5, today=today
        )

    assert expiring(600) == 200  # 600 spent from the oldest: 200 of 2020 left, 400 of 2024
    assert expiring(300) == 0  # spent more than the old lots held: nothing old is left
    assert expiring(400) == 0  # 600 spent and 200 expired earlier: not again
    # 800 earned in 2020 and converted, its records voided since (the conversion paid for by
    # the write-off), then 200 learnt in 2024: the balance 200 is recent and stays, and an
    # account holding 2020 credits with nothing recent gives them all up
    assert expiring(200, {2020: 0, 2024: 200}) == 0
    assert expiring(300, {2020: 300}) == 300


# ---- properties -------------------------------------------------------------------------

records_strategy = st.lists(
    st.builds(
        lambda i, day, hour, minutes, category, mode, source, status, session: record(
            i,
            minutes=minutes,
            at=BASE + timedelta(days=day, hours=hour),
            category=category,
            mode=mode,
            source=source,
            status=status,
            session=f"s{session}" if session is not None else None,
        ),
        i=st.integers(min_value=1, max_value=10**6),
        day=st.integers(min_value=0, max_value=800),
        hour=st.integers(min_value=0, max_value=23),
        minutes=st.integers(min_value=0, max_value=24 * 60),
        category=st.sampled_from(CATEGORIES),
        mode=st.sampled_from(engine.MODES),
        source=st.sampled_from(("check_in", "partner", "staff_entry")),
        status=st.sampled_from(("pending", "verified", "verified", "rejected", "voided")),
        session=st.none() | st.integers(min_value=0, max_value=6),
    ),
    max_size=60,
    unique_by=lambda r: r.id,
)
SESSIONS = {"a1": 5}


@given(records_strategy)
@settings(max_examples=300, deadline=None)
def test_credits_are_never_negative_and_caps_never_exceeded(records: list[RecordFacts]) -> None:
    credits = engine.entitlements(records, [RULES], SESSIONS)
    assert all(c.hundredths > 0 for c in credits)
    hours = [c for c in credits if c.clause.startswith("hours.")]
    by_year: dict[int, int] = defaultdict(int)
    by_category: dict[tuple[int, str], int] = defaultdict(int)
    for c in hours:
        by_year[c.earned_on.year] += c.hundredths
        by_category[(c.earned_on.year, c.category)] += c.hundredths
    assert all(v <= 3000 for v in by_year.values())
    assert all(v <= 1000 for v in by_category.values())
    online_minutes: dict[tuple[str, date], int] = defaultdict(int)
    for r in records:
        if r.mode == "online" and engine.is_countable(r, RULES):
            online_minutes[(r.category, engine.local_day(r.started_at))] += r.minutes
    # the day cap bounds each (category, day) of online learning at what 240 minutes earn
    online_by_day: dict[tuple[str, date], int] = defaultdict(int)
    for c in hours:
        if c.clause == "hours.online":
            online_by_day[(c.category, c.earned_on)] += c.hundredths
    assert all(v <= 240 * 100 // 900 + 1 for v in online_by_day.values())


@given(records_strategy, st.randoms(use_true_random=False))
@settings(max_examples=300, deadline=None)
def test_order_and_replay_do_not_change_credits(records: list[RecordFacts], rnd) -> None:  # type: ignore[no-untyped-def]
    first = engine.entitlements(records, [RULES], SESSIONS)
    shuffled = list(records)
    rnd.shuffle(shuffled)
    assert engine.entitlements(shuffled, [RULES], SESSIONS) == first
    assert engine.entitlements(records, [RULES], SESSIONS) == first


@given(records_strategy, st.integers(min_value=0, max_value=60))
@settings(max_examples=300, deadline=None)
def test_splitting_the_batch_gives_the_same_totals(records: list[RecordFacts], cut: int) -> None:
    # the ledger settles a learner's whole history each time: credits after the first part
    # arrived, then after the rest, end where one batch of everything ends
    whole = engine.entitlements(records, [RULES], SESSIONS)
    engine.entitlements(records[:cut], [RULES], SESSIONS)
    after_both = engine.entitlements(records[:cut] + records[cut:], [RULES], SESSIONS)
    assert total(after_both) == total(whole)
    by_key = {c.key: c.hundredths for c in after_both}
    assert by_key == {c.key: c.hundredths for c in whole}


@given(records_strategy, st.data())
@settings(max_examples=300, deadline=None)
def test_more_minutes_never_give_fewer_credits(
    records: list[RecordFacts], data: st.DataObject
) -> None:
    if not records:
        return
    index = data.draw(st.integers(min_value=0, max_value=len(records) - 1))
    extra = data.draw(st.integers(min_value=1, max_value=600))
    grown = list(records)
    r = grown[index]
    grown[index] = record(
        r.id,
        minutes=min(24 * 60, r.minutes + extra),
        at=r.started_at,
        category=r.category,
        mode=r.mode,
        source=r.source,
        status=r.status,
        session=r.session_id,
    )
    assert total(engine.entitlements(grown, [RULES], SESSIONS)) >= total(
        engine.entitlements(records, [RULES], SESSIONS)
    )


@given(records_strategy, st.data())
@settings(max_examples=200, deadline=None)
def test_more_records_never_give_fewer_credits(
    records: list[RecordFacts], data: st.DataObject
) -> None:
    if not records:
        return
    keep = data.draw(st.integers(min_value=0, max_value=len(records)))
    assert total(engine.entitlements(records, [RULES], SESSIONS)) >= total(
        engine.entitlements(records[:keep], [RULES], SESSIONS)
    )
