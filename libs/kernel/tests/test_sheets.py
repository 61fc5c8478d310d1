"""The shared sheet reader: headers by several spellings, row numbers, encodings, refusals."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta, timezone

import pytest
from openpyxl import Workbook

from kernel.sheets import SheetError, cell_text, excel_mangled, moment_cell, read_sheet

HEADERS = {"学号": "learner", "学习账号": "learner", "签到时间": "checked_in_at", "姓名": "name"}
REQUIRED = {"learner": "学习账号"}


def _xlsx(rows: list[list[object]], merged: tuple[str, ...] = ()) -> bytes:
    book = Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    for cells in merged:
        sheet.merge_cells(cells)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def test_csv_rows_keep_their_sheet_row_numbers_and_skip_blank_lines() -> None:
    text = "学习账号,姓名,备注\n41071100000011,张三,x\n,,\n41071100000022,李四,\n"
    for encoding in ("utf-8-sig", "gb18030"):
        rows = list(read_sheet("a.CSV", text.encode(encoding), headers=HEADERS, required=REQUIRED))
        assert [(r.number, r.fields) for r in rows] == [
            (2, {"learner": "41071100000011", "name": "张三"}),
            (4, {"learner": "41071100000022", "name": "李四"}),
        ]


def test_xlsx_cells_come_as_text_and_full_width_headers_match() -> None:
    content = _xlsx(
        [
            ["学 号", "签到时间"],
            [41071100000011.0, datetime(2026, 11, 25, 9, 5)],
            ["41071100000022", time(9, 10)],
        ]
    )
    headers = {"学号": "learner", "签到时间(北京时间)": "checked_in_at"}
    rows = list(read_sheet("s.xlsx", content, headers=headers, required=REQUIRED))
    assert [r.fields["learner"] for r in rows] == ["41071100000011", "41071100000022"]
    assert rows[0].fields.get("checked_in_at") is None  # that header was not on this sheet
    folded = _xlsx([["学号", "签到时间（北京时间）"], ["x", datetime(2026, 11, 25, 9, 5)]])
    (row,) = read_sheet("s.xlsx", folded, headers=headers, required=REQUIRED)
    assert row.fields["checked_in_at"] == "2026-11-25 09:05:00"


@pytest.mark.parametrize(
    ("filename", "content", "message"),
    [
        ("a.csv", "姓名\n张三\n".encode(), "lacks required columns: 学习账号"),
        ("a.csv", b"", "the sheet is empty"),
        ("a.csv", b"\xff\xfe\x00\xd8", "neither UTF-8 nor GB18030"),
        ("a.xlsx", b"not a zip", "not a readable .xlsx file"),
        ("a.xls", b"", "only .xlsx and .csv"),
        ("a.csv", "学号,学时\n1,2\n".encode(), "学时 is ambiguous"),
    ],
)
def test_unusable_sheets_are_refused_with_a_reason(
    filename: str, content: bytes, message: str
) -> None:
    with pytest.raises(SheetError, match=message):
        list(
            read_sheet(
                filename,
                content,
                headers=HEADERS,
                required=REQUIRED,
                refused={"学时": "学时 is ambiguous"},
            )
        )


def _edited(content: bytes, edit: Callable[[bytes], bytes]) -> bytes:
    """The workbook with its first worksheet's XML passed through ``edit``."""
    source = zipfile.ZipFile(io.BytesIO(content))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as target:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                data = edit(data)
            target.writestr(item, data)
    return buffer.getvalue()


def _cut_off_worksheet(content: bytes) -> bytes:
    """The workbook with its first worksheet's XML cut in the middle of the rows."""
    return _edited(content, lambda data: data[: data.index(b'<row r="3"') + 12])


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("big.csv", ("学习账号\n" + "4" * 200_000 + "\n").encode()),
        (
            "cut.xlsx",
            _cut_off_worksheet(_xlsx([["学习账号"], ["41071100000011"], ["41071100000022"]])),
        ),
    ],
)
def test_a_file_that_breaks_off_while_its_rows_are_read_is_a_sheet_error(
    name: str, content: bytes
) -> None:
    rows = read_sheet(name, content, headers=HEADERS, required=REQUIRED)
    with pytest.raises(SheetError, match="breaks off while its rows are read"):
        list(rows)


def test_merged_cells_hold_their_top_left_value_in_every_row_they_cover() -> None:
    headers = {**HEADERS, "村(社区)编码": "unit", "同意时间": "consent_at"}
    content = _xlsx(
        [
            ["学习账号", "村(社区)编码", "同意时间", "姓名"],
            ["41071100000011", "410711100201", "2026-11-25", "张三"],
            ["41071100000022", None, None, "李四"],
            [None, None, None, None],  # a blank line inside the merged block stays blank
            ["41071100000033", None, None, None],
            ["41071100000044", "410711100202", "2026-11-26", None],
        ],
        merged=("B2:B5", "C2:D3", "A1:A1"),
    )
    rows = list(read_sheet("s.xlsx", content, headers=headers, required=REQUIRED))
    assert [(r.number, r.fields["unit"]) for r in rows] == [
        (2, "410711100201"),
        (3, "410711100201"),
        (5, "410711100201"),
        (6, "410711100202"),
    ]
    # a range over two columns gives both its value; below it, the cells are the row's own
    assert [(r.fields["consent_at"], r.fields["name"]) for r in rows] == [
        ("2026-11-25", "2026-11-25"),
        ("2026-11-25", "2026-11-25"),
        ("", ""),
        ("2026-11-26", ""),
    ]


def test_a_merged_header_is_not_copied_into_the_rows_and_a_crafted_range_is_clipped() -> None:
    plain = _xlsx(
        [
            ["学习账号", "姓名", None],
            ["41071100000011", None, None],
            ["41071100000022", None, None],
        ],
        merged=("B1:C1",),  # a header over two columns
    )

    # and a range far beyond the sheet, as a crafted file could hold (openpyxl would not
    # write it: it makes every cell of a range it merges)
    def crafted(data: bytes) -> bytes:
        header_merge = b'<mergeCell ref="B1:C1" />'  # as openpyxl writes it
        assert header_merge in data
        return data.replace(header_merge, header_merge + b'<mergeCell ref="A3:XFD1048576" />')

    content = _edited(plain, crafted)
    rows = list(read_sheet("s.xlsx", content, headers=HEADERS, required=REQUIRED))
    assert [(r.number, r.fields) for r in rows] == [
        (2, {"learner": "41071100000011", "name": ""}),
        (3, {"learner": "41071100000022", "name": "41071100000022"}),
    ]


@pytest.mark.parametrize(
    ("merges", "message"),
    [
        (
            '<mergeCells count="400">' + '<mergeCell ref="A2:B3"/>' * 400 + "</mergeCells>",
            "merged cells overlap",
        ),
        # openpyxl reads the ranges too, while it gives the rows
        ('<mergeCells count="1"><mergeCell ref="not a range"/></mergeCells>', "breaks off"),
    ],
)
def test_overlapping_or_unreadable_merged_ranges_are_a_sheet_error(
    merges: str, message: str
) -> None:
    main = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    plain = _xlsx([["学习账号", "姓名"], ["41071100000011", "张三"], ["41071100000022", "李四"]])
    merges = merges.replace("<mergeCells", f'<mergeCells xmlns="{main}"')
    content = _edited(
        plain, lambda data: data.replace(b"</sheetData>", b"</sheetData>" + merges.encode(), 1)
    )
    with pytest.raises(SheetError, match=message):
        list(read_sheet("s.xlsx", content, headers=HEADERS, required=REQUIRED))


def test_times_are_read_as_sheets_kept_in_china_write_them() -> None:
    beijing = timezone(timedelta(hours=8))
    for text, meant in (
        ("2026/10/1 9:30", datetime(2026, 10, 1, 9, 30, tzinfo=beijing)),
        ("2026年10月2日", datetime(2026, 10, 2, tzinfo=beijing)),
        ("2026年10月2日 8：05", datetime(2026, 10, 2, 8, 5, tzinfo=beijing)),
        ("2026-10-03T08:00:00Z", datetime(2026, 10, 3, 8, tzinfo=UTC)),
        ("2026-10-03 08:00:00.250000", datetime(2026, 10, 3, 8, 0, 0, 250000, tzinfo=beijing)),
    ):
        assert moment_cell(text) == meant, text
    assert moment_cell("  ") is None
    assert moment_cell("9:10", day=date(2026, 10, 4)) == datetime(
        2026, 10, 4, 9, 10, tzinfo=beijing
    )
    for unreadable in ("9:10", "十月一日", "2026-13-01"):  # a bare time needs a day
        with pytest.raises(ValueError):
            moment_cell(unreadable)


def test_a_long_number_excel_kept_fifteen_digits_of_reads_as_excel_shows_it() -> None:
    assert cell_text(410711199001011234.0) == "4.10711199001011E+17"
    assert excel_mangled(cell_text(410711199001011234.0))
    assert excel_mangled("4.10711E+17") and not excel_mangled("41071119900101123X")
    assert cell_text(41071100000012.0) == "41071100000012"  # 14 digits: exact
    assert not excel_mangled(cell_text(41071100000012.0))


def test_csv_separators_and_utf16_are_read_and_two_columns_for_one_field_refused() -> None:
    rows = [["学习账号", "姓名"], ["41071100000012", "张三"]]
    for delimiter, encoding in ((";", "utf-8"), ("\t", "utf-16"), (",", "gb18030")):
        text = "\r\n".join(delimiter.join(row) for row in rows)
        (row,) = read_sheet("a.csv", text.encode(encoding), headers=HEADERS, required=REQUIRED)
        assert row.fields == {"learner": "41071100000012", "name": "张三"}, delimiter
    with pytest.raises(SheetError) as twice:
        list(
            read_sheet(
                "a.csv",
                "学习账号,姓名,学号\n1,张三,2\n".encode(),
                headers=HEADERS,
                required=REQUIRED,
            )
        )
    assert "学习账号 and 学号" in str(twice.value) and twice.value.zh and "学号" in twice.value.zh
    with pytest.raises(SheetError) as titled:
        list(
            read_sheet(
                "a.csv",
                "签到表\n\n学习账号,姓名\n1,张三\n".encode(),
                headers=HEADERS,
                required=REQUIRED,
            )
        )
    assert "row 3" in str(titled.value) and "第3行" in (titled.value.zh or "")
