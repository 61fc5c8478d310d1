"""Opening, reading and changing learning accounts; personal data sealed on the way in."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import exists, insert, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from accounts import accountno, idnumber
from accounts.audit import service as audit
from accounts.learners.models import AccountNumberSequence, LearningAccount
from accounts.learners.schemas import AccountCreate, AccountPublic, AccountUpdate
from accounts.masking import InvalidPhone, mask_mobile, normalise_mobile
from accounts.network.models import Unit
from accounts.network.repository import UnitRepository
from accounts.pii import PiiCipher
from accounts.staff.passwords import hash_password
from kernel.problems import PROBLEMS, Conflict, DomainError, NotFound
from kernel.tokens import Principal

GUARDIAN_AGE = 14  # PIPL art. 31: under 14 needs a guardian's consent


class InvalidIdNumberProblem(DomainError):
    """The citizen ID number fails GB 11643."""

    type = PROBLEMS + "invalid-id-number"
    status = 422
    title = "Invalid ID number"


class InvalidPhoneProblem(DomainError):
    """Not a mainland mobile number."""

    type = PROBLEMS + "invalid-phone"
    status = 422
    title = "Invalid phone number"


class DuplicateAccount(Conflict):
    """An account with this ID number exists already."""

    type = PROBLEMS + "duplicate-account"
    title = "Duplicate account"


class UnknownResidence(DomainError):
    """The residence is not a learning point of the network."""

    type = PROBLEMS + "unknown-residence-unit"
    status = 422
    title = "Unknown residence unit"


class GuardianConsentRequired(DomainError):
    """A resident under 14 needs a guardian's consent."""

    type = PROBLEMS + "guardian-consent-required"
    status = 422
    title = "Guardian consent required"


class AccountNotFound(NotFound):
    """No account, or none the caller may see (the two are not told apart)."""

    type = PROBLEMS + "account-not-found"
    title = "Learning account not found"


ID_REASONS_ZH = {
    "an ID number has 18 characters": "身份证号码应为18位",
    "17 digits then a digit or X": "身份证号码应为17位数字加1位数字或X",
    "the birth date is not a real date": "身份证号码中的出生日期无效",
    "the birth date is out of range": "身份证号码中的出生日期超出范围",
    "the check character does not match": "身份证号码校验位错误",
}


def parse_id_number(value: str, *, today: date | None = None) -> idnumber.CitizenId:
    """Parse or raise the problem a resident can act on."""
    try:
        return idnumber.parse(value, today=today)
    except idnumber.InvalidIdNumber as exc:
        raise InvalidIdNumberProblem(
            f"The ID number is not valid: {exc.reason}.",
            detail_zh=ID_REASONS_ZH.get(exc.reason, "身份证号码无效"),
            reason=exc.reason,
        ) from None


def parse_phone(value: str) -> str:
    """Normalise a mobile number or raise the problem."""
    try:
        return normalise_mobile(value)
    except InvalidPhone:
        raise InvalidPhoneProblem(
            "The phone must be a mainland mobile number: 11 digits starting 13-19.",
            detail_zh="手机号码应为11位大陆手机号。",
        ) from None


async def residence_unit(session: AsyncSession, key: str) -> Unit:
    """The active learning point with ``key`` (a unit with no units under it)."""
    unit = await UnitRepository(session).get_by_key(key)
    if unit is None or unit.status != "active":
        raise UnknownResidence(
            f"No active unit has the key {key!r}.", detail_zh="所填村（社区）不存在或已停用。"
        )
    has_children = await session.scalar(select(exists().where(col(Unit.parent_id) == unit.id)))
    if has_children:
        raise UnknownResidence(
            f"{unit.name} is not a village or community learning point.",
            detail_zh="居住地应为村（社区）学习点。",
        )
    return unit


async def advance_numbers(session: AsyncSession, district_code: str, by: int) -> int:
    """Move the district's sequence on by ``by`` and return its last value, holding its row to
    the commit (``by=0`` only holds it). A guarded update, so no gaps on rollback; the row is
    made on the district's first account."""
    bump = (
        update(AccountNumberSequence)
        .where(col(AccountNumberSequence.district_code) == district_code)
        .values(last_value=col(AccountNumberSequence.last_value) + by)
        .returning(col(AccountNumberSequence.last_value))
    )
    value = (await session.execute(bump)).scalar_one_or_none()
    if value is None:
        try:
            async with session.begin_nested():
                await session.execute(
                    insert(AccountNumberSequence).values(district_code=district_code, last_value=0)
                )
        except IntegrityError:
            pass  # another transaction created it first
        value = (await session.execute(bump)).scalar_one()
    return int(value)


async def next_account_number(session: AsyncSession, district_code: str) -> str:
    """Take the next number of the district's sequence."""
    return accountno.make(district_code, await advance_numbers(session, district_code, 1))


def to_public(account: LearningAccount, unit_key: str) -> AccountPublic:
    """The masked view of an account."""
    return AccountPublic(
        id=account.id,
        account_number=account.account_number,
        name=account.name,
        id_number_masked=account.id_number_masked,
        phone_masked=account.phone_masked,
        birth_date=account.birth_date,
        gender=account.gender,
        residence_unit=unit_key,
        groups=list(account.groups),
        roles=list(account.roles),
        consent_version=account.consent_version,
        status=account.status,
        status_reason=account.status_reason,
        created_at=account.created_at,
    )


def snapshot(account: LearningAccount) -> dict[str, Any]:
    """What the audit digest covers (masked data only)."""
    return {
        "account_number": account.account_number,
        "name": account.name,
        "id_number_masked": account.id_number_masked,
        "phone_masked": account.phone_masked,
        "residence_path": account.residence_path,
        "groups": account.groups,
        "roles": account.roles,
        "status": account.status,
        "status_reason": account.status_reason,
    }


async def find_by_id_number(
    session: AsyncSession, cipher: PiiCipher, number: str
) -> LearningAccount | None:
    """The account with this (normalised) ID number, found by its blind index."""
    index = cipher.blind_index(number, field="id_number")
    result = await session.execute(
        select(LearningAccount).where(col(LearningAccount.id_number_index) == index)
    )
    return result.scalar_one_or_none()


async def _refuse_duplicate(
    session: AsyncSession, actor: Principal | str, existing: LearningAccount | None
) -> DuplicateAccount:
    """Audit a duplicate refusal and commit it before the error is raised.

    The 409 tells the caller that the ID number is registered: from a masked number, a birth
    date and a gender a caller can try the few candidates left, so each such answer is kept in
    the trail, naming the account it confirmed, even though the request fails.
    """
    audit.record(
        session,
        actor=actor,
        action="learning_account.create.duplicate",
        target_type="learning_account",
        target_id=str(existing.id) if existing is not None else "unknown",
        reason="ID number already registered",
        outcome="refused",
    )
    await session.commit()
    return DuplicateAccount(
        "An account with this ID number exists already.",
        detail_zh="该身份证号码已注册学习账号。",
    )


async def create_account(
    *,
    session: AsyncSession,
    cipher: PiiCipher,
    data: AccountCreate,
    actor: Principal | str,
    district_code: str,
    covering_path: str | None,
    today: date | None = None,
) -> tuple[LearningAccount, Unit]:
    """Open a learning account; the ID number can never register twice."""
    citizen = parse_id_number(data.id_number, today=today)
    phone = parse_phone(data.phone) if data.phone else None
    unit = await residence_unit(session, data.residence_unit)
    if covering_path is not None and not unit.path.startswith(covering_path):
        raise UnknownResidence(
            f"{unit.name} is outside your unit.", detail_zh="该村（社区）不在您的管理范围内。"
        )
    if citizen.age_on(today or date.today()) < GUARDIAN_AGE and data.guardian is None:
        raise GuardianConsentRequired(
            "A resident under 14 needs a guardian's consent (guardian.name, guardian.consent_at).",
            detail_zh="未满14周岁的居民需要监护人同意。",
        )
    existing = await find_by_id_number(session, cipher, citizen.number)
    if existing is not None:
        raise await _refuse_duplicate(session, actor, existing)
    password_hash = await asyncio.to_thread(hash_password, data.password) if data.password else None
    account = LearningAccount(
        account_number=await next_account_number(session, district_code),
        name=data.name,
        id_number_cipher=cipher.encrypt(citizen.number, field="id_number"),
        id_number_index=cipher.blind_index(citizen.number, field="id_number"),
        id_number_masked=idnumber.mask(citizen.number),
        phone_cipher=cipher.encrypt(phone, field="phone") if phone else None,
        phone_index=cipher.blind_index(phone, field="phone") if phone else None,
        phone_masked=mask_mobile(phone) if phone else None,
        birth_date=citizen.birth_date,
        gender=citizen.gender,
        residence_unit_id=unit.id,
        residence_path=unit.path,
        groups=sorted(set(data.groups)),
        roles=sorted(set(data.roles)),
        consent_version=data.consent.version,
        consent_at=data.consent.at,
        consent_channel=data.consent.channel,
        guardian_name=data.guardian.name if data.guardian else None,
        guardian_consent_at=data.guardian.consent_at if data.guardian else None,
        password_hash=password_hash,
    )
    try:
        # added inside the savepoint, so a refused row leaves the session as it was
        async with session.begin_nested():
            session.add(account)
            await session.flush()
    except IntegrityError:
        # another request registered the number since the check above: name that account;
        # rolled back first, so committing the refusal does not spend the account number
        await session.rollback()
        raise await _refuse_duplicate(
            session, actor, await find_by_id_number(session, cipher, citizen.number)
        ) from None
    audit.record(
        session,
        actor=actor,
        action="learning_account.create",
        target_type="learning_account",
        target_id=str(account.id),
        after=snapshot(account),
    )
    return account, unit


async def get_with_unit(
    session: AsyncSession, account_id: uuid.UUID
) -> tuple[LearningAccount, Unit] | None:
    """The account and its residence unit."""
    row = (
        await session.execute(
            select(LearningAccount, Unit)
            .join(Unit, col(LearningAccount.residence_unit_id) == col(Unit.id))
            .where(col(LearningAccount.id) == account_id)
        )
    ).first()
    return (row[0], row[1]) if row else None


async def update_account(
    *,
    session: AsyncSession,
    cipher: PiiCipher,
    account: LearningAccount,
    data: AccountUpdate,
    actor: Principal,
    covering_path: str,
) -> Unit:
    """Change the given fields; returns the (possibly new) residence unit."""
    before = snapshot(account)
    unit = await session.get(Unit, account.residence_unit_id)
    assert unit is not None
    if data.name is not None:
        account.name = data.name
    if data.phone is not None:
        phone = parse_phone(data.phone)
        account.phone_cipher = cipher.encrypt(phone, field="phone")
        account.phone_index = cipher.blind_index(phone, field="phone")
        account.phone_masked = mask_mobile(phone)
    if data.residence_unit is not None:
        unit = await residence_unit(session, data.residence_unit)
        if not unit.path.startswith(covering_path):
            raise UnknownResidence(
                f"{unit.name} is outside your unit.", detail_zh="该村（社区）不在您的管理范围内。"
            )
        account.residence_unit_id, account.residence_path = unit.id, unit.path
    if data.groups is not None:
        account.groups = sorted(set(data.groups))
    if data.roles is not None:
        account.roles = sorted(set(data.roles))
    account.updated_at = datetime.now(UTC)
    audit.record(
        session,
        actor=actor,
        action="learning_account.update",
        target_type="learning_account",
        target_id=str(account.id),
        before=before,
        after=snapshot(account),
        reason=data.reason,
    )
    await session.flush()
    return unit


async def change_status(
    *, session: AsyncSession, account: LearningAccount, status: str, reason: str, actor: Principal
) -> None:
    """Freeze, unfreeze or close; a closed account stays closed."""
    if account.status == "closed":
        raise Conflict(
            "A closed account cannot change status.", detail_zh="账号已注销，无法更改状态。"
        )
    before = snapshot(account)
    account.status, account.status_reason = status, reason
    account.updated_at = datetime.now(UTC)
    audit.record(
        session,
        actor=actor,
        action=f"learning_account.status.{status}",
        target_type="learning_account",
        target_id=str(account.id),
        before=before,
        after=snapshot(account),
        reason=reason,
    )
    await session.flush()
