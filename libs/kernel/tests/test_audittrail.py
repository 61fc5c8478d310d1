"""The audit hash chain: hashes cover every field, and the walk names the first break."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from kernel.audittrail import (
    GENESIS,
    START,
    ChainEntry,
    Link,
    canonical,
    entry_hash,
    verify_chain,
)


def _fields(n: int) -> dict[str, object]:
    return {
        "at": datetime(2026, 11, 25, 8, 0, n % 60, 123456, tzinfo=UTC),
        "actor": f"staff-{n}",
        "actor_kind": "staff",
        "actor_role": "college_staff",
        "actor_unit": "410711",
        "action": "activity.update",
        "target_type": "activity",
        "target_id": str(n),
        "before_digest": None,
        "after_digest": "ab" * 32,
        "reason": "改期 rescheduled",
        "request_id": f"req-{n}",
        "outcome": "ok",
    }


def _chain(length: int, anchor: Link = START) -> list[ChainEntry]:
    entries, previous = [], anchor.hash
    for seq in range(anchor.seq + 1, anchor.seq + length + 1):
        fields = _fields(seq)
        current = entry_hash(previous, seq, fields)
        entries.append(ChainEntry(seq, previous, current, fields))
        previous = current
    return entries


def _head(entries: list[ChainEntry]) -> Link:
    return Link(entries[-1].seq, entries[-1].hash)


def test_an_intact_chain_verifies_against_its_head() -> None:
    entries = _chain(10)
    assert verify_chain(entries, head=_head(entries)) is None
    assert verify_chain([], head=START) is None


def test_a_chain_after_a_purge_verifies_from_its_anchor() -> None:
    anchor = Link(41, "cd" * 32)
    entries = _chain(5, anchor)
    assert verify_chain(entries, anchor=anchor, head=_head(entries)) is None
    broken = verify_chain(entries, head=_head(entries))  # from genesis it does not
    assert broken is not None and broken.seq == 1 and broken.kind == "removed"


def test_the_hash_covers_sequence_previous_hash_and_every_field() -> None:
    base = entry_hash(GENESIS, 1, _fields(1))
    assert len(base) == 64
    assert entry_hash(GENESIS, 2, _fields(1)) != base
    assert entry_hash("1" * 64, 1, _fields(1)) != base
    for name in _fields(1):
        changed = {**_fields(1), name: "x"}
        assert entry_hash(GENESIS, 1, changed) != base, name


def test_timestamps_hash_the_same_naive_or_in_any_zone() -> None:
    aware = _fields(3)
    moment = aware["at"]
    assert isinstance(moment, datetime)
    naive = {**aware, "at": moment.replace(tzinfo=None)}
    beijing = {**aware, "at": moment.astimezone(timezone(timedelta(hours=8)))}
    assert canonical(3, aware) == canonical(3, naive) == canonical(3, beijing)


def test_an_edited_entry_is_reported_altered() -> None:
    entries = _chain(8)
    entries[4] = ChainEntry(5, entries[4].prev_hash, entries[4].hash, {**_fields(5), "actor": "x"})
    broken = verify_chain(entries, head=_head(entries))
    assert broken is not None and (broken.seq, broken.kind) == (5, "altered")


def test_a_removed_middle_entry_is_reported_at_its_place() -> None:
    entries = _chain(8)
    del entries[3]
    broken = verify_chain(entries, head=_head(entries))
    assert broken is not None and (broken.seq, broken.kind) == (4, "removed")


def test_removed_newest_entries_show_against_the_head() -> None:
    entries = _chain(8)
    head = _head(entries)
    broken = verify_chain(entries[:6], head=head)
    assert broken is not None and (broken.seq, broken.kind) == (7, "removed")


def test_an_entry_appended_behind_the_heads_back_is_reported_inserted() -> None:
    entries = _chain(8)
    head = _head(entries)
    forged = _chain(9)[-1]  # correctly hashed, but the head never moved to it
    broken = verify_chain([*entries, forged], head=head)
    assert broken is not None and (broken.seq, broken.kind) == (9, "inserted")


def test_an_entry_that_does_not_follow_its_predecessor_is_inserted() -> None:
    entries = _chain(8)
    fields = _fields(99)
    forged = ChainEntry(9, "ef" * 32, entry_hash("ef" * 32, 9, fields), fields)
    broken = verify_chain([*entries, forged], head=Link(9, forged.hash))
    assert broken is not None and (broken.seq, broken.kind) == (9, "inserted")


def test_a_forged_entry_squeezed_in_by_renumbering_is_reported_inserted() -> None:
    entries = _chain(8)
    fields = _fields(77)
    forged_hash = entry_hash(entries[2].hash, 4, fields)
    forged = ChainEntry(4, entries[2].hash, forged_hash, fields)
    shifted = [ChainEntry(e.seq + 1, e.prev_hash, e.hash, e.fields) for e in entries[3:]]
    tampered = [*entries[:3], forged, *shifted]
    broken = verify_chain(tampered, head=_head(tampered))
    assert broken is not None and (broken.seq, broken.kind) == (4, "inserted")


def test_a_gap_closed_by_renumbering_is_reported_removed() -> None:
    entries = _chain(8)
    shifted = [ChainEntry(e.seq - 1, e.prev_hash, e.hash, e.fields) for e in entries[4:]]
    tampered = [*entries[:3], *shifted]
    broken = verify_chain(tampered, head=_head(tampered))
    assert broken is not None and (broken.seq, broken.kind) == (4, "removed")


@given(length=st.integers(min_value=1, max_value=12), data=st.data())
def test_any_single_field_edit_is_caught_at_that_entry(length: int, data: st.DataObject) -> None:
    entries = _chain(length)
    index = data.draw(st.integers(min_value=0, max_value=length - 1))
    name = data.draw(st.sampled_from(sorted(_fields(1))))
    victim = entries[index]
    entries[index] = ChainEntry(
        victim.seq, victim.prev_hash, victim.hash, {**victim.fields, name: "tampered"}
    )
    broken = verify_chain(entries, head=_head(entries))
    assert broken is not None and broken.seq == victim.seq and broken.kind == "altered"
