"""Shapes of credential requests, issued credentials and verification results."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from kernel.text import PlainText


class Strict(BaseModel):
    """Refuse unknown fields."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class CredentialRequest(Strict):
    """What to issue: one achievement (by its id), or the whole record as a CLR."""

    kind: Literal["certification", "conversion", "award", "clr"]
    subject: PlainText | None = Field(
        default=None,
        max_length=64,
        description="the certification or conversion id, or the activity id of a completion"
        " award; none for a CLR",
    )

    @model_validator(mode="after")
    def _subject_when_needed(self) -> CredentialRequest:
        if (self.kind == "clr") != (self.subject is None):
            raise ValueError("name the subject of an achievement credential, and none for a CLR")
        return self


class CredentialIssued(BaseModel):
    """A credential as issued: the VC-JWT and where anyone can check it."""

    certificate_number: str
    kind: str
    subject_ref: str
    title: str
    issued_at: datetime
    expires_at: datetime | None
    verify_url: str
    status_list_credential: str
    status_list_index: int
    credential: str = Field(description="the credential as a Compact JWS (VC-JWT)")


class VerificationRequest(Strict):
    """A credential to verify."""

    credential: str = Field(min_length=1, max_length=200_000, description="a VC-JWT")


class VerificationResult(BaseModel):
    """The verdict on a credential, and what the issuer's record says of it."""

    verdict: Literal[
        "valid",
        "revoked",
        "expired",
        "not_yet_valid",
        "tampered",
        "wrong_issuer",
        "malformed",
        "status_unknown",
    ]
    valid: bool
    reason: str
    credential_id: str | None = None
    certificate_number: str | None = None
    title: str | None = None
    holder_masked_name: str | None = None
    issued_at: datetime | None = None
    expires_at: datetime | None = None


class IssuedDocumentPublic(BaseModel):
    """One transcript or credential issued to the learner, and whether it still stands."""

    certificate_number: str
    kind: str
    subject_ref: str
    title: str
    issued_at: datetime
    expires_at: datetime | None
    status: Literal["valid", "revoked", "expired"]
    revoked_at: datetime | None
    revoked_reason: str | None
    verify_url: str
