"""Cursor pagination: opaque cursors, page size at most 100."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel
from sqlalchemy import ColumnElement, and_, or_

from kernel.problems import PROBLEMS, DomainError

MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 50
ALTERED = "The cursor is not one this API issued; start again without it."

T = TypeVar("T")


class InvalidCursor(DomainError):
    """The cursor was not made by us or has been altered."""

    type = PROBLEMS + "invalid-cursor"
    status = 400
    title = "Invalid cursor"

    def __init__(self, detail: str, **fields: Any) -> None:
        # a resident paging their own records can meet it: said in Chinese too
        fields.setdefault("detail_zh", "翻页位置无效，请从第一页重新查看。")
        super().__init__(detail, **fields)


def encode_cursor(position: dict[str, Any]) -> str:
    """Turn a sort position into an opaque, URL-safe cursor."""
    raw = json.dumps(position, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> dict[str, Any]:
    """Read back a cursor made by :func:`encode_cursor`."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError, RecursionError):
        raise InvalidCursor(ALTERED) from None
    if not isinstance(value, dict):
        raise InvalidCursor(ALTERED)
    return value


class PageParams(BaseModel):
    """Where a page starts and how long it is."""

    limit: int
    cursor: dict[str, Any] | None


def page_params(
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> PageParams:
    """Read ``limit`` and ``cursor`` from the query string."""
    return PageParams(limit=limit, cursor=decode_cursor(cursor) if cursor else None)


PageDep = Annotated[PageParams, Depends(page_params)]


def cursor_row_id(cursor: dict[str, Any], key: str) -> int:
    """The row id a cursor holds under ``key``: an integer a BIGINT column can compare with.

    Cursors are not signed (they only say where a page starts), so a changed one is a 400
    :class:`InvalidCursor`, never a database error.
    """
    value = cursor.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**63:
        raise InvalidCursor(ALTERED)
    return value


def cursor_uuid(cursor: dict[str, Any], key: str) -> uuid.UUID:
    """The UUID a cursor holds under ``key``, or a 400 :class:`InvalidCursor`."""
    value = cursor.get(key)
    if not isinstance(value, str):
        raise InvalidCursor(ALTERED)
    try:
        return uuid.UUID(value)
    except ValueError:
        raise InvalidCursor(ALTERED) from None


class Page(BaseModel, Generic[T]):
    """One page of items and the cursor of the next page, if there is one."""

    items: list[T]
    next_cursor: str | None = None


def cursor_instant(cursor: dict[str, Any], key: str) -> datetime:
    """The instant a cursor holds under ``key`` (ISO 8601 text) in UTC, or a 400.

    In UTC because SQLite keeps a timestamp's digits and drops its offset.
    """
    value = cursor.get(key)
    try:
        if not isinstance(value, str):
            raise ValueError(value)
        moment = datetime.fromisoformat(value)
        moment = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC)
    except (ValueError, OverflowError):
        raise InvalidCursor(ALTERED) from None


def older_than_cursor(
    cursor: dict[str, Any], at_column: Any, id_column: Any, *, at_key: str, id_key: str = "id"
) -> ColumnElement[bool]:
    """The rows after a newest-first cursor, or a 400 for an altered one.

    A listing ordered by (``at_column``, ``id_column``) descending continues below the
    (instant, id) the cursor holds under ``at_key`` and ``id_key``.
    """
    at = cursor_instant(cursor, at_key)
    last = cursor_uuid(cursor, id_key)
    return or_(at_column < at, and_(at_column == at, id_column < last))
