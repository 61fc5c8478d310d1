"""Open Badges 3.0 AchievementCredentials and CLR 2.0 ClrCredentials, built from plain facts.

Pure: no I/O. Field placement follows the 1EdTech data models: the credits an achievement is
worth go on the Achievement (``creditsAvailable``), the credits the learner got on the
AchievementSubject (``creditsEarned``). The learner is named only by a pseudonymous
``urn:uuid:`` and a salted SHA-256 of their name (an IdentityObject), never in plain text.

A ClrCredential also carries ``issuanceDate`` (equal to ``validFrom``), and so do the
AchievementCredentials inside it: the one published ClrCredential JSON schema we could obtain
is the VC 1.1 edition, which requires it (docs/decisions.md).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

VC_CONTEXT = "https://www.w3.org/ns/credentials/v2"
OB_CONTEXT = "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json"
CLR_CONTEXT = "https://purl.imsglobal.org/spec/clr/v2p0/context-2.0.1.json"
SCHEMA_VALIDATOR = "1EdTechJsonSchemaValidator2019"
OB_SCHEMA = (
    "https://purl.imsglobal.org/spec/ob/v3p0/schema/json/ob_v3p0_achievementcredential_schema.json"
)
CLR_SCHEMA = (
    "https://purl.imsglobal.org/spec/clr/v2p0/schema/json/clr_v2p0_clrcredential_schema.json"
)


@dataclass(frozen=True)
class IssuerProfile:
    """The issuing organisation (the district community college)."""

    id: str
    name: str
    url: str
    description: str = ""


@dataclass(frozen=True)
class Holder:
    """Whom a credential is about: a pseudonymous id and a salted hash of the name."""

    subject_id: str
    name: str
    salt: str

    def identity(self) -> dict[str, Any]:
        """The OB IdentityObject: ``sha256$hex(name + salt)``."""
        digest = hashlib.sha256((self.name + self.salt).encode()).hexdigest()
        return {
            "type": "IdentityObject",
            "hashed": True,
            "identityHash": f"sha256${digest}",
            "identityType": "name",
            "salt": self.salt,
        }


@dataclass(frozen=True)
class AchievementFacts:
    """One achievement a learner holds, as the ledger and the records say."""

    key: str  # stable, e.g. "conversion/ou_course_credit"; part of the achievement id
    achievement_type: str  # OB AchievementType, or "ext:..."
    name: str
    description: str
    criteria: str
    credits_available_hundredths: int
    credits_earned_hundredths: int
    awarded_at: datetime
    field_of_study: str | None = None
    narrative: str | None = None
    tags: tuple[str, ...] = field(default_factory=tuple)


def iso(moment: datetime) -> str:
    """An XML Schema dateTime with its zone, UTC written as ``Z``."""
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def credits(hundredths: int) -> float:
    """Credits as the data model's Float (two decimals, from integer hundredths)."""
    return round(hundredths / 100, 2)


def _profile(issuer: IssuerProfile) -> dict[str, Any]:
    profile: dict[str, Any] = {
        "id": issuer.id,
        "type": ["Profile"],
        "name": issuer.name,
        "url": issuer.url,
    }
    if issuer.description:
        profile["description"] = issuer.description
    return profile


def achievement(issuer: IssuerProfile, facts: AchievementFacts) -> dict[str, Any]:
    """The OB Achievement of ``facts``."""
    found: dict[str, Any] = {
        "id": f"{issuer.id}/achievements/{facts.key}",
        "type": ["Achievement"],
        "achievementType": facts.achievement_type,
        "name": facts.name,
        "description": facts.description,
        "criteria": {"narrative": facts.criteria},
        "creditsAvailable": credits(facts.credits_available_hundredths),
        "creator": _profile(issuer),
        "inLanguage": "zh-CN",
    }
    if facts.field_of_study:
        found["fieldOfStudy"] = facts.field_of_study
    if facts.tags:
        found["tag"] = list(facts.tags)
    return found


def achievement_credential(
    *,
    credential_id: str,
    issuer: IssuerProfile,
    holder: Holder,
    facts: AchievementFacts,
    valid_from: datetime,
    valid_until: datetime | None = None,
    status: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An unsigned OB 3.0 AchievementCredential."""
    subject: dict[str, Any] = {
        "id": holder.subject_id,
        "type": ["AchievementSubject"],
        "identifier": [holder.identity()],
        "achievement": achievement(issuer, facts),
        "creditsEarned": credits(facts.credits_earned_hundredths),
    }
    if facts.narrative:
        subject["narrative"] = facts.narrative
    document: dict[str, Any] = {
        "@context": [VC_CONTEXT, OB_CONTEXT],
        "id": credential_id,
        "type": ["VerifiableCredential", "AchievementCredential"],
        "name": facts.name,
        "description": facts.description,
        "issuer": _profile(issuer),
        "validFrom": iso(valid_from),
        "awardedDate": iso(facts.awarded_at),
        "credentialSubject": subject,
        "credentialSchema": [{"id": OB_SCHEMA, "type": SCHEMA_VALIDATOR}],
    }
    if valid_until is not None:
        document["validUntil"] = iso(valid_until)
    if status is not None:
        document["credentialStatus"] = status
    return document


def clr_credential(
    *,
    credential_id: str,
    issuer: IssuerProfile,
    holder: Holder,
    name: str,
    description: str,
    achievements: list[tuple[str, AchievementFacts]],
    valid_from: datetime,
    valid_until: datetime | None = None,
    status: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An unsigned CLR 2.0 ClrCredential holding one AchievementCredential per achievement.

    ``achievements`` pairs each achievement with the id of the credential that carries it
    inside the CLR. The CLR's own signature covers them; they carry no proof of their own.
    """
    embedded = []
    for inner_id, facts in achievements:
        inner = achievement_credential(
            credential_id=inner_id,
            issuer=issuer,
            holder=holder,
            facts=facts,
            valid_from=valid_from,
        )
        inner["issuanceDate"] = iso(valid_from)
        embedded.append(inner)
    document: dict[str, Any] = {
        "@context": [VC_CONTEXT, CLR_CONTEXT, OB_CONTEXT],
        "id": credential_id,
        "type": ["VerifiableCredential", "ClrCredential"],
        "name": name,
        "description": description,
        "issuer": _profile(issuer),
        "validFrom": iso(valid_from),
        "issuanceDate": iso(valid_from),
        "credentialSubject": {
            "id": holder.subject_id,
            "type": ["ClrSubject"],
            # the hashed name is in each inner credential: the CLR schema edition we validate
            # against predates the identity type "name"
            "achievement": [e["credentialSubject"]["achievement"] for e in embedded],
            "verifiableCredential": embedded,
        },
        "credentialSchema": [{"id": CLR_SCHEMA, "type": SCHEMA_VALIDATOR}],
    }
    if valid_until is not None:
        document["validUntil"] = iso(valid_until)
    if status is not None:
        document["credentialStatus"] = status
    return document
