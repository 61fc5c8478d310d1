import csv
import io
from datetime import UTC, date, datetime
from decimal import Decimal
from urllib.parse import unquote

import pytest
from openpyxl import load_workbook

from kernel.exports import Sheet, csv_bytes, export_response, xlsx_bytes

HEADERS = ["单位", "学时", "日期", "时间"]
ROWS = [
    ["牧野镇", Decimal("12.5"), date(2026, 3, 1), datetime(2026, 3, 1, 8, 30, tzinfo=UTC)],
    ["王村镇", Decimal("3"), None, None],
]


def test_workbook_reads_back_with_chinese_headers_and_typed_cells() -> None:
    data = xlsx_bytes([Sheet("参与率", HEADERS, ROWS), Sheet("x" * 40, ["a"], [[1]])])
    book = load_workbook(io.BytesIO(data))
    assert book.sheetnames == ["参与率", "x" * 31]
    rows = list(book["参与率"].iter_rows(values_only=True))
    assert rows[0] == tuple(HEADERS)
    assert rows[1] == ("牧野镇", 12.5, datetime(2026, 3, 1), datetime(2026, 3, 1, 8, 30))
    assert rows[2] == ("王村镇", 3, None, None)
    assert book["参与率"].freeze_panes == "A2"


def test_csv_has_a_byte_order_mark_and_reads_back() -> None:
    data = csv_bytes(Sheet("t", HEADERS, ROWS))
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows[0] == HEADERS
    assert rows[1][:2] == ["牧野镇", "12.5"]
    assert rows[2] == ["王村镇", "3", "", ""]


def test_download_names_the_file_in_chinese_and_in_ascii() -> None:
    response = export_response("csv", "参与率-2026", [Sheet("t", ["a"], [[1]])])
    disposition = response.headers["content-disposition"]
    assert 'filename="___-2026.csv"' in disposition
    assert unquote(disposition.split("filename*=UTF-8''")[1]) == "参与率-2026.csv"
    assert response.media_type.startswith("text/csv")


def test_csv_of_several_tables_is_refused_rather_than_cut() -> None:
    with pytest.raises(ValueError, match="exactly one table"):
        export_response("csv", "x", [Sheet("a", ["a"], []), Sheet("b", ["b"], [])])
    with pytest.raises(ValueError, match="at least one sheet"):
        xlsx_bytes([])


# names and free text typed by residents and staff (activity titles, certification titles,
# uploaded file names, reasons) must reach the file as text, never as a formula
FORMULAS = ['=HYPERLINK("http://x","点我")', "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)"]


def test_text_that_looks_like_a_formula_stays_text_in_a_workbook() -> None:
    data = xlsx_bytes([Sheet("t", ["名称"], [[text] for text in FORMULAS])])
    sheet = load_workbook(io.BytesIO(data))["t"]
    cells = [row[0] for row in sheet.iter_rows(min_row=2)]
    assert [c.value for c in cells] == FORMULAS
    assert {c.data_type for c in cells} == {"s"}


def test_text_that_looks_like_a_formula_is_quoted_in_csv() -> None:
    data = csv_bytes(Sheet("t", ["名称", "学时"], [[text, -2] for text in FORMULAS]))
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert [r[0] for r in rows[1:]] == ["'" + text for text in FORMULAS]
    assert {r[1] for r in rows[1:]} == {"-2"}  # numbers are numbers, negative or not
