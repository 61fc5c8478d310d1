"""Writing reports as the files people open: Excel workbooks (.xlsx) and CSV, Chinese headers.

Pure apart from building a response: tables in, bytes out. CSV carries a UTF-8 byte order mark,
without which Excel on a Chinese Windows reads the file as GBK and shows mojibake. Workbooks are
written in openpyxl's write-only mode (rows streamed, not held as cell objects); needs the
``sheets`` extra of this package. Text is never a formula: a workbook keeps text starting
with ``=`` as text, and a CSV cell starting with ``= + - @`` (or a tab or carriage return) is
prefixed with ``'`` (names, titles, file names and reasons are typed by residents and staff).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal
from urllib.parse import quote

from fastapi import Response

__all__ = ["EXPORT_FORMATS", "Sheet", "csv_bytes", "export_response", "xlsx_bytes"]

ExportFormat = Literal["xlsx", "csv"]
EXPORT_FORMATS: dict[ExportFormat, str] = {
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "csv": "text/csv; charset=utf-8",
}
Cell = str | int | float | Decimal | date | datetime | bool | None
# a text cell starting with one of these is a formula to Excel (CSV) or to openpyxl ("=")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class Sheet:
    """One table: a sheet title (at most 31 characters in Excel), its headers and its rows."""

    title: str
    headers: Sequence[str]
    rows: Iterable[Sequence[Cell]]


def _plain(value: Cell) -> Cell:
    # Excel has no time zones: an aware time is written as its wall clock with the offset dropped
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.replace(tzinfo=None)
    if isinstance(value, Decimal):
        return float(value) if value != value.to_integral_value() else int(value)
    return value


def _xlsx_cell(page: Any, value: Cell) -> Any:
    # openpyxl writes text starting with "=" as a formula: names and free text stay text
    plain = _plain(value)
    if isinstance(plain, str) and plain.startswith("="):
        from openpyxl.cell import WriteOnlyCell

        cell = WriteOnlyCell(page, value=plain)
        cell.data_type = "s"
        return cell
    return plain


def _csv_cell(value: Cell) -> Cell:
    # Excel runs text starting with = + - @ as a formula: quoted, it is shown as typed
    if value is None:
        return ""
    plain = _plain(value)
    if isinstance(plain, str) and plain.startswith(FORMULA_STARTS):
        return "'" + plain
    return plain


def xlsx_bytes(sheets: Sequence[Sheet]) -> bytes:
    """A workbook with one sheet per table, headers in bold and frozen above the rows."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    if not sheets:
        raise ValueError("a workbook needs at least one sheet")
    book = Workbook(write_only=True)
    bold = Font(bold=True)
    for sheet in sheets:
        page = book.create_sheet(title=sheet.title[:31])
        page.freeze_panes = "A2"
        header_cells = []
        for header in sheet.headers:
            cell = WriteOnlyCell(page, value=header)
            cell.font = bold
            header_cells.append(cell)
        page.append(header_cells)
        for row in sheet.rows:
            page.append([_xlsx_cell(page, value) for value in row])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def csv_bytes(sheet: Sheet) -> bytes:
    """One table as CSV in UTF-8 with a byte order mark (so Excel reads the Chinese headers)."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\r\n")
    writer.writerow(sheet.headers)
    for row in sheet.rows:
        writer.writerow([_csv_cell(value) for value in row])
    return ("\ufeff" + text.getvalue()).encode("utf-8")


def export_response(fmt: ExportFormat, filename: str, sheets: Sequence[Sheet]) -> Response:
    """A download: ``filename`` (no extension; Chinese allowed, RFC 6266 ``filename*``).

    CSV holds one table: callers with several tables offer .xlsx, or one CSV per table.
    """
    if fmt == "csv" and len(sheets) != 1:
        raise ValueError("a CSV file holds exactly one table")
    body = xlsx_bytes(sheets) if fmt == "xlsx" else csv_bytes(sheets[0])
    name = f"{filename}.{fmt}"
    ascii_name = name.encode("ascii", "replace").decode().replace("?", "_").replace('"', "_")
    disposition = f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name)}"
    return Response(
        content=body,
        media_type=EXPORT_FORMATS[fmt],
        headers={"Content-Disposition": disposition},
    )
