"""Issuing credentials and snapshots, publishing the status list, verifying what comes back."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from jose.backends.base import Key
from sqlalchemy import select as sql_select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from credits.credentials import certificates, documents, statuslist, vcjwt
from credits.credentials.documents import AchievementFacts, Holder, IssuerProfile
from credits.credentials.models import IssuedDocument, StatusList
from credits.credentials.revocation import PORTFOLIO
from credits.credentials.schemas import IssuedDocumentPublic
from credits.transcript import figures as portfolio
from credits.transcript.figures import Figures
from kernel.clock import aware, aware_utc
from kernel.keyring import KeyRing
from kernel.pagination import Page, PageParams, cursor_row_id, encode_cursor
from kernel.problems import PROBLEMS, Conflict, NotFound

STATUS_LIST_TTL = timedelta(days=1)
MAX_STATUS_LISTS = 1_000_000  # the highest list number the status list route serves
CLR_TITLE = "终身学习电子档案（综合学习记录） Lifelong-learning record (CLR)"
KIND_NAMES = {
    "transcript": "学分证明 Transcript",
    "achievement": "学习成果凭证 Achievement credential",
    "clr": "终身学习电子档案 Comprehensive Learner Record",
}
ACHIEVEMENT_TYPES = {
    "vocational_qualification": "Certification",
    "mooc_certificate": "Certificate",
    "award": "Award",
    "prior_learning": "ext:PriorLearningRecognition",
}


class NothingToCertify(NotFound):
    """No approved certification, conversion or award of the learner by that id."""

    type = PROBLEMS + "nothing-to-certify"
    title = "Nothing to certify"


class CredentialRefused(Conflict):
    """The record cannot be issued as a credential now."""

    type = PROBLEMS + "credential-refused"
    title = "Credential refused"


@dataclass(frozen=True)
class Issuer:
    """The college as an issuer: its profile, its keys and where things are published."""

    profile: IssuerProfile
    keys: KeyRing
    public_url: str
    snapshot_valid_days: int

    @property
    def keys_url(self) -> str:
        """Where the credential key set is published."""
        return f"{self.public_url}/.well-known/credential-keys.json"

    @property
    def kid_uri(self) -> str:
        """The signing key as a dereferenceable URI (key set address, thumbprint fragment)."""
        return f"{self.keys_url}#{self.keys.signing_key['kid']}"

    def list_url(self, number: int) -> str:
        """The address of status list ``number``."""
        return f"{self.public_url}/credentials/status/{number}"

    def verify_url(self, certificate_number: str) -> str:
        """The public verification page of a document."""
        return f"{self.public_url}/verify/{certificate_number}"

    def public_keys(self) -> dict[str, Key]:
        """Verification keys by kid."""
        return vcjwt.public_keys(self.keys.public_jwks())

    def sign(self, credential: Mapping[str, Any]) -> str:
        """The credential as a VC-JWT signed with the current key."""
        return vcjwt.sign(credential, private_jwk=self.keys.signing_key, kid_uri=self.kid_uri)

    def snapshot_expiry(self, now: datetime) -> datetime:
        """When a snapshot issued ``now`` stops being valid."""
        return now + timedelta(days=self.snapshot_valid_days)


def now_seconds() -> datetime:
    """Now, to the second (what credentials state)."""
    return datetime.now(UTC).replace(microsecond=0)


async def record(
    session: AsyncSession,
    *,
    kind: str,
    learner_id: uuid.UUID,
    subject_ref: str,
    title: str,
    holder_name: str,
    actor: str,
    issued_at: datetime,
    expires_at: datetime | None,
    with_status: bool,
) -> IssuedDocument:
    """A new issued-document row with a fresh certificate number (and a status list bit)."""
    for _ in range(5):
        number = certificates.new_number(issued_at.astimezone(UTC).year)
        taken = await session.execute(
            select(IssuedDocument.id).where(col(IssuedDocument.certificate_number) == number)
        )
        if taken.first() is None:
            break
    else:  # pragma: no cover - 35 random bits five times in a row
        raise CredentialRefused("No free certificate number; try again.")
    document = IssuedDocument(
        certificate_number=number,
        kind=kind,
        learner_id=learner_id,
        subject_ref=subject_ref,
        title=title[:160],
        holder_masked_name=certificates.mask_name(holder_name),
        issued_by=actor,
        issued_at=issued_at,
        expires_at=expires_at,
    )
    session.add(document)
    try:
        await session.flush()
    except IntegrityError:  # pragma: no cover - a number taken between the check and here
        raise CredentialRefused("No free certificate number; try again.") from None
    if with_status:
        # the row id gives each credential its own place: list n holds ids in order, and the
        # list's key turns the place into a bit no one can tell the issue order from
        assert document.id is not None
        number_of_list, position = divmod(document.id - 1, statuslist.LIST_SIZE)
        key = await _list_key(session, number_of_list + 1)
        document.status_list = number_of_list + 1
        document.status_index = statuslist.index_for(position, key)
        await session.flush()
    return document


async def _list_key(session: AsyncSession, number: int) -> bytes | None:
    """The key that orders list ``number``'s bits, made when the list's first bit is given."""
    read = select(col(StatusList.permutation_key)).where(col(StatusList.number) == number)
    found = (await session.execute(read)).first()
    if found is None:
        insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
        await session.execute(
            insert(StatusList)
            .values(number=number, permutation_key=secrets.token_hex(32), created_at=now_seconds())
            .on_conflict_do_nothing(index_elements=["number"])
        )
        found = (await session.execute(read)).one()  # ours, or a concurrent issuer's
    return bytes.fromhex(found[0]) if found[0] is not None else None


def _holder(learner_id: uuid.UUID, name: str) -> Holder:
    return Holder(subject_id=f"urn:uuid:{learner_id}", name=name, salt=secrets.token_hex(8))


def _certification_facts(line: portfolio.CertificationLine, figures: Figures) -> AchievementFacts:
    category = figures.category_names.get(line.category or "", line.category or "")
    return AchievementFacts(
        key=f"certification/{line.outcome_type}",
        achievement_type=ACHIEVEMENT_TYPES.get(line.outcome_type, "Achievement"),
        name=f"学习成果认证：{line.title}",
        description=f"{line.standard_name}，由{line.issuer}颁发，经牧野区社区学院认定并记入学分。",
        criteria=f"按学习成果认定标准“{line.standard_name}”审核佐证材料后认定。",
        credits_available_hundredths=line.hundredths,
        credits_earned_hundredths=line.hundredths,
        awarded_at=line.approved_at,
        field_of_study=category or None,
    )


def _conversion_facts(line: portfolio.ConversionLine) -> AchievementFacts:
    return AchievementFacts(
        key=f"conversion/{line.target}",
        achievement_type=(
            "CertificateOfCompletion"
            if line.target == "completion_certificate"
            else "ext:CreditConversion"
        ),
        name=f"学分转换：{line.target_name}",
        description=f"以学分银行学分转换为{line.target_name} {line.units} {line.unit_name}。",
        criteria="按牧野区社区学院学分转换办法，经审核批准后扣减相应学分。",
        credits_available_hundredths=line.hundredths,
        credits_earned_hundredths=line.hundredths,
        awarded_at=line.approved_at,
        tags=(line.target,),
    )


def _award_facts(line: portfolio.AwardLine, figures: Figures) -> AchievementFacts:
    return AchievementFacts(
        key=f"award/{line.activity_id}",
        achievement_type="CertificateOfCompletion",
        name=f"结业奖励：{line.activity_title}",
        description=f"完成“{line.activity_title}”规定的出勤，获得结业奖励学分。",
        criteria="按学分积累办法的结业条款：出勤达到课程场次的规定比例。",
        credits_available_hundredths=line.hundredths,
        credits_earned_hundredths=line.hundredths,
        awarded_at=datetime(
            line.earned_on.year, line.earned_on.month, line.earned_on.day, tzinfo=UTC
        ),
        field_of_study=figures.category_names.get(line.category, line.category),
    )


def _category_facts(
    category: str, hundredths: int, minutes: int, figures: Figures, now: datetime
) -> AchievementFacts:
    name = figures.category_names.get(category, category)
    return AchievementFacts(
        key=f"learning/{category}",
        achievement_type="ext:CommunityLearningCredits",
        name=f"社区教育学习：{name}",
        description=f"在牧野区学分银行积累的“{name}”类学习学分（含学时折算、认证和奖励）。",
        criteria="按牧野区社区学院学分积累与转换办法，由学习记录折算学分。",
        credits_available_hundredths=hundredths,
        credits_earned_hundredths=hundredths,
        awarded_at=now,
        field_of_study=name,
        narrative=f"累计学时 {minutes / 60:.1f} 小时。",
    )


def achievement_for(figures: Figures, kind: str, subject: str) -> tuple[str, AchievementFacts]:
    """(subject reference, facts) of one certification, conversion or award, or 404."""
    for certification in figures.certifications:
        if kind == "certification" and str(certification.id) == subject:
            return f"certification:{certification.id}", _certification_facts(certification, figures)
    for conversion in figures.conversions:
        if kind == "conversion" and str(conversion.id) == subject:
            return f"conversion:{conversion.id}", _conversion_facts(conversion)
    for award in figures.awards:
        if kind == "award" and str(award.activity_id) == subject:
            return award.key, _award_facts(award, figures)
    raise NothingToCertify(
        f"No approved {kind} {subject} of this learner to issue a credential for.",
        detail_zh="没有可出具凭证的已批准认证、转换或奖励。",
    )


@dataclass(frozen=True)
class Issued:
    """A credential as issued: its row and the VC-JWT."""

    document: IssuedDocument
    token: str


async def issue_achievement(
    *,
    session: AsyncSession,
    issuer: Issuer,
    learner_id: uuid.UUID,
    holder_name: str,
    kind: str,
    subject: str,
    actor: str,
) -> Issued:
    """An OB 3.0 AchievementCredential of an approved certification, conversion or award."""
    figures = await portfolio.gather(session, learner_id)
    subject_ref, facts = achievement_for(figures, kind, subject)
    now = now_seconds()
    document = await record(
        session,
        kind="achievement",
        learner_id=learner_id,
        subject_ref=subject_ref,
        title=facts.name,
        holder_name=holder_name,
        actor=actor,
        issued_at=now,
        expires_at=None,
        with_status=True,
    )
    assert document.status_list is not None and document.status_index is not None
    credential = documents.achievement_credential(
        credential_id=f"urn:uuid:{document.document_id}",
        issuer=issuer.profile,
        holder=_holder(learner_id, holder_name),
        facts=facts,
        valid_from=now,
        status=statuslist.entry(issuer.list_url(document.status_list), document.status_index),
    )
    return await _signed(session, issuer, document, credential)


async def issue_clr(
    *,
    session: AsyncSession,
    issuer: Issuer,
    learner_id: uuid.UUID,
    holder_name: str,
    actor: str,
) -> Issued:
    """A CLR 2.0 ClrCredential of the whole e-portfolio (a snapshot, valid for a while)."""
    figures = await portfolio.gather(session, learner_id)
    now = now_seconds()
    minutes = figures.minutes_by_category()
    parts: list[AchievementFacts] = [
        _category_facts(category, amount, minutes.get(category, 0), figures, now)
        for category, amount in sorted(figures.earned_by_category.items())
        if amount > 0
    ]
    parts += [_certification_facts(c, figures) for c in figures.certifications]
    parts += [_award_facts(a, figures) for a in figures.awards]
    parts += [_conversion_facts(c) for c in figures.conversions]
    if not parts:
        raise CredentialRefused(
            "There is nothing in the record yet: no credits, certifications or conversions.",
            detail_zh="学习档案中尚无学分、认证或转换记录，暂不能出具。",
            reason="empty-record",
        )
    expires = issuer.snapshot_expiry(now)
    document = await record(
        session,
        kind="clr",
        learner_id=learner_id,
        subject_ref=PORTFOLIO,
        title=CLR_TITLE,
        holder_name=holder_name,
        actor=actor,
        issued_at=now,
        expires_at=expires,
        with_status=True,
    )
    assert document.status_list is not None and document.status_index is not None
    credential = documents.clr_credential(
        credential_id=f"urn:uuid:{document.document_id}",
        issuer=issuer.profile,
        holder=_holder(learner_id, holder_name),
        name=CLR_TITLE,
        description=(
            f"学习学时 {figures.total_minutes / 60:.1f} 小时；获得学分 {figures.earned / 100:.2f}，"
            f"已转换 {figures.converted / 100:.2f}，现有 {figures.held / 100:.2f}。"
        ),
        achievements=[(f"urn:uuid:{uuid.uuid4()}", facts) for facts in parts],
        valid_from=now,
        valid_until=expires,
        status=statuslist.entry(issuer.list_url(document.status_list), document.status_index),
    )
    return await _signed(session, issuer, document, credential)


async def _signed(
    session: AsyncSession, issuer: Issuer, document: IssuedDocument, credential: dict[str, Any]
) -> Issued:
    token = issuer.sign(credential)
    document.digest = hashlib.sha256(token.encode()).hexdigest()
    await session.flush()
    return Issued(document, token)


async def revoked_indices(session: AsyncSession, number: int) -> list[int]:
    """The revoked bits of status list ``number``."""
    rows = await session.execute(
        sql_select(col(IssuedDocument.status_index)).where(
            col(IssuedDocument.status_list) == number,
            col(IssuedDocument.revoked_at).is_not(None),
        )
    )
    return [int(i) for (i,) in rows.all() if i is not None]


async def status_list_token(session: AsyncSession, issuer: Issuer, number: int) -> str:
    """Status list ``number`` as a signed BitstringStatusListCredential (VC-JWT)."""
    now = now_seconds()
    unsigned = statuslist.credential(
        list_url=issuer.list_url(number),
        issuer=issuer.profile.id,
        revoked=await revoked_indices(session, number),
        valid_from=now,
        valid_until=now + STATUS_LIST_TTL,
    )
    return issuer.sign(unsigned)


def _peek(token: str) -> dict[str, Any]:
    """The payload of a token, unverified (only to know which status list to load)."""
    try:
        payload = token.split(".")[1]
        found = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError, binascii.Error, UnicodeDecodeError, RecursionError):
        return {}
    return found if isinstance(found, dict) else {}


@dataclass(frozen=True)
class Checked:
    """A verdict and the issued document it is about, when it is one of ours."""

    verdict: vcjwt.Verdict
    document: IssuedDocument | None


async def verify(session: AsyncSession, issuer: Issuer, token: str) -> Checked:
    """Verify a VC-JWT as anyone would, the status read from the list this service publishes."""
    status = _peek(token).get("credentialStatus")
    revoked: set[int] = set()
    list_url = status.get("statusListCredential") if isinstance(status, dict) else None
    prefix = issuer.list_url(0)[:-1]
    number = (
        list_url[len(prefix) :] if isinstance(list_url, str) and list_url.startswith(prefix) else ""
    )
    # read unverified: only a list number the published lists can have is looked up
    ours = (
        number.isascii()
        and number.isdigit()
        and len(number) <= len(str(MAX_STATUS_LISTS))
        and 0 < int(number) <= MAX_STATUS_LISTS
    )
    if ours:
        revoked = set(await revoked_indices(session, int(number)))

    def lookup(url: str, index: int) -> bool | None:
        return index in revoked if url == list_url and ours else None

    verdict = vcjwt.verify(
        token, keys=issuer.public_keys(), issuer=issuer.profile.id, status=lookup
    )
    document = None
    if verdict.credential is not None and verdict.status not in (vcjwt.TAMPERED, vcjwt.MALFORMED):
        credential_id = str(verdict.credential.get("id", ""))
        if credential_id.startswith("urn:uuid:"):
            try:
                document_id = uuid.UUID(credential_id[len("urn:uuid:") :])
            except ValueError:
                document_id = None
            if document_id is not None:
                document = (
                    await session.execute(
                        select(IssuedDocument).where(col(IssuedDocument.document_id) == document_id)
                    )
                ).scalar_one_or_none()
    return Checked(verdict, document)


def standing(
    document: IssuedDocument, now: datetime | None = None
) -> Literal["valid", "revoked", "expired"]:
    """``valid``, ``revoked`` or ``expired``: what the verification page says of a document."""
    if document.revoked_at is not None:
        return "revoked"
    expires = aware(document.expires_at)
    if expires is not None and expires < (now or datetime.now(UTC)):
        return "expired"
    return "valid"


async def by_number(session: AsyncSession, number: str) -> IssuedDocument | None:
    """The document with this certificate number (as typed), or None."""
    canonical = certificates.normalise(number)
    if canonical is None:
        return None
    found: IssuedDocument | None = (
        await session.execute(
            select(IssuedDocument).where(col(IssuedDocument.certificate_number) == canonical)
        )
    ).scalar_one_or_none()
    return found


async def documents_of(
    *, session: AsyncSession, issuer: Issuer, learner_id: uuid.UUID, page: PageParams
) -> Page[IssuedDocumentPublic]:
    """One page of the documents issued to the learner, newest first."""
    query = (
        select(IssuedDocument)
        .where(col(IssuedDocument.learner_id) == learner_id)
        .order_by(col(IssuedDocument.id).desc())
        .limit(page.limit + 1)
    )
    if page.cursor:
        query = query.where(col(IssuedDocument.id) < cursor_row_id(page.cursor, "before"))
    rows = (await session.execute(query)).scalars().all()
    now = datetime.now(UTC)
    items = [
        IssuedDocumentPublic(
            certificate_number=d.certificate_number,
            kind=d.kind,
            subject_ref=d.subject_ref,
            title=d.title,
            issued_at=aware_utc(d.issued_at),
            expires_at=aware(d.expires_at),
            status=standing(d, now),
            revoked_at=aware(d.revoked_at),
            revoked_reason=d.revoked_reason,
            verify_url=issuer.verify_url(d.certificate_number),
        )
        for d in rows[: page.limit]
    ]
    more = len(rows) > page.limit
    last = rows[page.limit - 1].id if more else None
    return Page[IssuedDocumentPublic](
        items=items, next_cursor=encode_cursor({"before": last}) if more else None
    )
