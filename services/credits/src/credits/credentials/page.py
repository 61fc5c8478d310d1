"""The public verification page (核验页面): small, mobile-first, Chinese and English.

Pure: data in, HTML out. It shows what the document is, who issued it and when, whether it
stands, and the holder's masked name; nothing else about the holder. Every value is escaped.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from html import escape

CHINA = timezone(timedelta(hours=8))

VERDICTS = {
    "valid": (
        "有效",
        "Valid",
        "该证明真实有效。",
        "This document is authentic and stands.",
        "#1a7f37",
    ),
    "revoked": (
        "已撤销",
        "Revoked",
        "该证明已被签发机构撤销，不再有效。",
        "The issuer has revoked this document; it no longer stands.",
        "#b42318",
    ),
    "expired": (
        "已过期",
        "Expired",
        "该证明已超过有效期。",
        "This document's validity period has ended.",
        "#b54708",
    ),
    "unknown": (
        "未找到",
        "Not found",
        "没有该编号的证明，请核对编号。",
        "No document has this number; check the number and try again.",
        "#475467",
    ),
}

STYLE = """
*{box-sizing:border-box}body{margin:0;font-family:system-ui,-apple-system,"PingFang SC",
"Noto Sans CJK SC","WenQuanYi Micro Hei",sans-serif;background:#f2f4f7;color:#101828;
line-height:1.5}main{max-width:30rem;margin:0 auto;padding:1rem}
.card{background:#fff;border-radius:12px;padding:1.25rem;box-shadow:0 1px 3px #1018281a}
h1{font-size:1.1rem;margin:0 0 .75rem}.badge{display:inline-block;color:#fff;
border-radius:999px;padding:.35rem 1rem;font-size:1.25rem;font-weight:700}
p.note{margin:.5rem 0 1rem;font-size:.95rem}dl{margin:0;display:grid;
grid-template-columns:auto 1fr;gap:.4rem 1rem;font-size:.95rem}dt{color:#475467}
dd{margin:0;overflow-wrap:anywhere}.en{color:#475467;font-size:.85rem}
footer{margin-top:1rem;font-size:.8rem;color:#667085;text-align:center}
"""


@dataclass(frozen=True)
class PageFacts:
    """What the page states about one document."""

    certificate_number: str
    verdict: str  # valid, revoked, expired or unknown
    kind_name: str = ""
    title: str = ""
    issuer_name: str = ""
    holder_masked_name: str = ""
    issued_at: datetime | None = None
    expires_at: datetime | None = None
    revoked_at: datetime | None = None


def _day(moment: datetime | None) -> str:
    return moment.astimezone(CHINA).strftime("%Y-%m-%d") if moment else ""


def render(facts: PageFacts) -> str:
    """The whole page."""
    zh, en, note_zh, note_en, colour = VERDICTS[facts.verdict]
    rows = [("证明编号", "Certificate no.", facts.certificate_number)]
    if facts.verdict != "unknown":
        rows += [
            ("证明类型", "Document", facts.kind_name),
            ("内容", "Title", facts.title),
            ("持有人", "Holder", facts.holder_masked_name),
            ("签发机构", "Issuer", facts.issuer_name),
            ("签发日期", "Issued on", _day(facts.issued_at)),
        ]
        if facts.expires_at is not None:
            rows.append(("有效期至", "Valid until", _day(facts.expires_at)))
        if facts.revoked_at is not None:
            rows.append(("撤销日期", "Revoked on", _day(facts.revoked_at)))
    items = "".join(
        f'<dt>{escape(label_zh)}<br><span class="en">{escape(label_en)}</span></dt>'
        f"<dd>{escape(value)}</dd>"
        for label_zh, label_en, value in rows
    )
    return (
        "<!doctype html>"
        '<html lang="zh-CN"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        '<meta name="robots" content="noindex">'
        f"<title>证明核验 {escape(facts.certificate_number)} · Verification</title>"
        f"<style>{STYLE}</style></head><body><main>"
        '<div class="card">'
        "<h1>牧野区学分银行 证明核验<br>"
        '<span class="en">Muye Learning-Credit Bank · Document verification</span></h1>'
        f'<div class="badge" id="verdict" data-verdict="{escape(facts.verdict)}" '
        f'style="background:{colour}">{escape(zh)} {escape(en)}</div>'
        f'<p class="note">{escape(note_zh)}<br><span class="en">{escape(note_en)}</span></p>'
        f"<dl>{items}</dl></div>"
        "<footer>本页仅显示核验所需信息，持有人姓名已脱敏。<br>"
        "This page shows only what verification needs; the holder's name is masked.</footer>"
        "</main></body></html>"
    )
