"""The credit audit as a workbook (学分审计工作簿): one sheet per link of the chain.

Pure: a sample in, :class:`kernel.exports.Sheet` tables out. Amounts are in credits (hundredths
divided by 100) and instants in Beijing time, as an auditor reads them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from decimal import Decimal

from credits.credit_audit.schemas import (
    CreditAuditSample,
    EntryChain,
    EvidenceDocument,
    RecordEvidence,
)
from credits.rules.engine import CHINA
from kernel.exports import Cell, Sheet

SOURCE_ZH = {
    "check_in": "扫码签到",
    "staff_entry": "工作人员录入",
    "partner": "合作平台",
    "xapi": "xAPI",
    "import": "导入",
    "certification": "学习成果认证",
    "conversion": "学分转换",
}
KIND_ZH = {
    "accrual": "学分积累",
    "adjustment": "调整",
    "reversal": "冲回",
    "certification": "认证学分",
    "conversion": "学分转换",
    "conversion_cancel": "撤销转换",
    "expiry": "学分过期",
    "points": "志愿积分",
}

SAMPLE_HEADERS = (
    "序号",
    "学习者ID",
    "期间账目数",
    "期间学分净额",
    "单位",
    "期间起",
    "期间止",
    "抽样种子",
    "样本总体数",
)
ENTRY_HEADERS = (
    "账目编号",
    "学习者ID",
    "类型",
    "记账时间",
    "学分变动",
    "规则版本ID",
    "冲正账目编号",
    "关联单据",
    "经办",
    "摘要",
)
RULE_HEADERS = (
    "账目编号",
    "权益键",
    "规则条款",
    "类别",
    "取得日期",
    "学分",
    "规则版本ID",
    "规则代码",
    "版本号",
    "规则名称",
    "生效起",
    "生效止",
    "发布人",
    "发布时间",
    "规则摘要(SHA-256)",
    "依据学习记录",
    "认证编号",
)
RECORD_HEADERS = (
    "账目编号",
    "权益键",
    "学习记录编号",
    "学习者ID",
    "活动ID",
    "活动名称",
    "活动类型",
    "主办单位路径",
    "类别",
    "方式",
    "开始时间",
    "结束时间",
    "分钟数",
    "学时",
    "状态",
    "状态变更人",
    "状态变更时间",
)
SOURCE_HEADERS = (
    "账目编号",
    "依据类型",
    "依据编号",
    "考勤ID",
    "场次ID",
    "场次开始",
    "场次结束",
    "地点",
    "签到时间",
    "签退时间",
    "录入人",
    "录入人单位",
    "录入时间",
    "录入方式",
    "签到表文件",
    "签到表SHA-256",
    "表中行号",
    "核验人",
    "核验时间",
    "合作平台",
    "平台记录号",
    "xAPI语句ID",
    "名称",
    "状态",
    "审核人",
    "审核时间",
    "审核意见",
    "证据文件",
    "证据SHA-256",
    "证据类型",
    "证据大小(字节)",
)


def credits(hundredths: int) -> Decimal:
    """Hundredths as credits, exactly (1.5, not 1.4999)."""
    return Decimal(hundredths) / 100


def _local(moment: datetime | None) -> datetime | None:
    return moment.astimezone(CHINA) if moment is not None else None


def _local_text(moment: str | None) -> Cell:
    # evidence keeps some times as ISO text (UTC): shown in Beijing time like every other
    try:
        parsed = datetime.fromisoformat(moment) if moment else None
    except ValueError:
        return moment
    if parsed is None or parsed.tzinfo is None:
        return moment
    return parsed.astimezone(CHINA)


def _hours(minutes: int) -> Decimal:
    return (Decimal(minutes) / 60).quantize(Decimal("0.01"))


def _entries(sample: CreditAuditSample) -> Iterator[EntryChain]:
    for learner in sample.learners:
        yield from learner.entries


def _record_rows(entry: EntryChain) -> Iterator[tuple[str, RecordEvidence]]:
    seen: set[int] = set()
    for line in entry.lines:
        for record in line.records:
            if record.id not in seen:
                seen.add(record.id)
                yield line.key, record


def _source_rows(entry: EntryChain) -> Iterator[Sequence[Cell]]:
    blank: list[Cell] = [None] * (len(SOURCE_HEADERS) - 3)
    for _, record in _record_rows(entry):
        s = record.source
        row: list[Cell] = [entry.id, SOURCE_ZH.get(s.kind, s.kind), record.id, *blank]
        row[3:22] = [
            str(s.attendance_id) if s.attendance_id else None,
            str(s.session_id) if s.session_id else None,
            _local(s.session_starts_at),
            _local(s.session_ends_at),
            s.session_place,
            _local(s.checked_in_at),
            _local(s.checked_out_at),
            s.entered_by,
            s.entered_by_unit,
            _local_text(s.entered_at),
            s.entered_via,
            s.sheet_file,
            s.sheet_sha256,
            s.sheet_row,
            s.verified_by,
            _local(s.verified_at),
            s.partner_client,
            s.partner_record_id,
            s.xapi_statement_id,
        ]
        yield row
    for line in entry.lines:
        c = line.certification
        if c is None:
            continue
        documents: list[EvidenceDocument | None] = [*c.documents] or [None]
        for doc in documents:
            row = [entry.id, SOURCE_ZH["certification"], str(c.id), *blank]
            row[22:27] = [
                f"{c.title}（{c.issuer}，{c.issued_on.isoformat()}）",
                c.status,
                c.reviewed_by,
                _local(c.reviewed_at),
                c.review_reason,
            ]
            if doc is not None:
                row[27:31] = [doc.original_name, doc.sha256, doc.media_type, doc.size_bytes]
            yield row
    v = entry.conversion
    if v is not None:
        row = [entry.id, SOURCE_ZH["conversion"], str(v.id), *blank]
        row[22:27] = [
            f"{v.target_name_zh or v.target_code} × {v.units}",
            v.status,
            v.decided_by,
            _local(v.decided_at),
            v.decision_reason if entry.kind == "conversion" else v.cancel_reason,
        ]
        yield row


def sheets(sample: CreditAuditSample) -> list[Sheet]:
    """样本, 账目, 规则, 学习记录, 来源: the sample and each link of every entry's chain."""
    period = (sample.period_from, sample.period_to)
    learners = [
        (
            n,
            str(s.learner_id),
            len(s.entries),
            credits(s.net_hundredths),
            sample.unit,
            *period,
            sample.seed,
            sample.population,
        )
        for n, s in enumerate(sample.learners, start=1)
    ]
    entries = [
        (
            e.id,
            str(e.learner_id) if e.learner_id else None,
            KIND_ZH.get(e.kind, e.kind),
            _local(e.created_at),
            credits(e.net_hundredths),
            e.rule_version_id,
            e.reverses_id,
            e.reference,
            e.created_by,
            e.memo,
        )
        for e in _entries(sample)
    ]
    rules = [
        (
            e.id,
            line.key,
            line.clause,
            line.category,
            line.earned_on,
            credits(line.amount_hundredths),
            v.id if v else None,
            v.code if v else None,
            v.version if v else None,
            v.title if v else None,
            v.effective_from if v else None,
            v.effective_to if v else None,
            v.published_by if v else None,
            _local(v.published_at) if v else None,
            v.digest if v else None,
            ", ".join(str(i) for i in line.record_ids) or None,
            str(line.certification.id) if line.certification else None,
        )
        for e in _entries(sample)
        for line in e.lines
        for v in (line.rule_version,)
    ]
    records = [
        (
            e.id,
            key,
            r.id,
            str(r.learner_id),
            str(r.activity_id),
            r.activity_title,
            r.activity_kind,
            r.host_unit_path,
            r.category,
            r.mode,
            _local(r.started_at),
            _local(r.ended_at),
            r.minutes,
            _hours(r.minutes),
            r.status,
            r.status_changed_by,
            _local(r.status_changed_at),
        )
        for e in _entries(sample)
        for key, r in _record_rows(e)
    ]
    sources = [row for e in _entries(sample) for row in _source_rows(e)]
    return [
        Sheet("样本", SAMPLE_HEADERS, learners),
        Sheet("账目", ENTRY_HEADERS, entries),
        Sheet("规则", RULE_HEADERS, rules),
        Sheet("学习记录", RECORD_HEADERS, records),
        Sheet("来源", SOURCE_HEADERS, sources),
    ]


def filename(sample: CreditAuditSample) -> str:
    """学分审计_<unit>_<from>_<to> (the extension is added by the export)."""
    return f"学分审计_{sample.unit}_{sample.period_from.isoformat()}_{sample.period_to.isoformat()}"
