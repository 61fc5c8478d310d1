"""Conversion (学分转换): apply, approve with one atomic debit, reject, cancel with a reversal."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, time, timedelta
from typing import Any

from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from credits.conversion.models import Conversion, ConversionTarget
from credits.conversion.schemas import ConversionApply, ConversionPublic, TargetPublic
from credits.credentials import revocation
from credits.ledger import holdings
from credits.ledger import service as ledger
from credits.ledger.service import Draft, InsufficientCredits, Leg
from credits.rules import engine
from credits.rules.conversion import Insufficient, Requirement, allocate
from kernel.clock import aware, aware_utc
from kernel.packagedata import read_json
from kernel.problems import PROBLEMS, Conflict, DomainError, NotFound


class ConversionNotFound(NotFound):
    """No conversion, or none the caller may see."""

    type = PROBLEMS + "conversion-not-found"
    title = "Conversion not found"


class ConversionRefused(Conflict):
    """The conversion cannot be applied for, approved or cancelled as asked."""

    type = PROBLEMS + "conversion-refused"
    title = "Conversion refused"


class IdempotencyKeyRequired(DomainError):
    """An approval must carry an Idempotency-Key, so that a retry never debits twice."""

    type = PROBLEMS + "idempotency-key-required"
    status = 428
    title = "Idempotency-Key required"


def default_targets() -> dict[str, Any]:
    """The conversion targets shipped with the service."""
    return read_json("credits.conversion", "data/targets.json")


async def load_targets(*, session: AsyncSession, data: dict[str, Any]) -> dict[str, int]:
    """Create or update targets from ``data``; idempotent."""
    created = updated = 0
    fields = (
        "name_zh",
        "name_en",
        "unit_zh",
        "requirements",
        "max_units_per_request",
        "max_units_per_year",
        "prerequisites",
        "cancel_window_days",
    )
    for raw in data["targets"]:
        target = await session.get(ConversionTarget, raw["code"])
        values = {name: raw[name] for name in fields}
        if target is None:
            session.add(ConversionTarget(code=raw["code"], **values))
            created += 1
        elif any(getattr(target, k) != v for k, v in values.items()):
            for k, v in values.items():
                setattr(target, k, v)
            updated += 1
    await session.flush()
    return {"created": created, "updated": updated, "total": len(data["targets"])}


def target_public(target: ConversionTarget) -> TargetPublic:
    """The API view of a target."""
    return TargetPublic(**target.model_dump(exclude={"active"}))


def to_public(conversion: Conversion) -> ConversionPublic:
    """The API view of a conversion."""
    return ConversionPublic(
        id=conversion.id,
        learner_id=conversion.learner_id,
        target=conversion.target_code,
        units=conversion.units,
        status=conversion.status,
        note=conversion.note,
        applied_by=conversion.applied_by,
        applied_at=aware_utc(conversion.applied_at),
        decided_by=conversion.decided_by,
        decided_at=aware(conversion.decided_at),
        decision_reason=conversion.decision_reason,
        debits=dict(conversion.debits),
        transaction_id=conversion.transaction_id,
        cancelled_at=aware(conversion.cancelled_at),
        cancel_reason=conversion.cancel_reason,
        cancel_transaction_id=conversion.cancel_transaction_id,
    )


async def conversions_of(*, session: AsyncSession, learner_id: uuid.UUID) -> list[ConversionPublic]:
    """The learner's conversions, newest application first."""
    rows = await session.execute(
        select(Conversion)
        .where(col(Conversion.learner_id) == learner_id)
        .order_by(col(Conversion.applied_at).desc(), col(Conversion.id))
    )
    return [to_public(c) for c in rows.scalars()]


def _refused(reason: str, detail: str, detail_zh: str) -> ConversionRefused:
    return ConversionRefused(detail, detail_zh=detail_zh, reason=reason)


async def _target_or_refuse(session: AsyncSession, code: str) -> ConversionTarget:
    target = await session.get(ConversionTarget, code)
    if target is None or not target.active:
        raise _refused(
            "unknown-target",
            f"No conversion target {code!r}; see GET /api/v1/conversion-targets.",
            "没有该转换项目，请查看可转换项目列表。",
        )
    return target


async def apply(
    *,
    session: AsyncSession,
    learner_id: uuid.UUID,
    unit_path: str,
    data: ConversionApply,
    actor: str,
) -> Conversion:
    """A resident's application; nothing is debited until the college approves it."""
    target = await _target_or_refuse(session, data.target)
    if data.units > target.max_units_per_request:
        raise _refused(
            "too-many-units",
            f"At most {target.max_units_per_request} units of {target.code} in one application.",
            f"每次申请最多转换 {target.max_units_per_request} {target.unit_zh}。",
        )
    conversion = Conversion(
        learner_id=learner_id,
        learner_unit_path=unit_path,
        target_code=target.code,
        units=data.units,
        note=data.note,
        applied_by=actor,
    )
    session.add(conversion)
    await session.flush()
    return conversion


async def get_or_raise(session: AsyncSession, conversion_id: uuid.UUID) -> Conversion:
    """The conversion, or 404."""
    conversion = await session.get(Conversion, conversion_id)
    if conversion is None:
        raise ConversionNotFound(f"No conversion {conversion_id}.", detail_zh="找不到该转换申请。")
    return conversion


async def _locked(session: AsyncSession, conversion_id: uuid.UUID) -> Conversion:
    """The conversion read again under a row lock, as committed now (not as first loaded)."""
    query = (
        select(Conversion)
        .where(col(Conversion.id) == conversion_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return (await session.execute(query)).scalar_one()


def _year_bounds(moment: datetime) -> tuple[datetime, datetime]:
    """The Beijing year of ``moment`` as UTC instants (SQLite compares the stored UTC digits
    as text: a +08:00 bound would leave out the first eight hours of the year)."""
    year = moment.astimezone(engine.CHINA).year
    start = datetime.combine(datetime(year, 1, 1).date(), time.min, engine.CHINA)
    end = datetime.combine(datetime(year + 1, 1, 1).date(), time.min, engine.CHINA)
    return start.astimezone(UTC), end.astimezone(UTC)


async def _check_limits(
    session: AsyncSession, conversion: Conversion, target: ConversionTarget, now: datetime
) -> None:
    live = select(func.coalesce(func.sum(col(Conversion.units)), 0)).where(
        col(Conversion.learner_id) == conversion.learner_id,
        col(Conversion.status) == "approved",
    )
    if target.max_units_per_year is not None:
        start, end = _year_bounds(now)
        this_year = (
            await session.execute(
                live.where(
                    col(Conversion.target_code) == target.code,
                    col(Conversion.decided_at) >= start,
                    col(Conversion.decided_at) < end,
                )
            )
        ).scalar_one()
        if int(this_year) + conversion.units > target.max_units_per_year:
            raise _refused(
                "yearly-limit",
                f"{target.code}: at most {target.max_units_per_year} units a year; "
                f"{this_year} already converted this year.",
                f"该项目每年最多转换 {target.max_units_per_year} {target.unit_zh}，"
                f"今年已转换 {this_year}。",
            )
    for prerequisite in target.prerequisites:
        done = (
            await session.execute(live.where(col(Conversion.target_code) == prerequisite))
        ).scalar_one()
        if not done:
            raise _refused(
                "prerequisite-missing",
                f"{target.code} needs an approved {prerequisite} conversion first.",
                f"需先完成“{prerequisite}”的转换。",
            )


async def decide(
    *,
    session: AsyncSession,
    conversion_id: uuid.UUID,
    approve: bool,
    reason: str,
    key: str | None,
    actor: str,
) -> tuple[Conversion, bool]:
    """Approve (one atomic debit) or reject; return the conversion and whether this was a replay.

    The learner's ledger lock is taken first, then the conversion is read again: two approvals
    of one learner's conversions run one after the other, each against the balance the other
    left, so no two can spend the same credit. The same Idempotency-Key sent again answers
    with the first result and posts nothing.
    """
    if approve and not key:
        raise IdempotencyKeyRequired(
            "Send an Idempotency-Key header with an approval, so a retry never debits twice.",
            detail_zh="审批通过须带 Idempotency-Key 请求头，以免重试时重复扣减学分。",
        )
    learner = (await get_or_raise(session, conversion_id)).learner_id
    await ledger.lock_learners(session, [learner])
    conversion = await _locked(session, conversion_id)
    approval_key = f"{conversion_id}:{key}" if key else None
    if approve and conversion.status == "approved" and conversion.approval_key == approval_key:
        return conversion, True
    if conversion.status != "applied":
        raise _refused(
            "not-pending",
            f"The conversion is {conversion.status}; only an application can be decided.",
            "该申请已处理，不能重复审批。",
        )
    now = datetime.now(UTC)
    conversion.decided_by, conversion.decided_at, conversion.decision_reason = actor, now, reason
    if not approve:
        conversion.status = "rejected"
        await session.flush()
        return conversion, False
    assert approval_key is not None  # an approval carries its key (checked above)
    target = await _target_or_refuse(session, conversion.target_code)
    await _check_limits(session, conversion, target, now)
    balances = await ledger.balances(session, learner)
    requirements = [
        Requirement(
            hundredths=int(r["hundredths"]),
            categories=frozenset(r["categories"]) if r.get("categories") else None,
        )
        for r in target.requirements
    ]
    try:
        debits = allocate(balances, requirements, conversion.units)
    except Insufficient as exc:
        raise InsufficientCredits(
            f"The balance is short by {exc.short / 100:.2f} credits for {target.code}.",
            detail_zh=f"学分不足，还差 {exc.short / 100:.2f} 学分。",
            short_hundredths=exc.short,
        ) from None
    accounts = await ledger.ensure_accounts(session, [(learner, c) for c in debits])
    sink = await ledger.system_account(session, "conversion")
    legs = [Leg(accounts[(learner, c)], "debit", amount) for c, amount in sorted(debits.items())]
    legs.append(Leg(sink, "credit", sum(debits.values())))
    (transaction_id,) = await ledger.write(
        session,
        [
            Draft(
                kind="conversion",
                learner_id=learner,
                created_by=actor,
                legs=legs,
                reference=f"conversion:{conversion.id}",
                # the key digested: the conversion id and a 200-character header do not fit
                # the ledger's 200 characters, and the same approval still gives the same key
                idempotency_key=f"conversion:{hashlib.sha256(approval_key.encode()).hexdigest()}",
                memo=f"{target.code} x {conversion.units}",
            )
        ],
    )
    conversion.status = "approved"
    conversion.approval_key = approval_key
    conversion.debits = debits
    conversion.transaction_id = transaction_id
    await session.flush()
    return conversion, False


async def given_back(session: AsyncSession, conversion: Conversion) -> dict[str, int]:
    """Per category, what cancelling ``conversion`` gives back to the learner: its debit,
    but never more than brings the balance to what the learner may hold without it
    (:mod:`credits.ledger.holdings`). Less only when records whose credits it spent were
    voided or rejected since (settlement wrote those credits off); the learner's lock held."""
    may = await holdings.may_hold(session, conversion.learner_id, leaving_out=conversion.id)
    held = await ledger.balances(session, conversion.learner_id)
    return {
        category: max(0, min(int(amount), may.get(category, 0) - held.get(category, 0)))
        for category, amount in conversion.debits.items()
    }


async def cancel(
    *, session: AsyncSession, conversion_id: uuid.UUID, reason: str, actor: str
) -> Conversion:
    """Cancel an approved conversion within its window: a reversal restores the credits it
    debited, less any of them taken back since (written off when they were taken back; see
    :func:`given_back`), which go back to the write-off account instead."""
    learner = (await get_or_raise(session, conversion_id)).learner_id
    await ledger.lock_learners(session, [learner])
    conversion = await _locked(session, conversion_id)
    if conversion.status != "approved" or conversion.transaction_id is None:
        raise _refused(
            "not-approved",
            f"The conversion is {conversion.status}; only an approved one can be cancelled.",
            "只有已批准的转换可以撤销。",
        )
    target = await _target_or_refuse(session, conversion.target_code)
    now = datetime.now(UTC)
    decided = aware(conversion.decided_at)
    assert decided is not None
    if now > decided + timedelta(days=target.cancel_window_days):
        raise _refused(
            "window-closed",
            f"Cancelling is possible for {target.cancel_window_days} days after approval.",
            f"批准后 {target.cancel_window_days} 天内可以撤销，现已超过期限。",
        )
    accounts = await ledger.ensure_accounts(session, [(learner, c) for c in conversion.debits])
    sink = await ledger.system_account(session, "conversion")
    back = await given_back(session, conversion)
    legs = [Leg(accounts[(learner, c)], "credit", n) for c, n in sorted(back.items()) if n]
    debited = sum(int(a) for a in conversion.debits.values())
    written_off = debited - sum(back.values())
    if written_off:
        # credits spent by this conversion whose records were voided since: the college wrote
        # them off; the conversion undone, nothing is lost any more and the write-off goes back
        writeoff = await ledger.system_account(session, "writeoff")
        legs.append(Leg(writeoff, "credit", written_off))
    legs.append(Leg(sink, "debit", debited))
    (reversal,) = await ledger.write(
        session,
        [
            Draft(
                kind="conversion_cancel",
                learner_id=learner,
                created_by=actor,
                legs=legs,
                reverses_id=conversion.transaction_id,
                reference=f"conversion:{conversion.id}",
                memo=reason,
            )
        ],
    )
    conversion.status = "cancelled"
    conversion.cancelled_by, conversion.cancelled_at = actor, now
    conversion.cancel_reason, conversion.cancel_transaction_id = reason, reversal
    # the credential of this conversion, and every snapshot that counted it, stop standing
    await revocation.revoke(
        session,
        learner_id=learner,
        subject_refs=[f"conversion:{conversion.id}"],
        snapshots=True,
        reason=f"转换已撤销 conversion cancelled: {reason}",
    )
    await session.flush()
    return conversion
