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
import re
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from xml.etree import ElementTree

__all__ = [
    "BEIJING",
    "SheetError",
    "SheetRow",
    "cell_text",
    "excel_mangled",
    "moment_cell",
    "normal_header",
    "read_sheet",
]

#: the time a sheet's times are in unless they say otherwise (no daylight saving)
BEIJING = timezone(timedelta(hours=8))

# full-width brackets and spaces are common in headers typed with a Chinese input method
_HEADER_FOLD = str.maketrans({"（": "(", "）": ")", "\u3000": "", " ": ""})
# how dates are written on sheets kept in China: 2026/10/1, 2026年10月1日, 9：30
_MOMENT_FOLD = str.maketrans({"/": "-", "年": "-", "月": "-", "日": " ", "T": " ", "：": ":"})
_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d")
_TIMES = ("%H:%M:%S", "%H:%M")
# a long number Excel stored as a number: 15 significant digits, the rest lost
_MANGLED = re.compile(r"^[0-9](\.[0-9]+)?E\+[0-9]+$", re.IGNORECASE)
# Excel keeps 15 significant digits of a number: beyond, the digits shown were not typed
_EXACT_LIMIT = 10**15


class SheetError(ValueError):
    """The file cannot be read as the sheet asked for at all.

    ``zh`` says it in Chinese for the person who keeps the sheet, where it is known.
    """

    def __init__(self, reason: str, zh: str | None = None) -> None:
        super().__init__(reason)
        self.zh = zh


@dataclass(frozen=True)
class SheetRow:
    """One data row: its row number on the sheet and its fields by our names."""

    number: int
    fields: dict[str, str]


def normal_header(title: str) -> str:
    """A header as compared: no spaces, full-width brackets as ASCII ones."""
    return title.strip().translate(_HEADER_FOLD)


def cell_text(value: object) -> str:
    """A cell's value as text, the way the person typing it meant it.

    A whole number of 16 digits or more (an ID number typed into a General cell) is given as
    Excel shows it, ``4.10711199001011E+17``: Excel kept 15 digits of it and the rest are not
    what was typed, so it must not read as a number that merely fails its check digit
    (:func:`excel_mangled` tells such text).
    """
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        if abs(value) >= _EXACT_LIMIT:
            return f"{value:.15G}".replace("E+0", "E+")
        return str(int(value))  # a number typed into a cell loses nothing below 2**53
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= _EXACT_LIMIT:
        return f"{float(value):.15G}"
    # dates and times come as datetime/time objects: str() gives "2026-11-25 09:00:00"
    return str(value).strip()


class _MissingColumns(SheetError):
    """The header row lacks a required column."""


def excel_mangled(text: str) -> bool:
    """Whether a cell holds a long number Excel turned into a number (``4.10711E+17``).

    Its last digits are lost: the person should set the column to Text and type it again.
    """
    return bool(_MANGLED.match(text.strip()))


def moment_cell(text: str, *, day: date | None = None) -> datetime | None:
    """A date-and-time cell as an aware datetime, in Beijing time unless it says otherwise.

    Takes ISO 8601 (with or without an offset), ``2026/10/1 9:30`` (how Excel on Chinese
    Windows writes a date to CSV) and ``2026年10月1日``; with ``day``, a bare time (``9:10``)
    on that day. An empty cell is None.

    Raises:
        ValueError: the cell holds something that is not such a time.
    """
    value = " ".join(text.strip().translate(_MOMENT_FOLD).split())
    if not value:
        return None
    moment: datetime | None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        moment = None
        for pattern in _FORMATS:
            try:
                moment = datetime.strptime(value, pattern)
                break
            except ValueError:
                continue
    if moment is None:
        for pattern in _TIMES if day is not None else ():
            try:
                clock = datetime.strptime(value, pattern).time()
            except ValueError:
                continue
            return datetime.combine(day, clock, BEIJING)  # type: ignore[arg-type]
        raise ValueError(text)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=BEIJING)


def _header_map(
    header: list[str],
    headers: Mapping[str, str],
    required: Mapping[str, str],
    refused: Mapping[str, str | tuple[str, str]],
) -> dict[int, str]:
    known = {normal_header(title): field for title, field in headers.items()}
    stopped = {normal_header(title): reason for title, reason in refused.items()}
    mapping: dict[int, str] = {}
    for position, title in enumerate(header):
        name = normal_header(title)
        if name in stopped:
            reason = stopped[name]  # English, or (English, Chinese)
            raise SheetError(*reason) if isinstance(reason, tuple) else SheetError(reason)
        field = known.get(name)
        if field is None:
            continue
        twin = next((p for p, f in mapping.items() if f == field), None)
        if twin is not None:  # which one the person meant cannot be guessed
            first, second = header[twin].strip(), title.strip()
            raise SheetError(
                f"the columns {first} and {second} both give one field: keep one of them",
                f"“{first}”和“{second}”两列表示同一项内容，请删除其中一列后重新上传",
            )
        mapping[position] = field
    missing = [shown for field, shown in required.items() if field not in mapping.values()]
    if missing:
        raise _MissingColumns(
            f"the header row lacks required columns: {'、'.join(missing)}",
            f"表头（第1行）缺少必填列：{'、'.join(missing)}",
        )
    return mapping


def _rows(
    table: Iterator[list[str]],
    headers: Mapping[str, str],
    required: Mapping[str, str],
    refused: Mapping[str, str | tuple[str, str]],
) -> Iterator[SheetRow]:
    try:
        header = next(table)
    except StopIteration:
        raise SheetError("the sheet is empty", "表格是空的") from None
    try:
        mapping = _header_map(header, headers, required, refused)
    except _MissingColumns as missing:
        # a title row above the header ("牧野镇2026年居民名册") is common: say so, not "lacks"
        for number, values in zip(range(2, 5), table, strict=False):
            try:
                _header_map(values, headers, required, refused)
            except SheetError:
                continue
            raise SheetError(
                f"the header must be row 1, and it is row {number}: delete the rows above it",
                f"表头须在第1行（现在在第{number}行），请删除上方的标题行后重新上传",
            ) from None
        raise missing from None
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
            raise SheetError(
                f"not a readable .xlsx file: {type(exc).__name__}",
                "无法读取该 .xlsx 文件，请用 Excel 打开后另存为 .xlsx 再上传",
            ) from None
        sheet = workbook.worksheets[0]
        return _unmerged(
            ([cell_text(v) for v in row] for row in sheet.iter_rows(values_only=True)), content
        )
    if lower.endswith(".csv"):
        # Excel writes UTF-16 with a byte order mark for "Unicode text", UTF-8 with one for
        # "CSV UTF-8", and GB18030 (GBK) for plain "CSV" on Chinese Windows
        encodings = ("utf-16",) if content[:2] in (b"\xff\xfe", b"\xfe\xff") else ()
        for encoding in (*encodings, "utf-8-sig", "gb18030"):
            try:
                text = content.decode(encoding)
                break
            except UnicodeDecodeError:
                continue
        else:
            raise SheetError(
                "the CSV is neither UTF-8 nor GB18030",
                "CSV 文件编码无法识别，请另存为“CSV UTF-8”或 .xlsx 后重新上传",
            )
        first = text.split("\n", 1)[0]
        # a list separator other than the comma (";" where Windows is set so, tabs from
        # "Unicode text"): the one the header row holds most of
        delimiter = max((",", ";", "\t"), key=first.count) if first else ","
        rows = csv.reader(io.StringIO(text), delimiter=delimiter)
        return ([c.strip() for c in row] for row in rows)
    raise SheetError("only .xlsx and .csv files can be imported", "只能导入 .xlsx 或 .csv 文件")


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
            raise SheetError(
                "the sheet's merged cells overlap; unmerge them and fill the cells",
                "表格中的合并单元格相互重叠，请取消合并并填写每个单元格",
            )
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
                f"the file breaks off while its rows are read ({type(exc).__name__})",
                "文件不完整，读取中途出错，请重新保存后上传",
            ) from None
        yield row


def read_sheet(
    filename: str,
    content: bytes,
    *,
    headers: Mapping[str, str],
    required: Mapping[str, str],
    refused: Mapping[str, str | tuple[str, str]] | None = None,
) -> Iterator[SheetRow]:
    """Rows of a .csv or .xlsx file (its first sheet).

    A CSV may be UTF-8 (with or without BOM), GB18030 or UTF-16 with a BOM, separated by
    commas, semicolons or tabs: whichever the header row holds most of.

    Args:
        filename: the uploaded file's name; its extension says how to read it.
        content: the file's bytes.
        headers: header as written on the sheet -> field name; unknown columns are ignored.
        required: field -> the header to name when the column is missing.
        refused: header -> why a sheet with that column is refused (an ambiguous column), in
            English or as (English, Chinese).

    Raises:
        SheetError: the file is not a readable sheet or its header row is unusable.
    """
    return _rows(_guarded(_table(filename, content)), headers, required, refused or {})
