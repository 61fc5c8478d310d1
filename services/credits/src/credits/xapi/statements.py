"""xAPI statements (1.0.3 and 2.0) from partner platforms, as partner learning records.

Pure: a statement (parsed JSON) in, a partner record (the shape of
:class:`credits.ingest.schemas.PartnerRecord`) or the reasons it cannot be one out. Field names
follow the xAPI specification (adlnet/xAPI-Spec, xAPI-Data.md, part two, section 2.4):

=============================  =============================================================
statement                      partner record
=============================  =============================================================
``id`` (UUID, required here)   ``id``: the partner's record id, so a retried statement is a
                               no-op (the spec makes a statement id unique)
``actor.account``              ``learner``: an Agent identified by an account whose
                               ``homePage`` is :data:`LEARNER_HOME_PAGE` and whose ``name`` is
                               the learning account number (no mbox, openid or sha1sum)
``verb.id``                    completed or attended (:data:`VERBS`); anything else is refused
``object.id``                  ``activity``: an Activity IRI ``ACTIVITY_IRI_PREFIX + <uuid>``
``result.duration`` (ISO 8601  ``minutes``: whole minutes, rounded down; days, hours, minutes
duration, required)            and seconds only (years and months have no fixed length)
``timestamp`` (required, with  ``end``: the moment the learning ended
its time zone)
``context.extensions``         ``start``: when the learner began, for a stretch with pauses
[:data:`STARTED_AT`]           (then the duration may be shorter than start to end);
(optional)                     without it, ``start`` = ``timestamp`` - ``result.duration``
the statement as sent          ``evidence`` ``{"xapi_statement": ...}``
=============================  =============================================================
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta
from decimal import Decimal, DecimalException
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

LEARNER_HOME_PAGE = "https://muye.example.org/learners"
ACTIVITY_IRI_PREFIX = "https://muye.example.org/activities/"
STARTED_AT = "https://muye.example.org/xapi/extensions/started-at"
VERBS = {
    "http://adlnet.gov/expapi/verbs/completed": "completed",
    "http://adlnet.gov/expapi/verbs/attended": "attended",
}
VOIDED = "http://adlnet.gov/expapi/verbs/voided"
EVIDENCE_KEY = "xapi_statement"
DAY_MINUTES = 24 * 60

# ISO 8601 duration, format of section 4.4.3.2 (the alternative format is not allowed by xAPI)
_DURATION = re.compile(
    r"^P(?!$)(?:(?P<Y>\d+(?:[.,]\d+)?)Y)?(?:(?P<Mo>\d+(?:[.,]\d+)?)M)?(?:(?P<W>\d+(?:[.,]\d+)?)W)?"
    r"(?:(?P<D>\d+(?:[.,]\d+)?)D)?(?:T(?=\d)(?:(?P<H>\d+(?:[.,]\d+)?)H)?"
    r"(?:(?P<Mi>\d+(?:[.,]\d+)?)M)?(?:(?P<S>\d+(?:[.,]\d+)?)S)?)?$"
)
_SECONDS = {"W": 7 * 86400, "D": 86400, "H": 3600, "Mi": 60, "S": 1}


class _Strict(BaseModel):
    # the spec asks an LRS to reject properties it does not define; attributes keep the spec's
    # own camelCase names (homePage, objectType), so a statement validates as sent
    model_config = ConfigDict(extra="forbid")


class Account(_Strict):
    """An account on an existing system (2.4.2.4)."""

    homePage: str = Field(min_length=1)
    name: str = Field(min_length=1)


class Agent(_Strict):
    """An individual (2.4.2.1); Groups are not learners here."""

    objectType: Literal["Agent"] | None = None
    name: str | None = None
    mbox: str | None = None
    mbox_sha1sum: str | None = None
    openid: str | None = None
    account: Account | None = None


class Verb(_Strict):
    """The action (2.4.3)."""

    id: str = Field(min_length=1)
    display: dict[str, str] | None = None


class ActivityObject(_Strict):
    """The object when it is an Activity (2.4.4.1)."""

    objectType: Literal["Activity"] | None = None
    id: str = Field(min_length=1)
    definition: dict[str, Any] | None = None


class Result(_Strict):
    """The measured outcome (2.4.5)."""

    score: dict[str, Any] | None = None
    success: bool | None = None
    completion: bool | None = None
    response: str | None = None
    duration: str | None = None
    extensions: dict[str, Any] | None = None


class Context(_Strict):
    """The context (2.4.6; contextAgents and contextGroups are 2.0's)."""

    registration: uuid.UUID | None = None
    instructor: dict[str, Any] | None = None
    team: dict[str, Any] | None = None
    contextActivities: dict[str, Any] | None = None
    contextAgents: list[Any] | None = None
    contextGroups: list[Any] | None = None
    revision: str | None = None
    platform: str | None = None
    language: str | None = None
    statement: dict[str, Any] | None = None
    extensions: dict[str, Any] | None = None


class Statement(_Strict):
    """A statement (2.4), as much of it as a learning record needs, checked strictly."""

    id: uuid.UUID | None = None
    actor: Agent
    verb: Verb
    object: ActivityObject
    result: Result | None = None
    context: Context | None = None
    timestamp: AwareDatetime | None = None
    stored: str | None = None
    authority: dict[str, Any] | None = None
    version: str | None = Field(default=None, pattern=r"^[12]\.0(\.\d+)?$")
    attachments: list[dict[str, Any]] | None = None


class Refusal(ValueError):
    """Why a statement cannot be a learning record, and which field says so."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


_moment = TypeAdapter(AwareDatetime)


def duration_seconds(text: str) -> Decimal:
    """Seconds in an ISO 8601 duration (``PT1H30M``, ``P1DT2H``, ``PT5400S``, ``PT1.5H``).

    Raises:
        Refusal: not such a duration, or one with years or months (no fixed length).
    """
    found = _DURATION.match(text)
    if found is None:
        raise Refusal("result.duration", f"not an ISO 8601 duration: {text!r}")
    if found["Y"] is not None or found["Mo"] is not None:
        raise Refusal(
            "result.duration", "years and months have no fixed length; give days, hours, minutes"
        )
    try:
        return sum(
            (
                Decimal(found[unit].replace(",", ".")) * factor
                for unit, factor in _SECONDS.items()
                if found[unit] is not None
            ),
            Decimal(0),
        )
    except DecimalException:  # the pattern admits only numbers, but of any length
        raise Refusal("result.duration", f"not an ISO 8601 duration: {text!r}") from None


def statement_id(raw: Any) -> str | None:
    """The statement's id in standard form, if it has a well-formed one."""
    if isinstance(raw, dict) and isinstance(raw.get("id"), str):
        try:
            return str(uuid.UUID(raw["id"]))
        except ValueError:
            return None
    return None


def to_partner_record(raw: Any) -> dict[str, Any]:
    """The partner record a statement stands for (see the module's mapping).

    Raises:
        Refusal: the statement is not one this service takes, with the field and the reason.
    """
    if not isinstance(raw, dict):
        raise Refusal("statement", "a statement is a JSON object")
    try:
        statement = Statement.model_validate(raw)
    except ValidationError as exc:
        error = exc.errors()[0]
        raise Refusal(".".join(str(p) for p in error["loc"]) or "statement", error["msg"]) from None
    if statement.id is None:
        raise Refusal("id", "an id is required: it is what makes a retried statement a no-op")
    if statement.verb.id == VOIDED:
        raise Refusal("verb.id", "voiding is not taken here: ask staff to void the record")
    if statement.verb.id not in VERBS:
        raise Refusal(
            "verb.id",
            "only completed or attended statements carry learning time: " + ", ".join(VERBS),
        )
    actor = statement.actor
    account = actor.account
    if account is None:
        raise Refusal("actor.account", f"the learner is named by an account on {LEARNER_HOME_PAGE}")
    if any(v is not None for v in (actor.mbox, actor.mbox_sha1sum, actor.openid)):
        raise Refusal("actor", "an Agent carries exactly one identifier (here: its account)")
    if account.homePage.rstrip("/") != LEARNER_HOME_PAGE:
        raise Refusal("actor.account.homePage", f"learners' accounts are on {LEARNER_HOME_PAGE}")
    activity = _activity_id(statement.object.id)
    if statement.result is None or statement.result.duration is None:
        raise Refusal("result.duration", "a duration is required: it is the learning time")
    seconds = duration_seconds(statement.result.duration)
    if seconds >= (DAY_MINUTES + 1) * 60:  # before dividing: no bound on the digits given
        raise Refusal("result.duration", "longer than 24 hours: a statement is one stretch")
    minutes = int(seconds // 60)
    if minutes < 1:
        raise Refusal("result.duration", "shorter than one minute")
    if statement.timestamp is None:
        raise Refusal("timestamp", "a timestamp is required: the moment the learning ended")
    end = statement.timestamp
    try:
        start = end - timedelta(seconds=float(seconds))
    except OverflowError:
        raise Refusal("timestamp", "a time between 1970 and 9000 is expected") from None
    extensions = (statement.context.extensions if statement.context else None) or {}
    if STARTED_AT in extensions:
        start = _started_at(extensions[STARTED_AT])
    return {
        "id": str(statement.id),
        "learner": "".join(account.name.split()).upper(),
        "activity": activity,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "minutes": minutes,
        "evidence": {EVIDENCE_KEY: raw},
    }


# what a statement sent again may differ in and still match (xAPI 1.0.3 part two, 2.3.1,
# "Statement Comparison Requirements"): what an LRS may assign, Attachments, the Activity's
# Definition and the Verb's display; the timestamp's notation too, its instant being the end
_NOT_COMPARED = ("id", "authority", "stored", "timestamp", "version", "attachments")


def comparable(evidence: dict[str, Any]) -> dict[str, Any]:
    """The evidence of a mapped statement as a retry is compared on (the statement's parts
    that must match, see :data:`_NOT_COMPARED`); other evidence as it is."""
    statement = evidence.get(EVIDENCE_KEY)
    if not isinstance(statement, dict):
        return evidence
    kept = {k: v for k, v in statement.items() if k not in _NOT_COMPARED}
    for part, loose in (("verb", "display"), ("object", "definition")):
        if isinstance(kept.get(part), dict):
            kept[part] = {k: v for k, v in kept[part].items() if k != loose}
    return {**evidence, EVIDENCE_KEY: kept}


def _activity_id(iri: str) -> str:
    if iri.startswith(ACTIVITY_IRI_PREFIX):
        try:
            return str(uuid.UUID(iri.removeprefix(ACTIVITY_IRI_PREFIX).rstrip("/")))
        except ValueError:
            pass
    raise Refusal("object.id", f"not one of our activities: {ACTIVITY_IRI_PREFIX}<activity id>")


def _started_at(value: Any) -> datetime:
    try:
        moment: datetime = _moment.validate_python(value)
    except ValidationError:
        raise Refusal(
            f"context.extensions.{STARTED_AT}", "a timestamp with its time zone is expected"
        ) from None
    return moment
