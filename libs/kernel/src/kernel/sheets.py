"""Reading the sheets people keep (.xlsx or .csv) by their header row.

Pure: bytes in, rows out. Columns are found by their header (several spellings may name one
field); every data row keeps its row number on the sheet (the header is row 1), so each problem
can be reported where the person who keeps the sheet will look for it. In an .xlsx file every
cell of a merged range reads its top-left cell's value, as the person sees it. Needs
``openpyxl`` for .xlsx files (the ``sheets`` extra of this package).
"""

from __future__ import annotations

import csv
import io
import posixpath
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from xml.etree import ElementTree

__all__ = ["SheetError", "SheetRow", "cell_text", "normal_header", "read_sheet"]

# full-width brackets and spaces are common in headers typed with a Chinese input method
_HEADER_FOLD = str.maketrans({"（": "(", "）": ")", "\u3000": "", " ": ""})


class SheetError(ValueError):
    """The file cannot be read as the sheet asked for at all."""


@dataclass(frozen=True)
class SheetRow:
    """One data row: its row number on the sheet and its fields by our names."""

    number: int
    fields: dict[str, str]


def normal_header(title: str) -> str:
    """A header as compared: no spaces, full-width brackets as ASCII ones."""
    return title.strip().translate(_HEADER_FOLD)


def cell_text(value: object) -> str:
    """A cell's value as text, the way the person typing it meant it."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # a number typed into a cell loses nothing below 2**53
    # dates and times come as datetime/time objects: str() gives "2026-11-25 09:00:00"
    return str(value).strip()


def _header_map(
    header: list[str],
    headers: Mapping[str, str],
    required: Mapping[str, str],
    refused: Mapping[str, str],
) -> dict[int, str]:
    known = {normal_header(title): field for title, field in headers.items()}
    stopped = {normal_header(title): reason for title, reason in refused.items()}
    mapping: dict[int, str] = {}
    for position, title in enumerate(header):
        name = normal_header(title)
        if name in stopped:
            raise SheetError(stopped[name])
        field = known.get(name)
        if field is not None:
            mapping[position] = field
    missing = [shown for field, shown in required.items() if field not in mapping.values()]
    if missing:
        raise SheetError(f"the header row lacks required columns: {'、'.join(missing)}")
    return mapping


def _rows(
    table: Iterator[list[str]],
    headers: Mapping[str, str],
    required: Mapping[str, str],
    refused: Mapping[str, str],
) -> Iterator[SheetRow]:
    try:
        header = next(table)
    except StopIteration:
        raise SheetError("the sheet is empty") from None
    mapping = _header_map(header, headers, required, refused)
    for number, values in enumerate(table, start=2):
        if not any(v.strip() for v in values):
            continue  # blank lines between blocks are common
        yield SheetRow(
            number, {field: values[i] if i < len(values) else "" for i, field in mapping.items()}
        )


def _table(filename: str, content: bytes) -> Iterable[list[str]]:
    lower = filename.lower()
    if lower.endswith(".xlsx"):
        from openpyxl import load_workbook  # only .xlsx readers need it

        try:
            workbook = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
        except Exception as exc:  # openpyxl raises many kinds for a broken file
            raise SheetError(f"not a readable .xlsx file: {type(exc).__name__}") from None
        sheet = workbook.worksheets[0]
        return _unmerged(
            ([cell_text(v) for v in row] for row in sheet.iter_rows(values_only=True)), content
        )
    if lower.endswith(".csv"):
        for encoding in ("utf-8-sig", "gb18030"):
            try:
                text = content.decode(encoding)
                break
            except UnicodeDecodeError:
                continue
        else:
            raise SheetError("the CSV is neither UTF-8 nor GB18030")
        return ([c.strip() for c in row] for row in csv.reader(io.StringIO(text)))
    raise SheetError("only .xlsx and .csv files can be imported")


_MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_RELATIONSHIP = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"
_PACKAGE_RELS = "{http://schemas.openxmlformats.org/package/2006/relationships}Relationship"


def _first_worksheet_part(archive: zipfile.ZipFile) -> str | None:
    """The zip member of the workbook's first worksheet.

    The one openpyxl's ``worksheets[0]`` reads: sheets in workbook order, chart sheets skipped.
    """
    targets = {
        rel.get("Id"): rel.get("Target", "")
        for rel in ElementTree.fromstring(archive.read("xl/_rels/workbook.xml.rels")).iter(
            _PACKAGE_RELS
        )
    }
    for sheet in ElementTree.fromstring(archive.read("xl/workbook.xml")).iter(_MAIN + "sheet"):
        target = targets.get(sheet.get(_RELATIONSHIP), "")
        part = target.lstrip("/") if target.startswith("/") else posixpath.normpath("xl/" + target)
        if part.startswith("xl/worksheets/"):
            return part
    return None


def _merged_ranges(content: bytes) -> list[tuple[int, int, int, int]]:
    """The first worksheet's merged ranges as (min_col, min_row, max_col, max_row), 1-based.

    openpyxl's read-only worksheets (which stream the rows) do not give them, so they are read
    from the sheet's XML, where ``<mergeCells>`` follows the rows.
    """
    from openpyxl.utils.cell import range_boundaries

    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        part = _first_worksheet_part(archive)
        if part is None:
            return []
        ranges: list[tuple[int, int, int, int]] = []
        with archive.open(part) as xml:
            for _, element in ElementTree.iterparse(xml):
                if element.tag == _MAIN + "mergeCell":
                    # openpyxl has read the ranges once while it gave the rows (a bad one
                    # stopped it there)
                    bounds = range_boundaries(element.get("ref", ""))
                    if None not in bounds:
                        ranges.append(bounds)
                element.clear()  # rows and cells too: memory stays flat
        return ranges


def _unmerged(rows: Iterable[list[str]], content: bytes) -> Iterator[list[str]]:
    """The rows with every cell of a merged range holding its top-left cell's value.

    A sheet kept by hand often merges a column over the rows it is the same for (the village,
    the consent date, the day's check-in time); only the top-left cell holds the value. Merges
    that begin on the header row are left alone (a merged header is one column's title), and
    ranges are clipped to the rows there are and the header's width, so a crafted range cannot
    make the sheet grow.
    """
    table = list(rows)
    if not table:
        return
    width = len(table[0])
    # a row blank but for a merged column stays blank (blank lines between blocks are skipped)
    written = [any(value for value in row) for row in table]
    budget = len(table) * width  # ranges that do not overlap visit fewer cells than there are
    for min_col, min_row, max_col, max_row in _merged_ranges(content):
        if min_row < 2 or min_row > len(table) or min_col > width:
            continue
        top = table[min_row - 1]
        value = top[min_col - 1] if min_col - 1 < len(top) else ""
        if not value:
            continue
        for number in range(min_row, min(max_row, len(table)) + 1):
            row = table[number - 1]
            if not written[number - 1]:
                continue
            if len(row) < min(max_col, width):
                row.extend([""] * (min(max_col, width) - len(row)))
            for column in range(min_col, min(max_col, width) + 1):
                budget -= 1
                if not row[column - 1]:
                    row[column - 1] = value
        if budget < 0:
            raise SheetError("the sheet's merged cells overlap; unmerge them and fill the cells")
    yield from table


def _guarded(table: Iterable[list[str]]) -> Iterator[list[str]]:
    """The rows, read lazily: a file that breaks off while they are read is a SheetError too.

    For example a CSV cell over the csv module's field limit, or a cut-off .xlsx worksheet.
    """
    rows = iter(table)
    while True:
        try:
            row = next(rows)
        except StopIteration:
            return
        except SheetError:
            raise  # already says what is wrong
        except Exception as exc:  # csv.Error, and openpyxl raises many kinds
            raise SheetError(
                f"the file breaks off while its rows are read ({type(exc).__name__})"
            ) from None
        yield row


def read_sheet(
    filename: str,
    content: bytes,
    *,
    headers: Mapping[str, str],
    required: Mapping[str, str],
    refused: Mapping[str, str] | None = None,
) -> Iterator[SheetRow]:
    """Rows of a .csv (UTF-8, with or without BOM, or GB18030) or .xlsx file (first sheet).

    Args:
        filename: the uploaded file's name; its extension says how to read it.
        content: the file's bytes.
        headers: header as written on the sheet -> field name; unknown columns are ignored.
        required: field -> the header to name when the column is missing.
        refused: header -> why a sheet with that column is refused (an ambiguous column).

    Raises:
        SheetError: the file is not a readable sheet or its header row is unusable.
    """
    return _rows(_guarded(_table(filename, content)), headers, required, refused or {})
