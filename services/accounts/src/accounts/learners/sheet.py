"""Reading the residents' sheets learning points keep (.xlsx or .csv, Chinese headers).

Pure: bytes in, rows out, through the kernel's sheet reader. Each row keeps its sheet row
number (the header is row 1) so every problem can be reported where the staff will look for it.
"""

from __future__ import annotations

from collections.abc import Iterator

from kernel.sheets import SheetError, SheetRow
from kernel.sheets import read_sheet as read_rows

__all__ = ["HEADERS", "REQUIRED", "SheetError", "SheetRow", "read_sheet"]

# header as written on the sheet -> field; several spellings seen on real sheets (full-width
# brackets are read as ASCII ones)
HEADERS: dict[str, str] = {
    "姓名": "name",
    "身份证号": "id_number",
    "身份证号码": "id_number",
    "公民身份号码": "id_number",
    "手机号": "phone",
    "手机号码": "phone",
    "联系电话": "phone",
    "村(社区)编码": "residence_unit",
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
# required field -> the header named when it is missing
REQUIRED = {"name": "姓名", "id_number": "身份证号", "residence_unit": "村(社区)编码"}


def read_sheet(filename: str, content: bytes) -> Iterator[SheetRow]:
    """Rows of a .csv (UTF-8, with or without BOM, or GB18030) or .xlsx file."""
    return read_rows(filename, content, headers=HEADERS, required=REQUIRED)
