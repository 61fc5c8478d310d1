"""Sign-in: who a username names, passwords with throttling and lockout, token issuance,
refresh-token rotation with reuse detection, client credentials for partners."""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
import unicodedata
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, case, delete, or_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from accounts import accountno
from accounts.audit import service as audit
from accounts.auth.models import RefreshToken, UnknownNameAttempts
from accounts.config import Settings
from accounts.learners.models import LearningAccount
from accounts.network.models import Unit
from accounts.partners.models import PartnerClient
from accounts.pii import PiiCipher
from accounts.staff.models import StaffUser
from accounts.staff.passwords import verify_password
from kernel.clock import aware
from kernel.problems import PROBLEMS, DomainError
from kernel.tokens import TokenSigner

STAFF_SCOPES = ("profile", "network:read")
RESIDENT_SCOPES = ("profile",)
_PHONE = re.compile(r"^1[3-9][0-9]{9}$")


class OAuthError(DomainError):
    """An RFC 6749 error, carried as problem+json with the OAuth ``error`` code beside it."""

    type = PROBLEMS + "oauth-error"
    status = 400
    title = "Token request refused"


class InvalidGrant(OAuthError):
    """Wrong credentials, an inactive account, or a bad refresh token (never says which)."""

    type = PROBLEMS + "invalid-grant"


class InvalidClient(OAuthError):
    """Unknown partner client or wrong secret."""

    type = PROBLEMS + "invalid-client"
    status = 401
    headers = {"WWW-Authenticate": 'Basic realm="muye"'}


class AccountLocked(OAuthError):
    """Too many failed sign-ins: locked for a while."""

    type = PROBLEMS + "account-locked"
    status = 429


def invalid_grant(
    detail: str = "The username or password is wrong, or the account is not active.",
    detail_zh: str = "用户名或密码错误，或账号不可用。",
) -> InvalidGrant:
    """The one answer to a failed sign-in (a refused refresh says its own)."""
    return InvalidGrant(detail, detail_zh=detail_zh, error="invalid_grant")


# a refresh token refused: the resident is told to sign in again, not that a password is wrong
NOT_VALID = ("The refresh token is not valid; sign in again.", "登录已失效，请重新登录。")
REUSED = (
    "The refresh token was used before; every session of it is revoked.",
    "该登录凭证已被使用过，为安全起见已退出所有设备上的登录，请重新登录。",
)


@dataclass
class Identity:
    """Whoever a token will name, with what goes into its claims."""

    subject: str
    kind: str
    roles: list[str]
    scopes: list[str]
    unit_key: str | None
    unit_path: str | None
    extra: dict[str, Any] = field(default_factory=dict)


def _now() -> datetime:
    return datetime.now(UTC)


async def _unit(session: AsyncSession, unit_id: uuid.UUID) -> Unit:
    unit = await session.get(Unit, unit_id)
    assert unit is not None  # foreign key
    return unit


async def identity_of_staff(session: AsyncSession, staff: StaffUser) -> Identity:
    """The token identity of a staff user."""
    unit = await _unit(session, staff.unit_id)
    return Identity(
        subject=str(staff.id),
        kind="staff",
        roles=[staff.role],
        scopes=list(STAFF_SCOPES),
        unit_key=unit.key,
        unit_path=unit.path,
    )


async def identity_of_resident(session: AsyncSession, account: LearningAccount) -> Identity:
    """The token identity of a resident."""
    unit = await _unit(session, account.residence_unit_id)
    return Identity(
        subject=str(account.id),
        kind="resident",
        roles=["resident", *account.roles],
        scopes=list(RESIDENT_SCOPES),
        unit_key=unit.key,
        unit_path=unit.path,
        extra={"account_number": account.account_number},
    )


def _sign_in_name(username: str) -> str:
    """The name as sign-in compares it: NFKC-folded (full-width digits and letters, what a
    Chinese input method types, are ASCII: "１３８..." names the same resident as "138..."),
    trimmed, and an account number with its check character upper case. Failed attempts are
    counted under this name too, so "...x" and "...X" share one count whether or not the
    number is registered (two counts for an unknown number, one for a known one, told them
    apart)."""
    name = unicodedata.normalize("NFKC", username).strip()
    return accountno.normalise(name) if accountno.is_valid(name) else name


async def _find_user(
    session: AsyncSession, cipher: PiiCipher, name: str
) -> StaffUser | LearningAccount | None:
    """The account or staff user a sign-in name (:func:`_sign_in_name`) names; the checks
    accept ASCII only."""
    # populate_existing: the lockout fields are changed by plain UPDATEs, so a user already in
    # the session's identity map must be read again, never trusted from memory
    if accountno.is_valid(name):
        query = select(LearningAccount).where(col(LearningAccount.account_number) == name)
        return (
            await session.execute(query.execution_options(populate_existing=True))
        ).scalar_one_or_none()
    if _PHONE.match(name):
        index = cipher.blind_index(name, field="phone")
        rows = (
            (
                await session.execute(
                    select(LearningAccount)
                    .where(col(LearningAccount.phone_index) == index)
                    .limit(2)
                    .execution_options(populate_existing=True)
                )
            )
            .scalars()
            .all()
        )
        return rows[0] if len(rows) == 1 else None  # a shared phone must sign in by number
    staff_query = select(StaffUser).where(col(StaffUser.username) == name)
    return (
        await session.execute(staff_query.execution_options(populate_existing=True))
    ).scalar_one_or_none()


async def password_sign_in(
    *, session: AsyncSession, cipher: PiiCipher, settings: Settings, username: str, password: str
) -> Identity:
    """Check a password; repeated failures slow down, then lock the account for a while.

    Each attempt on an account is counted before its password is checked (:meth:`_Counter.reserve`),
    in SQL and under the row's lock, so attempts on one account take turns and none is
    checked once the lock is set: many guesses sent at once get at most the limit checked,
    not every one that arrived before the lock committed. The count is committed even though
    the request fails, so it survives the error. A name that names no account is counted,
    slowed down and locked alike (:class:`UnknownNameAttempts`), so neither the answers nor
    their timing say whether a phone or account number is registered.
    """
    name = _sign_in_name(username)
    user = await _find_user(session, cipher, name)
    now = _now()
    # the name may be an ID number or phone: only its keyed hash is kept (a plain digest of
    # an ID number can be reversed by trying them all); repeats still correlate
    name_index = cipher.blind_index(name, field="sign_in_name")
    counter = _Counter.of(user, name_index)
    attempt = await counter.reserve(session, now)
    if attempt is None or attempt > settings.max_failed_sign_ins:
        if attempt is not None:  # beyond the limit with no lock (cannot happen in turn): lock
            await counter.lock(session, now + timedelta(minutes=settings.lockout_minutes))
        _audit_failure(session, user, name_index, "locked_out")
        await session.commit()
        raise await counter.locked_error(session, now)
    if attempt > 1:
        await asyncio.sleep(min(0.2 * (attempt - 1), 2.0))  # slow down guessing
    # an unknown name is checked against no hash, as slowly as a known one
    checked = await verify_password(None if user is None else user.password_hash, password)
    if user is None or not checked:
        # every max_failed_sign_ins-th failure locks, and the count starts again after it
        locking = attempt >= settings.max_failed_sign_ins
        if locking:
            await counter.lock(session, now + timedelta(minutes=settings.lockout_minutes))
        _audit_failure(session, user, name_index, "locked" if locking else "refused")
        await session.commit()
        raise invalid_grant()
    if user.status != "active":
        _audit_failure(session, user, name_index, "inactive")
        await session.commit()
        raise invalid_grant()
    # the attempt counted above is undone with every failure before it
    await session.execute(
        update(type(user))
        .where(col(type(user).id) == user.id)
        .values(failed_sign_ins=0, locked_until=None, last_failed_at=None)
        .execution_options(synchronize_session=False)
    )
    if isinstance(user, StaffUser):
        return await identity_of_staff(session, user)
    return await identity_of_resident(session, user)


#: how long failed sign-ins are kept after the last one: an unknown name's row is removed, an
#: account's count starts again
UNKNOWN_NAMES_KEPT = timedelta(days=30)


@dataclass(frozen=True)
class _Counter:
    """Where an attempt is counted: the account's own row, or the unknown name's."""

    table: type[StaffUser] | type[LearningAccount] | type[UnknownNameAttempts]
    row: ColumnElement[bool]
    name_index: str | None = None  # set for an unknown name: its row may not exist yet

    @classmethod
    def of(cls, user: StaffUser | LearningAccount | None, name_index: str) -> _Counter:
        """The counter for ``user``, or for the name when it names no account."""
        if user is None:
            table = UnknownNameAttempts
            return cls(table, col(table.name_index) == name_index, name_index)
        return cls(type(user), col(type(user).id) == user.id)

    def _unlocked(self, now: datetime) -> ColumnElement[bool]:
        locked_until = col(self.table.locked_until)
        return or_(locked_until.is_(None), locked_until <= now)

    async def reserve(self, session: AsyncSession, now: datetime) -> int | None:
        """Count one more attempt on the row itself, unless it is locked; the attempt's
        number since the last success or lock, or None when locked.

        The UPDATE holds the row's lock to the commit: the next attempt under the same name
        waits for this one's outcome. An unknown name's row is made by its first attempt
        (an upsert, so two first attempts at once count two).
        """
        if self.name_index is None:
            # failures quiet for as long as an unknown name's are kept are forgotten: the
            # count starts again at this attempt
            last = col(self.table.last_failed_at)  # type: ignore[union-attr]
            stale = and_(last.is_not(None), last < now - UNKNOWN_NAMES_KEPT)
            counted = await session.execute(
                update(self.table)
                .where(self.row, self._unlocked(now))
                .values(
                    failed_sign_ins=case((stale, 1), else_=col(self.table.failed_sign_ins) + 1),
                    last_failed_at=now,
                )
                .returning(col(self.table.failed_sign_ins))
                .execution_options(synchronize_session=False)
            )
        else:
            table = UnknownNameAttempts
            await session.execute(
                delete(table).where(
                    col(table.last_attempt_at) < now - UNKNOWN_NAMES_KEPT, self._unlocked(now)
                )
            )
            insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
            statement = insert(table).values(
                name_index=self.name_index, failed_sign_ins=1, last_attempt_at=now
            )
            counted = await session.execute(
                statement.on_conflict_do_update(
                    index_elements=[col(table.name_index)],
                    set_={
                        "failed_sign_ins": col(table.failed_sign_ins) + 1,
                        "last_attempt_at": now,
                    },
                    where=self._unlocked(now),
                ).returning(col(table.failed_sign_ins))
            )
        found = counted.scalar_one_or_none()
        return None if found is None else int(found)

    async def lock(self, session: AsyncSession, until: datetime) -> None:
        """Lock the name until ``until``; its count starts again when the lock ends."""
        await session.execute(
            update(self.table)
            .where(self.row)
            .values(locked_until=until, failed_sign_ins=0)
            .execution_options(synchronize_session=False)
        )

    async def locked_error(self, session: AsyncSession, now: datetime) -> AccountLocked:
        """The 429 for a locked name, with how long the lock still runs."""
        until = (
            await session.execute(select(col(self.table.locked_until)).where(self.row))
        ).scalar_one_or_none()
        ends = aware(until) if until is not None else now
        wait = max(1, int((ends - now).total_seconds()) + 1)  # type: ignore[operator]
        return AccountLocked(
            f"Too many failed sign-ins; try again in {wait} seconds.",
            detail_zh=f"登录失败次数过多，请在 {wait} 秒后重试。",
            headers={"Retry-After": str(wait)},
            error="invalid_grant",
        )


def _audit_failure(
    session: AsyncSession, user: StaffUser | LearningAccount | None, name_index: str, outcome: str
) -> None:
    if user is None:
        target_type, target_id, actor = "username", name_index, "anonymous"
    else:
        target_type = "staff_user" if isinstance(user, StaffUser) else "learning_account"
        target_id = actor = str(user.id)
    audit.record(
        session,
        actor=actor,
        action="sign_in.failed",
        target_type=target_type,
        target_id=target_id,
        outcome=outcome,
    )


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def sign_access_token(signer: TokenSigner, identity: Identity, lifetime_seconds: int) -> str:
    """A signed access token for ``identity``."""
    extra = dict(identity.extra)
    if identity.unit_path is not None:
        extra["unit_path"] = identity.unit_path
    return signer.sign(
        subject=identity.subject,
        kind=identity.kind,
        lifetime_seconds=lifetime_seconds,
        roles=identity.roles,
        scopes=identity.scopes,
        unit=identity.unit_key,
        extra=extra,
    )


def new_refresh_token(
    session: AsyncSession, identity: Identity, days: int, family_id: uuid.UUID | None = None
) -> str:
    """Store a new refresh token (hashed) in ``family_id`` or a new family; return it."""
    token = secrets.token_urlsafe(32)
    session.add(
        RefreshToken(
            family_id=family_id or uuid.uuid4(),
            token_hash=_hash(token),
            subject=identity.subject,
            kind=identity.kind,
            expires_at=_now() + timedelta(days=days),
        )
    )
    return token


async def _refuse_refresh(
    session: AsyncSession,
    stored: RefreshToken | None,
    reason: str,
    detail: tuple[str, str] | None = None,
) -> InvalidGrant:
    """Audit a refused refresh and commit it, so the entry survives the error that follows.

    The entry names the token's family and owner where the token is known, never the token.
    """
    audit.record(
        session,
        actor=stored.subject if stored is not None else "anonymous",
        action="refresh_token.refused",
        target_type="refresh_token_family",
        target_id=str(stored.family_id) if stored is not None else "unknown",
        reason=reason,
        outcome="refused",
    )
    await session.commit()
    return invalid_grant(*detail) if detail else invalid_grant()


async def rotate_refresh_token(
    *, session: AsyncSession, settings: Settings, token: str
) -> tuple[Identity, str]:
    """Use a refresh token once: a new one in the same family; a reused one kills the family.

    Every refusal is audited (like a failed password): unknown, revoked and expired tokens,
    reuse, and tokens of accounts no longer active.
    """
    stored = (
        await session.execute(
            select(RefreshToken).where(col(RefreshToken.token_hash) == _hash(token))
        )
    ).scalar_one_or_none()
    now = _now()
    not_valid = NOT_VALID
    if stored is None:
        raise await _refuse_refresh(session, None, "unknown", not_valid)
    if stored.revoked_at is not None:
        raise await _refuse_refresh(session, stored, "revoked", not_valid)
    if aware(stored.expires_at) <= now:  # type: ignore[operator]
        raise await _refuse_refresh(session, stored, "expired", not_valid)
    # checked before the token is marked used, so committing this refusal does not spend it:
    # the token works again if the account is unfrozen
    identity = await load_identity(session, stored.kind, stored.subject)
    if identity is None:
        raise await _refuse_refresh(session, stored, "account not active")
    # a guarded update: of two concurrent uses of one token, only one can mark it used
    marked = await session.execute(
        update(RefreshToken)
        .where(col(RefreshToken.id) == stored.id, col(RefreshToken.used_at).is_(None))
        .values(used_at=now)
    )
    if marked.rowcount != 1:  # type: ignore[attr-defined]
        await session.execute(
            update(RefreshToken)
            .where(col(RefreshToken.family_id) == stored.family_id)
            .values(revoked_at=now)
        )
        audit.record(
            session,
            actor=stored.subject,
            action="refresh_token.reuse_detected",
            target_type="refresh_token_family",
            target_id=str(stored.family_id),
            outcome="revoked",
        )
        await session.commit()
        raise invalid_grant(*REUSED)
    return identity, new_refresh_token(
        session, identity, settings.refresh_token_days, stored.family_id
    )


async def load_identity(session: AsyncSession, kind: str, subject: str) -> Identity | None:
    """The current identity of an active staff user or resident."""
    if kind == "staff":
        staff = await session.get(StaffUser, uuid.UUID(subject))
        return (
            await identity_of_staff(session, staff) if staff and staff.status == "active" else None
        )
    account = await session.get(LearningAccount, uuid.UUID(subject))
    if account is None or account.status != "active":
        return None
    return await identity_of_resident(session, account)


async def revoke_refresh_token(*, session: AsyncSession, token: str) -> None:
    """RFC 7009: revoke the token's whole family; unknown tokens are not an error."""
    stored = (
        await session.execute(
            select(RefreshToken).where(col(RefreshToken.token_hash) == _hash(token))
        )
    ).scalar_one_or_none()
    if stored is not None:
        await session.execute(
            update(RefreshToken)
            .where(
                col(RefreshToken.family_id) == stored.family_id,
                col(RefreshToken.revoked_at).is_(None),
            )
            .values(revoked_at=_now())
        )
        audit.record(
            session,
            actor=stored.subject,
            action="refresh_token.revoke",
            target_type="refresh_token_family",
            target_id=str(stored.family_id),
        )


async def client_credentials(
    *, session: AsyncSession, client_id: str, client_secret: str, requested: list[str] | None
) -> Identity:
    """Authenticate a partner platform and grant the scopes it asked for (within its own)."""
    client = (
        await session.execute(
            select(PartnerClient).where(col(PartnerClient.client_id) == client_id)
        )
    ).scalar_one_or_none()
    ok = await verify_password(client.secret_hash if client else None, client_secret)
    if client is None or not ok or client.status != "active":
        audit.record(
            session,
            actor=str(client.id) if client else "anonymous",
            action="sign_in.failed",
            target_type="partner_client",
            target_id=client_id[:80],
            outcome="refused" if client is None or not ok else "inactive",
        )
        await session.commit()
        raise InvalidClient(
            "Unknown client or wrong secret.",
            detail_zh="客户端标识或密钥错误。",
            error="invalid_client",
        )
    scopes = list(client.scopes) if requested is None else requested
    if not set(scopes) <= set(client.scopes):
        # a sign-in failure like the others: a partner probing for more than it was given
        audit.record(
            session,
            actor=str(client.id),
            action="sign_in.failed",
            target_type="partner_client",
            target_id=client_id[:80],
            reason=f"asked for {' '.join(sorted(set(scopes) - set(client.scopes)))[:150]}",
            outcome="invalid_scope",
        )
        await session.commit()
        raise OAuthError(
            f"This client may ask only for: {' '.join(client.scopes)}.", error="invalid_scope"
        )
    unit = await _unit(session, client.unit_id)
    return Identity(
        subject=str(client.id),
        kind="partner",
        roles=["partner"],
        scopes=scopes,
        unit_key=unit.key,
        unit_path=unit.path,
        extra={"client_id": client.client_id},
    )
