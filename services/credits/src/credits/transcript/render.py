"""The PDF transcript (学习档案 / 学分证明): data in, bytes out.

Pure apart from reading the font file: no database, no HTTP. The text is set in a TrueType CJK
font that is embedded (subset) in the PDF, so the document reads the same on any machine;
reportlab's built-in STSong-Light is not used, as it is never embedded. The QR code opens the
public verification page. CPU-bound: callers run :func:`render` in a worker thread.
"""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

import segno
from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import Image, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

if TYPE_CHECKING:
    from credits.transcript.figures import Figures

FONT = "MuyeCJK"
CHINA = timezone(timedelta(hours=8))
MODE_NAMES = {"offline": "线下", "online": "线上", "blended": "混合"}
_registered: dict[str, Path] = {}
_lock = threading.Lock()


class FontMissing(RuntimeError):
    """The CJK font file is not there (``make setup`` installs it)."""


@dataclass(frozen=True)
class TranscriptData:
    """Everything one transcript states."""

    issuer_name: str
    certificate_number: str
    issued_at: datetime
    valid_until: datetime
    verify_url: str
    learner_name: str
    id_number_masked: str
    account_number: str
    figures: Figures


def register_font(path: Path) -> str:
    """Register the TrueType font at ``path`` (a .ttf, or the first face of a .ttc) once."""
    with _lock:
        if _registered.get(FONT) != path:
            if not path.is_file():
                raise FontMissing(f"the transcript font {path} is missing: run `make setup`")
            pdfmetrics.registerFont(TTFont(FONT, str(path), subfontIndex=0))
            _registered[FONT] = path
    return FONT


def hours(minutes: int) -> str:
    """Minutes as hours with one decimal."""
    return f"{minutes / 60:.1f}"


def credits(hundredths: int) -> str:
    """Hundredths as credits with two decimals."""
    return f"{hundredths / 100:.2f}"


def _day(moment: datetime) -> str:
    return moment.astimezone(CHINA).strftime("%Y-%m-%d")


def _text(value: str) -> str:
    """``value`` for a Paragraph, which reads markup: what was typed is printed as typed (a
    title such as ``R&D <b>`` or ``<img src=...>`` is text, never a tag or a file to read)."""
    return escape(value, quote=False)


def _styles() -> dict[str, ParagraphStyle]:
    base = ParagraphStyle("base", fontName=FONT, fontSize=9.5, leading=14, wordWrap="CJK")
    return {
        "base": base,
        "issuer": ParagraphStyle(
            "issuer", parent=base, fontSize=13, leading=18, alignment=TA_CENTER
        ),
        "title": ParagraphStyle("title", parent=base, fontSize=20, leading=28, alignment=TA_CENTER),
        "subtitle": ParagraphStyle(
            "subtitle",
            parent=base,
            fontSize=9,
            leading=12,
            alignment=TA_CENTER,
            textColor=colors.grey,
        ),
        "heading": ParagraphStyle(
            "heading", parent=base, fontSize=12.5, leading=18, spaceBefore=8, spaceAfter=4
        ),
        "note": ParagraphStyle(
            "note", parent=base, fontSize=8.5, leading=12, textColor=colors.grey
        ),
    }


def _table(rows: list[list[Any]], widths: list[float], *, header: bool = True) -> Table:
    table = Table(rows, colWidths=widths, repeatRows=1 if header else 0)
    commands: list[tuple[Any, ...]] = [
        ("FONTNAME", (0, 0), (-1, -1), FONT),
        ("FONTSIZE", (0, 0), (-1, -1), 9.5),
        ("GRID", (0, 0), (-1, -1), 0.4, colors.HexColor("#98a2b3")),
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ("TOPPADDING", (0, 0), (-1, -1), 3),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 3),
    ]
    if header:
        commands.append(("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#eaecf0")))
    table.setStyle(TableStyle(commands))
    return table


def _qr(url: str) -> Image:
    buffer = io.BytesIO()
    segno.make(url, error="m").save(buffer, kind="png", scale=8, border=4)
    buffer.seek(0)
    return Image(buffer, width=34 * mm, height=34 * mm)


def _story(data: TranscriptData) -> list[Any]:
    s = _styles()
    f = data.figures
    width = A4[0] - 36 * mm
    story: list[Any] = [
        Paragraph(_text(data.issuer_name), s["issuer"]),
        Paragraph("终身学习档案 · 学分证明", s["title"]),
        Paragraph("Lifelong-learning transcript and credit certificate", s["subtitle"]),
        Spacer(1, 6 * mm),
        _table(
            [
                ["证明编号", data.certificate_number, "签发日期", _day(data.issued_at)],
                # a long name wraps in its cell instead of running over the next one
                [
                    "姓名",
                    Paragraph(_text(data.learner_name), s["base"]),
                    "有效期至",
                    _day(data.valid_until),
                ],
                ["身份证号", data.id_number_masked, "学习账号", data.account_number],
            ],
            [0.16 * width, 0.34 * width, 0.16 * width, 0.34 * width],
            header=False,
        ),
        Paragraph("一、学时统计（按年度、类别和学习方式）", s["heading"]),
    ]
    if f.hours:
        rows: list[list[Any]] = [["年度", "类别", "学习方式", "学时（小时）"]]
        rows += [
            [
                str(line.year),
                line.category_name,
                MODE_NAMES.get(line.mode, line.mode),
                hours(line.minutes),
            ]
            for line in f.hours
        ]
        rows.append(["合计", "", "", hours(f.total_minutes)])
        story.append(_table(rows, [0.15 * width, 0.45 * width, 0.15 * width, 0.25 * width]))
        if f.pending_minutes:
            story.append(Paragraph(f"其中待审核学时 {hours(f.pending_minutes)} 小时。", s["note"]))
    else:
        story.append(Paragraph("暂无学习记录。", s["base"]))
    story.append(Paragraph("二、学分情况", s["heading"]))
    summary = [
        ["获得学分", "已转换学分", "已过期学分", "现有学分"],
        [credits(f.earned), credits(f.converted), credits(f.expired), credits(f.held)],
    ]
    story.append(_table(summary, [0.25 * width] * 4))
    if f.written_off:
        story.append(
            Paragraph(
                f"另有 {credits(f.written_off)} 学分在使用后因记录更正由学院核销。", s["note"]
            )
        )
    if f.earned_by_category:
        rows = [["类别", "获得学分"]]
        rows += [
            [f.category_names.get(c, c), credits(a)]
            for c, a in sorted(f.earned_by_category.items())
        ]
        story += [Spacer(1, 2 * mm), _table(rows, [0.6 * width, 0.4 * width])]
    story.append(Paragraph("三、学习成果认证", s["heading"]))
    if f.certifications:
        rows = [["成果名称", "颁发机构", "认定标准", "学分", "认定日期"]]
        rows += [
            [
                Paragraph(_text(c.title), s["base"]),
                Paragraph(_text(c.issuer), s["base"]),
                Paragraph(_text(c.standard_name), s["base"]),
                credits(c.hundredths),
                _day(c.approved_at),
            ]
            for c in f.certifications
        ]
        story.append(
            _table(rows, [0.28 * width, 0.24 * width, 0.22 * width, 0.1 * width, 0.16 * width])
        )
    else:
        story.append(Paragraph("无。", s["base"]))
    story.append(Paragraph("四、学分转换", s["heading"]))
    if f.conversions:
        rows = [["转换项目", "数量", "使用学分", "批准日期"]]
        rows += [
            [
                Paragraph(_text(c.target_name), s["base"]),
                f"{c.units} {c.unit_name}",
                credits(c.hundredths),
                _day(c.approved_at),
            ]
            for c in f.conversions
        ]
        story.append(_table(rows, [0.4 * width, 0.2 * width, 0.2 * width, 0.2 * width]))
    else:
        story.append(Paragraph("无。", s["base"]))
    if f.awards:
        story.append(Paragraph("五、结业奖励", s["heading"]))
        rows = [["课程", "奖励学分", "获得日期"]]
        rows += [
            [
                Paragraph(_text(a.activity_title), s["base"]),
                credits(a.hundredths),
                a.earned_on.isoformat(),
            ]
            for a in f.awards
        ]
        story.append(_table(rows, [0.6 * width, 0.2 * width, 0.2 * width]))
    statement = Paragraph(
        f"本证明由{_text(data.issuer_name)}依据牧野区学分银行的学习记录和学分账户出具。"
        "扫描二维码或访问下列地址，可核验本证明的真伪以及是否已被撤销：<br/>"
        f"{_text(data.verify_url)}<br/>"
        "Scan the code or open the address above to check that this document is authentic "
        "and still stands.",
        s["base"],
    )
    story += [
        Spacer(1, 6 * mm),
        Table(
            [[_qr(data.verify_url), statement]],
            colWidths=[40 * mm, width - 40 * mm],
            style=TableStyle(
                [("VALIGN", (0, 0), (-1, -1), "MIDDLE"), ("FONTNAME", (0, 0), (-1, -1), FONT)]
            ),
        ),
    ]
    return story


def render(data: TranscriptData, font_file: Path) -> bytes:
    """The transcript as PDF bytes, the font embedded."""
    register_font(font_file)
    buffer = io.BytesIO()
    document = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=18 * mm,
        rightMargin=18 * mm,
        topMargin=16 * mm,
        bottomMargin=18 * mm,
        title=f"学分证明 {data.certificate_number}",
        author=data.issuer_name,
        subject="终身学习档案 Lifelong-learning transcript",
        # the canvas starts in the CJK font, so no unembedded base-14 font is ever referenced
        initialFontName=FONT,
    )

    def footer(canvas: Canvas, doc: Any) -> None:
        canvas.saveState()
        canvas.setFont(FONT, 8)
        canvas.setFillColor(colors.grey)
        canvas.drawString(18 * mm, 10 * mm, f"证明编号 {data.certificate_number}")
        canvas.drawRightString(A4[0] - 18 * mm, 10 * mm, f"第 {doc.page} 页")
        canvas.restoreState()

    document.build(_story(data), onFirstPage=footer, onLaterPages=footer)
    return buffer.getvalue()
