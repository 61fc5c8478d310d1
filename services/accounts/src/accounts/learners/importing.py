"""Bulk import of residents from a sheet: a dry run that reports every bad row, then a commit
that creates or updates (the same ID number updates, never duplicates) and is safe to repeat.

Set-based: units and existing accounts are looked up in bulk, new accounts take a block of
account numbers in one statement and are inserted in bulk.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import insert, text, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from accounts import accountno, idnumber
from accounts.audit import service as audit
from accounts.learners.models import LearningAccount
from accounts.learners.service import GUARDIAN_AGE, ID_REASONS_ZH, advance_numbers
from accounts.learners.sheet import SheetRow
from accounts.masking import InvalidPhone, mask_mobile, normalise_mobile
from accounts.network.models import Unit
from accounts.pii import PiiCipher
from kernel.requestid import current_request_id
from kernel.sheets import excel_mangled, moment_cell
from kernel.text import control_character
from kernel.tokens import Principal

GROUPS_ZH = {
    "老年人": "elderly",
    "青少年": "youth",
    "残疾人": "disabled",
    "失业人员": "unemployed",
    "进城务工人员": "migrant_workers",
    "农村居民": "rural_residents",
    "退役士兵": "veterans",
    "留守妇女儿童": "left_behind",
}
ROLES_ZH = {"志愿者": "volunteer", "兼职教师": "part_time_teacher"}
CHANNELS_ZH = {"纸质": "paper", "书面": "paper", "APP": "app", "app": "app", "": "import"}
SEPARATORS = str.maketrans(dict.fromkeys("、，;；/ ", ","))
CHUNK = 500
ANALYZE_AFTER = 1000


@dataclass(frozen=True)
class RowProblem:
    """Why one row was refused."""

    row: int
    field: str
    reason: str
    reason_zh: str


@dataclass
class ImportReport:
    """What an import did (or, in a dry run, would do)."""

    dry_run: bool
    total: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    problems: list[RowProblem] = field(default_factory=list)


@dataclass
class _Candidate:
    row: int
    values: dict[str, Any]
    id_number: str
    phone: str | None
    unit_key: str
    #: the sheet's cells for this row (fields it has no column for are absent)
    cells: dict[str, str] = field(default_factory=dict)


def _split(value: str, table: dict[str, str]) -> tuple[list[str], list[str]]:
    known: list[str] = []
    unknown: list[str] = []
    for part in value.translate(SEPARATORS).split(","):
        if part:
            (known if part in table else unknown).append(table.get(part, part))
    return sorted(set(known)), unknown


def _moment(value: str) -> datetime | None | str:
    """A consent time as Excel and people write it (Beijing time unless it says otherwise):
    the moment in UTC (SQLite keeps a time's digits, not its offset), None for an empty
    cell, or the text when it cannot be read."""
    try:
        moment = moment_cell(value)
    except ValueError:
        return value.strip()
    return None if moment is None else moment.astimezone(UTC)


def check_row(row: SheetRow, *, today: date) -> tuple[_Candidate | None, list[RowProblem]]:
    """The row's own checks (no database): ID number, phone, consent, guardian, groups."""
    f = row.fields
    problems: list[RowProblem] = []

    def problem(field_name: str, reason: str, reason_zh: str) -> None:
        problems.append(RowProblem(row.number, field_name, reason, reason_zh))

    name = f.get("name", "").strip()
    if not name or len(name) > 60:
        problem("name", "a name of 1-60 characters is required", "姓名必填，且不超过60个字")
    elif control_character(name) is not None:
        problem("name", "the name holds a control character", "姓名含有不可见的控制字符")
    citizen = None
    if excel_mangled(f.get("id_number", "")):
        problem(
            "id_number",
            "Excel stored the ID number as a number and lost its last digits: set the column's "
            "format to Text and type the numbers again",
            "身份证号码被 Excel 当成数字保存，后几位已丢失：请把该列设为“文本”格式后重新填写",
        )
    else:
        try:
            citizen = idnumber.parse(f.get("id_number", ""), today=today)
        except idnumber.InvalidIdNumber as exc:
            problem("id_number", exc.reason, ID_REASONS_ZH.get(exc.reason, "身份证号码无效"))
    phone = None
    if f.get("phone", "").strip():
        try:
            phone = normalise_mobile(f["phone"])
        except InvalidPhone:
            problem("phone", "not a mainland mobile number", "手机号码格式错误")
    consent_at = _moment(f.get("consent_at", ""))
    version = f.get("consent_version", "").strip()
    if isinstance(consent_at, str):
        problem(
            "consent",
            f"the consent time {consent_at!r} cannot be read: write it as 2026-10-01 09:30",
            "同意时间无法识别，请按“2026-10-01 09:30”或“2026/10/1 9:30”的格式填写",
        )
    elif not version or consent_at is None:
        problem(
            "consent",
            "missing consent (version and time)",
            "缺少个人信息处理同意记录（版本和时间）",
        )
    elif len(version) > 20 or control_character(version) is not None:
        problem(
            "consent",
            "the consent version is at most 20 printable characters",
            "同意版本不超过20个字符，且不含控制字符",
        )
    channel = CHANNELS_ZH.get(f.get("consent_channel", "").strip())
    if channel is None:
        problem(
            "consent_channel", "consent channel must be 纸质 or APP", "同意方式应为“纸质”或“APP”"
        )
    groups, unknown_groups = _split(f.get("groups", ""), GROUPS_ZH)
    if unknown_groups:
        problem(
            "groups",
            f"unknown groups: {', '.join(unknown_groups)}",
            "人群类别无法识别：" + "、".join(unknown_groups),
        )
    roles, unknown_roles = _split(f.get("roles", ""), ROLES_ZH)
    if unknown_roles:
        problem(
            "roles",
            f"unknown roles: {', '.join(unknown_roles)}",
            "角色无法识别：" + "、".join(unknown_roles),
        )
    guardian_name = f.get("guardian_name", "").strip() or None
    if guardian_name is not None and (
        len(guardian_name) > 60 or control_character(guardian_name) is not None
    ):
        problem(
            "guardian",
            "the guardian's name is at most 60 printable characters",
            "监护人姓名不超过60个字，且不含控制字符",
        )
    guardian_at = _moment(f.get("guardian_consent_at", "")) if guardian_name else None
    if isinstance(guardian_at, str):
        problem(
            "guardian",
            f"the guardian's consent time {guardian_at!r} cannot be read: write it as "
            "2026-10-01 09:30",
            "监护人同意时间无法识别，请按“2026-10-01 09:30”的格式填写",
        )
    elif citizen is not None and citizen.age_on(today) < GUARDIAN_AGE and guardian_at is None:
        problem(
            "guardian",
            "under 14: a guardian and the guardian's consent time are required",
            "未满14周岁，需填写监护人及其同意时间",
        )
    if problems or citizen is None:
        return None, problems
    values = {
        "name": name,
        "birth_date": citizen.birth_date,
        "gender": citizen.gender,
        "groups": groups,
        "roles": roles,
        "consent_version": version,
        "consent_at": consent_at,
        "consent_channel": channel,
        "guardian_name": guardian_name,
        "guardian_consent_at": guardian_at,
    }
    return (
        _Candidate(row.number, values, citizen.number, phone, f["residence_unit"].strip(), f),
        [],
    )


async def _leaf_units(
    session: AsyncSession, covering_path: str
) -> tuple[dict[str, Unit], dict[str, tuple[str, str]]]:
    """The active villages and communities under the covering unit (where residents live),
    and why each other unit under it is not one: (English, Chinese)."""
    units = (
        (
            await session.execute(
                select(Unit).where(col(Unit.path).startswith(covering_path, autoescape=True))
            )
        )
        .scalars()
        .all()
    )
    parents = {u.parent_id for u in units}
    leaves: dict[str, Unit] = {}
    refused: dict[str, tuple[str, str]] = {}
    for unit in units:
        if unit.id in parents:
            refused[unit.key] = (
                f"{unit.key} is a {unit.level_code} with units under it: give the village or"
                " community the resident lives in",
                f"{unit.key} 是上级单位（{unit.name}），请填写居民所在村（社区）的编码",
            )
        elif unit.status != "active":
            refused[unit.key] = (
                f"the village or community {unit.key} is {unit.status}: give the one it became",
                f"村（社区）{unit.key}（{unit.name}）已停用，请填写现在的村（社区）编码",
            )
        else:
            leaves[unit.key] = unit
    return leaves, refused


_COMPARED = ("name", "groups", "roles", "consent_version", "residence_unit_id", "phone_index")


async def _existing(session: AsyncSession, indexes: list[str]) -> dict[str, Any]:
    """Current values of the accounts with these blind indexes.

    Plain rows, not ORM objects: tens of thousands of entities in one session cost minutes.
    """
    names = ("id", "id_number_index", "residence_path", *_COMPARED)
    columns = [col(getattr(LearningAccount, name)) for name in names]
    found: dict[str, Any] = {}
    for start in range(0, len(indexes), CHUNK):
        chunk = indexes[start : start + CHUNK]
        rows = await session.execute(
            select(*columns).where(col(LearningAccount.id_number_index).in_(chunk))
        )
        found.update({row.id_number_index: row for row in rows})
    return found


async def _hold_numbers(session: AsyncSession, district_code: str) -> None:
    """Lock the district's account-number row to the commit, before looking for accounts.

    Every opening of an account takes this row (a registration to number it, an import to
    reserve its block), so an import holding it first sees every account committed before it
    and none appears until it commits: two imports of one sheet at once, or an import and a
    registration of one of its residents, take turns instead of both inserting (on PostgreSQL
    the second insert was a unique violation, a 500 that lost the whole sheet).
    """
    await advance_numbers(session, district_code, 0)


async def _reserve_numbers(session: AsyncSession, district_code: str, count: int) -> list[str]:
    if count == 0:
        return []
    last = await advance_numbers(session, district_code, count)
    return [accountno.make(district_code, n) for n in range(last - count + 1, last + 1)]


def _audit_matches(
    session: AsyncSession,
    actor: Principal | str,
    report: ImportReport,
    matches: list[tuple[uuid.UUID, str]],
    now: datetime,
) -> None:
    """Stage an entry for every registered account a sheet's ID number matched, and for a dry
    run one entry with the counts.

    "Unchanged" or "registered outside your unit" confirms an ID number exists, so a dry run
    with guessed numbers is a way to find a resident's real one (a masked number, birth date
    and gender leave about nine candidates). Accounts an import really updates are named by
    their update entries already; every other match is named here. The caller commits these
    even for a dry run.
    """
    request_id = current_request_id()
    mode = "dry run" if report.dry_run else "import"
    entries = [
        {
            "at": now,
            **audit.actor_fields(actor),
            "action": "learning_account.import.match",
            "target_type": "learning_account",
            "target_id": str(account_id),
            "reason": f"{mode}: a row's ID number is registered",
            "request_id": request_id,
            "outcome": outcome,
        }
        for account_id, outcome in matches
    ]
    if report.dry_run:
        counts = {
            "total": report.total,
            "matched": len(matches),
            "created": report.created,
            "updated": report.updated,
            "unchanged": report.unchanged,
            "rejected": report.rejected,
        }
        entries.insert(
            0,
            {
                "at": now,
                **audit.actor_fields(actor),
                "action": "learning_account.import.dry_run",
                "target_type": "import",
                "target_id": str(uuid.uuid4()),
                "after_digest": audit.digest(counts),
                "reason": f"dry run: {len(matches)} of {report.total} rows matched registered "
                "accounts",
                "request_id": request_id,
                "outcome": "ok",
            },
        )
    if entries:
        audit.record_many(session, entries)


async def import_residents(
    *,
    session: AsyncSession,
    cipher: PiiCipher,
    rows: Iterable[SheetRow],
    covering_path: str,
    actor: Principal | str,
    district_code: str,
    dry_run: bool,
    today: date | None = None,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Check every row, then (unless ``dry_run``) create or update the good ones."""
    day = today or date.today()
    report = ImportReport(dry_run=dry_run)
    candidates: list[_Candidate] = []
    first_row_of: dict[str, int] = {}
    for row in rows:
        report.total += 1
        candidate, problems = check_row(row, today=day)
        if candidate is not None and candidate.id_number in first_row_of:
            problems = [
                RowProblem(
                    row.number,
                    "id_number",
                    f"duplicate of row {first_row_of[candidate.id_number]}",
                    f"与第 {first_row_of[candidate.id_number]} 行身份证号码重复",
                )
            ]
            candidate = None
        if candidate is not None:
            first_row_of[candidate.id_number] = row.number
            candidates.append(candidate)
        report.problems.extend(problems)
        if progress is not None and report.total % 1000 == 0:
            progress(1000)
    if progress is not None:
        progress(report.total % 1000)

    units, not_villages = await _leaf_units(session, covering_path)
    located: list[tuple[_Candidate, Unit, str]] = []
    for candidate in candidates:
        unit = units.get(candidate.unit_key)
        if unit is None:
            reason, reason_zh = not_villages.get(
                candidate.unit_key,
                (
                    f"unknown village or community {candidate.unit_key!r} in your unit",
                    f"村（社区）编码 {candidate.unit_key} 不存在或不在您的管理范围内",
                ),
            )
            report.problems.append(RowProblem(candidate.row, "residence_unit", reason, reason_zh))
            continue
        located.append(
            (candidate, unit, cipher.blind_index(candidate.id_number, field="id_number"))
        )
    if not dry_run:
        await _hold_numbers(session, district_code)
    existing = await _existing(session, [index for _, _, index in located])

    creates: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    # (account id, what the row would do to it): each is an answer that the number is registered
    matches: list[tuple[uuid.UUID, str]] = []
    now = datetime.now(UTC)
    for candidate, unit, index in located:
        values = dict(candidate.values)
        values.update(residence_unit_id=unit.id, residence_path=unit.path)
        if candidate.phone:
            values["phone_index"] = cipher.blind_index(candidate.phone, field="phone")
        current = existing.get(index)
        if current is None:
            values.update(
                id=uuid.uuid4(),
                id_number_index=index,
                id_number_masked=idnumber.mask(candidate.id_number),
                id_number_cipher=cipher.encrypt(candidate.id_number, field="id_number"),
                phone_cipher=cipher.encrypt(candidate.phone, field="phone")
                if candidate.phone
                else None,
                phone_masked=mask_mobile(candidate.phone) if candidate.phone else None,
                phone_index=values.get("phone_index"),
                status="active",
                failed_sign_ins=0,
                created_at=now,
                updated_at=now,
            )
            creates.append(values)
            continue
        if not current.residence_path.startswith(covering_path):
            matches.append((current.id, "outside_unit"))
            report.problems.append(
                RowProblem(
                    candidate.row,
                    "id_number",
                    "registered in a unit outside yours",
                    "该居民已在其他单位登记",
                )
            )
            continue
        # a sheet says nothing about what it has no column for, or leaves blank (as a blank
        # phone keeps the phone): groups and roles are only changed by a cell that gives them
        given = {k for k in ("groups", "roles") if candidate.cells.get(k, "").strip()}
        changed = {
            k: values[k]
            for k in _COMPARED
            if k in values
            and (k not in ("groups", "roles") or k in given)
            and getattr(current, k) != values[k]
        }
        if not changed:
            matches.append((current.id, "unchanged"))
            report.unchanged += 1
            continue
        if dry_run:
            matches.append((current.id, "would_update"))
        if "phone_index" in changed:
            assert candidate.phone is not None
            changed["phone_cipher"] = cipher.encrypt(candidate.phone, field="phone")
            changed["phone_masked"] = mask_mobile(candidate.phone)
        if "residence_unit_id" in changed:
            changed["residence_path"] = unit.path
        if "consent_version" in changed:
            # consent to the new version was given when and how the sheet says, not before
            changed["consent_at"] = values["consent_at"]
            changed["consent_channel"] = values["consent_channel"]
        updates.append({"id": current.id, **changed, "updated_at": now})

    report.created, report.updated = len(creates), len(updates)
    report.rejected = len({p.row for p in report.problems})
    report.problems.sort(key=lambda p: p.row)
    _audit_matches(session, actor, report, matches, now)
    if dry_run:
        return report
    for values, number in zip(
        creates, await _reserve_numbers(session, district_code, len(creates)), strict=True
    ):
        values["account_number"] = number
    for start in range(0, len(creates), CHUNK):
        await session.execute(insert(LearningAccount), creates[start : start + CHUNK])
    for start in range(0, len(updates), CHUNK):
        await session.execute(update(LearningAccount), updates[start : start + CHUNK])
    if len(creates) >= ANALYZE_AFTER and session.get_bind().dialect.name == "postgresql":
        # fresh statistics, and through them fresh plans: a statement prepared while the table
        # was small keeps its sequential-scan plan otherwise (measured: 0.5 s per lookup at 25k)
        await session.execute(text("ANALYZE learning_account"))
    audit.record(
        session,
        actor=actor,
        action="learning_account.import",
        target_type="import",
        target_id=str(uuid.uuid4()),
        after={"created": report.created, "updated": report.updated, "rejected": report.rejected},
    )
    entries = [
        {
            "at": now,
            **audit.actor_fields(actor),
            "action": action,
            "target_type": "learning_account",
            "target_id": str(values["id"]),
            "after_digest": audit.digest(
                {
                    k: str(v)
                    for k, v in values.items()
                    if k not in ("id_number_cipher", "phone_cipher")
                }
            ),
            "reason": "bulk import",
            "request_id": current_request_id(),
            "outcome": "ok",
        }
        for action, batch in (
            ("learning_account.create", creates),
            ("learning_account.update", updates),
        )
        for values in batch
    ]
    audit.record_many(session, entries)
    return report
