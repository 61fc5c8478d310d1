"""Cursors round-trip and refuse forgeries; database URLs map onto our async drivers."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kernel.pagination import InvalidCursor, decode_cursor, encode_cursor
from kernel.settings import normalise_database_url

positions = st.dictionaries(
    st.text(min_size=1, max_size=10), st.one_of(st.integers(), st.text(max_size=40)), max_size=4
)


@given(positions)
def test_cursor_round_trips(position: dict) -> None:
    assert decode_cursor(encode_cursor(position)) == position


@pytest.mark.parametrize("cursor", ["%%%", "bm90IGpzb24", "WzEsMl0"])  # junk, "not json", "[1,2]"
def test_foreign_cursor_is_refused(cursor: str) -> None:
    with pytest.raises(InvalidCursor):
        decode_cursor(cursor)


@pytest.mark.parametrize(
    ("given_url", "expected"),
    [
        ("postgresql://u@h:5432/db", "postgresql+asyncpg://u@h:5432/db"),
        ("postgres://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("sqlite:///var/a.sqlite3", "sqlite+aiosqlite:///var/a.sqlite3"),
        ("postgresql+asyncpg://u@h/db", "postgresql+asyncpg://u@h/db"),
    ],
)
def test_database_url_is_normalised(given_url: str, expected: str) -> None:
    assert normalise_database_url(given_url) == expected
