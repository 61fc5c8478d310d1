"""Reading the residents' sheets learning points keep (.xlsx or .csv, Chinese headers).

Pure: bytes in, rows out. Each row keeps its sheet row number (the header is row 1) so every
problem can be reported where the staff will look for it.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass

from openpyxl import load_workbook

# header as written on the sheet -> field; several spellings seen on real sheets
HEADERS: dict[str, str] = {
    "姓名": "name",
    "身份证号": "id_number",
    "身份证号码": "id_number",
    "公民身份号码": "id_number",
    "手机号": "phone",
    "手机号码": "phone",
    "联系电话": "phone",
    "村(社区)编码": "residence_unit",
    "村（社区）编码": "residence_unit",
    "学习点编码": "residence_unit",
    "居住地编码": "residence_unit",
    "人群类别": "groups",
    "角色": "roles",
    "同意版本": "consent_version",
    "同意时间": "consent_at",
    "同意方式": "consent_channel",
    "监护人": "guardian_name",
    "监护人同意时间": "guardian_consent_at",
}
REQUIRED = ("name", "id_number", "residence_unit")


class SheetError(ValueError):
    """The file cannot be read as a residents' sheet at all."""


@dataclass(frozen=True)
class SheetRow:
    """One data row: its row number on the sheet and its fields by our names."""

    number: int
    fields: dict[str, str]


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # an ID typed as a number loses nothing below 2**53
    return str(value).strip()


def _header_map(header: list[str]) -> dict[int, str]:
    mapping: dict[int, str] = {}
    for position, title in enumerate(header):
        field = HEADERS.get(title.strip().replace(" ", ""))
        if field is not None:
            mapping[position] = field
    missing = [f for f in REQUIRED if f not in mapping.values()]
    if missing:
        wanted = {"name": "姓名", "id_number": "身份证号", "residence_unit": "村(社区)编码"}
        names = "、".join(wanted[f] for f in missing)
        raise SheetError(f"the header row lacks required columns: {names}")
    return mapping


def _rows(table: Iterator[list[str]]) -> Iterator[SheetRow]:
    try:
        header = next(table)
    except StopIteration:
        raise SheetError("the sheet is empty") from None
    mapping = _header_map(header)
    for number, values in enumerate(table, start=2):
        if not any(v.strip() for v in values):
            continue  # blank lines between blocks are common
        yield SheetRow(
            number, {field: values[i] if i < len(values) else "" for i, field in mapping.items()}
        )


def read_sheet(filename: str, content: bytes) -> Iterator[SheetRow]:
    """Rows of a .csv (UTF-8, with or without BOM, or GB18030) or .xlsx file."""
    lower = filename.lower()
    if lower.endswith(".xlsx"):
        try:
            workbook = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
        except Exception as exc:  # openpyxl raises many kinds for a broken file
            raise SheetError(f"not a readable .xlsx file: {type(exc).__name__}") from None
        sheet = workbook.worksheets[0]
        table = ([_cell(v) for v in row] for row in sheet.iter_rows(values_only=True))
        return _rows(table)
    if lower.endswith(".csv"):
        for encoding in ("utf-8-sig", "gb18030"):
            try:
                text = content.decode(encoding)
                break
            except UnicodeDecodeError:
                continue
        else:
            raise SheetError("the CSV is neither UTF-8 nor GB18030")
        return _rows([c.strip() for c in row] for row in csv.reader(io.StringIO(text)))
    raise SheetError("only .xlsx and .csv files can be imported")
