"""The statistics reports as tables with Chinese headers, for .xlsx and .csv (pure)."""

from __future__ import annotations

from datetime import datetime

from credits.statistics.groups import GROUP_ZH
from credits.statistics.period import CHINA
from credits.statistics.schemas import StarCandidates, UnitStatistics
from kernel.exports import Cell, Sheet

MODE_ZH = {"offline": "线下", "online": "线上", "blended": "混合"}
REPORT_SHEETS = ("summary", "hours", "hours_by_group", "groups", "volunteers", "sessions")
FIGURE_ZH = {"hours_by_group": "按人群学时", "participants": "参与人数、参与率"}
MISSING = "暂缺"
KEPT_ZH = "保存的统计结果（该报表计算耗时较长，短时间内重复查询时使用）"


def _percent(rate: float | None) -> float | None:
    return None if rate is None else round(rate * 100, 2)


def _beijing(moment: datetime) -> datetime:
    """A time as Beijing wall clock to the second, as the sheets show when figures were read."""
    return moment.astimezone(CHINA).replace(tzinfo=None, microsecond=0)


def _credits(hundredths: int) -> float:
    return hundredths / 100


def report_sheets(report: UnitStatistics) -> dict[str, Sheet]:
    """The report's tables, by name: 汇总, 学时, 按人群学时, 人群, 志愿服务, 场次考勤. A
    figure the report lacks is a 暂缺 row with the reason, in its sheet and in 汇总."""
    unit = f"{report.unit.name or report.unit.key}（{report.unit.key}）"
    period = f"{report.period_from.isoformat()} 至 {report.period_to.isoformat()}"
    c, a = report.credits, report.activities
    summary: list[tuple[str, Cell, str]] = [
        ("单位", unit, ""),
        ("统计期间（北京时间）", period, ""),
        ("常住人口", report.population, report.population_source),
        (
            "参与人数",
            report.participants,
            "期间内有计入学习记录的本单位及下属单位常住居民（不论在何处学习）",
        ),
        ("参与率(%)", _percent(report.participation.rate), "参与人数 / 常住人口"),
        (
            "学习人数",
            report.learners,
            "期间内在本单位及下属单位举办的活动中有计入学习记录的学习者（不论住在何处）",
        ),
        ("实名注册人数", report.registrations.registered, "截至期末"),
        ("期间新注册人数", report.registrations.registered_in_period, ""),
        ("实名注册率(%)", _percent(report.real_name_registration.rate), "实名注册人数 / 常住人口"),
        ("学习总时长(小时)", round(report.total_minutes / 60, 2), ""),
        ("发放学分", _credits(c.issued_hundredths), "扣除更正"),
        ("其中：学时学分", _credits(c.issued_for_hours_hundredths), ""),
        ("其中：结业奖励学分", _credits(c.issued_for_completion_hundredths), ""),
        ("其中：成果认证学分", _credits(c.issued_for_certification_hundredths), ""),
        ("转换学分", _credits(c.converted_hundredths), f"{c.conversions} 笔"),
        ("撤销转换退回学分", _credits(c.conversion_cancelled_hundredths), ""),
        ("净转换学分", _credits(c.converted_net_hundredths), ""),
        ("举办活动数", a.activities, ""),
        ("举办场次数", a.sessions, ""),
        ("签到人次", a.attendance, ""),
        ("场均签到人次", a.attendance_per_session, ""),
        ("单场最多签到人次", a.max_attendance, ""),
        (
            "数据截至(北京时间)",
            _beijing(report.as_of),
            KEPT_ZH if report.kept else "实时统计",
        ),
        *((MISSING, FIGURE_ZH.get(m.figure, m.figure), m.reason_zh) for m in report.missing),
    ]
    by_group: list[tuple[Cell, ...]]
    if report.hours_by_group is None:
        why = next((m.reason_zh for m in report.missing if m.figure == "hours_by_group"), "")
        by_group = [(MISSING, why, None, None, None)]
    else:
        by_group = [
            (g.group, g.group_name, g.learners, g.hours, g.records) for g in report.hours_by_group
        ]
    return {
        "summary": Sheet("汇总", ("指标", "数值", "说明"), summary),
        "hours": Sheet(
            "学时",
            ("类别代码", "类别", "方式", "学时(小时)", "分钟数", "记录数", "学习者人数"),
            [
                (
                    h.category,
                    h.category_name,
                    MODE_ZH.get(h.mode, h.mode),
                    h.hours,
                    h.minutes,
                    h.records,
                    h.learners,
                )
                for h in report.hours_by_category_mode
            ],
        ),
        "hours_by_group": Sheet(
            "按人群学时", ("人群", "人群名称", "学习者数", "学时", "记录数"), by_group
        ),
        "groups": Sheet(
            "人群",
            ("人群代码", "人群", "实名注册人数"),
            [(g, GROUP_ZH.get(g, g), n) for g, n in report.registrations.by_group.items()],
        ),
        "volunteers": Sheet(
            "志愿服务",
            ("年度", "志愿者人数", "服务时长(小时)", "年度目标(小时)", "达标人数"),
            [
                (v.year, v.volunteers, v.hours, v.target_minutes / 60, v.volunteers_meeting_target)
                for v in report.volunteers
            ],
        ),
        "sessions": Sheet(
            "场次考勤",
            ("场次编号", "活动", "举办单位路径", "开始时间(北京时间)", "计划分钟数", "签到人次"),
            [
                (
                    str(s.session_id),
                    s.activity_title,
                    s.host_unit_path,
                    s.starts_at.astimezone(CHINA).replace(tzinfo=None),
                    s.planned_minutes,
                    s.attendance,
                )
                for s in report.sessions
            ],
        ),
    }


def stars_sheet(stars: StarCandidates) -> Sheet:
    """The candidates as one table; each row says when the ranking was read and whether it
    is a kept reading (a CSV has no summary sheet to say it once)."""
    as_of = _beijing(stars.as_of)
    reading = KEPT_ZH if stars.kept else "实时统计"
    return Sheet(
        f"百姓学习之星候选{stars.year}",
        (
            "镇/街道代码",
            "镇/街道",
            "名次",
            "学习者编号",
            "年度学分",
            "年度学时(小时)",
            "规则版本",
            "数据截至(北京时间)",
            "数据说明",
        ),
        [
            (
                c.town,
                c.town_name,
                c.rank,
                str(c.learner_id),
                c.credits_hundredths / 100,
                c.hours,
                stars.rule_version,
                as_of,
                reading,
            )
            for c in stars.candidates
        ],
    )
