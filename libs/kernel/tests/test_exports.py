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
