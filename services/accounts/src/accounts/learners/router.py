"""Routes of learning accounts: staff within their units, residents their own account."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, UploadFile
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import col, select

from accounts import accountno
from accounts.audit import service as audit
from accounts.learners import importing, service
from accounts.learners.models import LearningAccount
from accounts.learners.schemas import (
    AccountCreate,
    AccountPublic,
    AccountUpdate,
    Revealed,
    RevealRequest,
    StatusChange,
)
from accounts.learners.sheet import SheetError, read_sheet
from accounts.network.models import Unit
from accounts.network.repository import UnitRepository
from accounts.pii import PiiCipher
from kernel.access import (
    READING_STAFF,
    REVEALING_STAFF,
    WRITING_STAFF,
    covers,
    require_staff,
)
from kernel.auth import CurrentPrincipal
from kernel.db import SessionDep
from kernel.pagination import ALTERED, InvalidCursor, Page, PageDep, encode_cursor
from kernel.problems import PROBLEMS, DomainError
from kernel.text import CONTROL_FREE
from kernel.tokens import Principal

router = APIRouter(prefix="/api/v1", tags=["learning accounts"])


def cipher_of(request: Request) -> PiiCipher:
    """The app's PII cipher."""
    cipher: PiiCipher = request.app.state.pii
    return cipher


CipherDep = Annotated[PiiCipher, Depends(cipher_of)]


def _not_found(account_id: uuid.UUID | str) -> service.AccountNotFound:
    return service.AccountNotFound(
        f"No learning account {account_id} that you may see.", detail_zh="找不到该学习账号。"
    )


async def visible_account(
    account_id: uuid.UUID, principal: CurrentPrincipal, session: SessionDep
) -> tuple[LearningAccount, Unit]:
    """The account, when the caller is its owner or staff covering it; else 404."""
    found = await service.get_with_unit(session, account_id)
    if found is None:
        raise _not_found(account_id)
    account, unit = found
    own = principal.kind == "resident" and principal.subject == str(account.id)
    if not own and not covers(principal, unit.path):
        raise _not_found(account_id)
    return account, unit


VisibleAccount = Annotated[tuple[LearningAccount, Unit], Depends(visible_account)]


def _writer(principal: Principal, unit: Unit, roles: tuple[str, ...] = WRITING_STAFF) -> str:
    own = require_staff(principal, roles)
    if not unit.path.startswith(own):
        raise _not_found(unit.key)
    return own


@router.post("/learning-accounts", response_model=AccountPublic, status_code=201)
async def create_account(
    body: AccountCreate,
    request: Request,
    principal: CurrentPrincipal,
    session: SessionDep,
    cipher: CipherDep,
) -> AccountPublic:
    """Open a resident's learning account (staff, for a village or community in their unit)."""
    covering = require_staff(principal, WRITING_STAFF)
    account, unit = await service.create_account(
        session=session,
        cipher=cipher,
        data=body,
        actor=principal,
        district_code=request.app.state.settings.district_code,
        covering_path=covering,
    )
    await session.commit()
    return service.to_public(account, unit.key)


@router.get("/learning-accounts", response_model=Page[AccountPublic])
async def list_accounts(
    principal: CurrentPrincipal,
    session: SessionDep,
    page: PageDep,
    under: Annotated[str | None, Query(max_length=40, pattern=CONTROL_FREE)] = None,
    status: Annotated[str | None, Query(pattern="^(active|frozen|closed)$")] = None,
) -> Page[AccountPublic]:
    """Accounts of residents living in the caller's unit (or a unit under it), masked."""
    path = require_staff(principal, READING_STAFF)
    if under is not None:
        unit = await UnitRepository(session).get_by_key(under)
        if unit is None or not unit.path.startswith(path):
            raise _not_found(under)
        path = unit.path
    query = (
        select(LearningAccount, col(Unit.key))
        .join(Unit, col(LearningAccount.residence_unit_id) == col(Unit.id))
        .where(col(LearningAccount.residence_path).startswith(path, autoescape=True))
        .order_by(col(LearningAccount.account_number))
        .limit(page.limit + 1)
    )
    if status is not None:
        query = query.where(col(LearningAccount.status) == status)
    if page.cursor:
        after = page.cursor.get("after")
        if not isinstance(after, str) or not accountno.is_valid(after):
            raise InvalidCursor(ALTERED)  # not signed: a changed one must not reach the database
        query = query.where(col(LearningAccount.account_number) > accountno.normalise(after))
    rows = (await session.execute(query)).all()
    items = [service.to_public(row[0], row[1]) for row in rows[: page.limit]]
    more = len(rows) > page.limit
    return Page[AccountPublic](
        items=items,
        next_cursor=encode_cursor({"after": items[-1].account_number}) if more else None,
    )


class LookupRequest(BaseModel):
    """Learning account numbers to resolve (as a partner's batch names its learners)."""

    model_config = ConfigDict(extra="forbid")
    account_numbers: list[str] = Field(min_length=1, max_length=1000)


class LookupEntry(BaseModel):
    """An account number's learner id and status; no personal data."""

    account_number: str
    id: uuid.UUID
    status: str


class LookupResult(BaseModel):
    """The numbers that name an account; numbers not listed name none."""

    found: list[LookupEntry]


@router.post("/learning-accounts/lookup", response_model=LookupResult)
async def lookup(
    body: LookupRequest, principal: CurrentPrincipal, session: SessionDep
) -> LookupResult:
    """Resolve account numbers to learner ids and statuses, for partners posting records
    (scope ``records:write``) and staff. Only the id and status are returned."""
    partner = principal.kind == "partner" and principal.has_scope("records:write")
    if not partner:
        require_staff(principal, READING_STAFF)
    # a malformed number names no account: it never reaches the database (NUL would be a 500)
    numbers = sorted(
        {accountno.normalise(n) for n in body.account_numbers if accountno.is_valid(n)}
    )
    rows = (
        await session.execute(
            select(
                col(LearningAccount.account_number),
                col(LearningAccount.id),
                col(LearningAccount.status),
            ).where(col(LearningAccount.account_number).in_(numbers))
        )
    ).all()
    return LookupResult(found=[LookupEntry(account_number=n, id=i, status=s) for n, i, s in rows])


@router.get("/learning-accounts/{account_id}", response_model=AccountPublic)
async def get_account(found: VisibleAccount) -> AccountPublic:
    """One account, masked (its owner, or staff covering it)."""
    account, unit = found
    return service.to_public(account, unit.key)


@router.get("/me/account", response_model=AccountPublic)
async def my_account(principal: CurrentPrincipal, session: SessionDep) -> AccountPublic:
    """The signed-in resident's own account."""
    if principal.kind != "resident":
        raise _not_found("me")
    found = await service.get_with_unit(session, uuid.UUID(principal.subject))
    if found is None:
        raise _not_found("me")
    return service.to_public(found[0], found[1].key)


@router.patch("/learning-accounts/{account_id}", response_model=AccountPublic)
async def update_account(
    body: AccountUpdate,
    found: VisibleAccount,
    principal: CurrentPrincipal,
    session: SessionDep,
    cipher: CipherDep,
) -> AccountPublic:
    """Change an account's name, phone, residence, groups or roles (staff covering it)."""
    account, unit = found
    covering = _writer(principal, unit)
    unit = await service.update_account(
        session=session,
        cipher=cipher,
        account=account,
        data=body,
        actor=principal,
        covering_path=covering,
    )
    await session.commit()
    return service.to_public(account, unit.key)


@router.post("/learning-accounts/{account_id}/status", response_model=AccountPublic)
async def change_status(
    body: StatusChange, found: VisibleAccount, principal: CurrentPrincipal, session: SessionDep
) -> AccountPublic:
    """Freeze, unfreeze or close an account, with a reason (staff covering it)."""
    account, unit = found
    _writer(principal, unit)
    await service.change_status(
        session=session, account=account, status=body.status, reason=body.reason, actor=principal
    )
    await session.commit()
    return service.to_public(account, unit.key)


@router.post("/learning-accounts/{account_id}/reveal", response_model=Revealed)
async def reveal(
    body: RevealRequest,
    found: VisibleAccount,
    principal: CurrentPrincipal,
    session: SessionDep,
    cipher: CipherDep,
) -> Revealed:
    """The plain ID number and phone, for authorised staff only; every reveal is audited."""
    account, unit = found
    _writer(principal, unit, REVEALING_STAFF)
    audit.record(
        session,
        actor=principal,
        action="learning_account.reveal",
        target_type="learning_account",
        target_id=str(account.id),
        reason=body.reason,
    )
    await session.commit()
    return Revealed(
        id=account.id,
        id_number=cipher.decrypt(account.id_number_cipher, field="id_number"),
        phone=cipher.decrypt(account.phone_cipher, field="phone") if account.phone_cipher else None,
    )


class ImportProblem(BaseModel):
    """One refused row."""

    row: int
    field: str
    reason: str
    reason_zh: str


class ImportResult(BaseModel):
    """What an import did, or in a dry run would do; every refused row with its reasons."""

    dry_run: bool
    total: int
    created: int
    updated: int
    unchanged: int
    rejected: int
    problems: list[ImportProblem]


MAX_SHEET_BYTES = 20_000_000


@router.post("/learning-accounts/imports", response_model=ImportResult)
async def import_residents(
    request: Request,
    principal: CurrentPrincipal,
    session: SessionDep,
    cipher: CipherDep,
    file: UploadFile,
    dry_run: Annotated[bool, Query(description="check only; nothing is written")] = True,
) -> ImportResult:
    """Import residents from a learning point's sheet (.xlsx or .csv with Chinese headers).

    Run with ``dry_run=true`` (the default) to see every bad row, then with ``dry_run=false``:
    good rows are created or updated (same ID number updates), bad rows are listed, and running
    the same sheet again changes nothing. Either way, every registered account a row matched
    is named in the audit trail.
    """
    covering = require_staff(principal, WRITING_STAFF)
    content = await file.read(MAX_SHEET_BYTES + 1)
    if len(content) > MAX_SHEET_BYTES:
        raise SheetProblem(
            f"The sheet is larger than {MAX_SHEET_BYTES} bytes; split it.",
            detail_zh=f"表格超过 {MAX_SHEET_BYTES // 1_000_000} MB，请拆分为几个表格分别导入。",
        )
    try:
        rows = list(read_sheet(file.filename or "", content))
        report = await importing.import_residents(
            session=session,
            cipher=cipher,
            rows=rows,
            covering_path=covering,
            actor=principal,
            district_code=request.app.state.settings.district_code,
            dry_run=dry_run,
        )
    except SheetError as exc:
        raise SheetProblem(
            f"The file cannot be imported: {exc}.",
            detail_zh=f"文件无法导入：{exc.zh}。" if exc.zh else "文件无法导入，请检查格式和表头。",
        ) from None
    # a dry run writes nothing but its audit entries: the matches it reports are audited too
    await session.commit()
    return ImportResult(
        dry_run=report.dry_run,
        total=report.total,
        created=report.created,
        updated=report.updated,
        unchanged=report.unchanged,
        rejected=report.rejected,
        problems=[ImportProblem(**vars(p)) for p in report.problems],
    )


class SheetProblem(DomainError):
    """The uploaded file is not a readable residents' sheet."""

    type = PROBLEMS + "unreadable-sheet"
    status = 422
    title = "Unreadable sheet"
