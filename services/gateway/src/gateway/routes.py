"""The gateway's route table: every public route, its upstream and who may call it.

Denied by default: a path that is not in this table is 404 and never reaches a service.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from kernel import roles
from kernel.roles import PARTNER_MANAGERS, READING_STAFF, REVEALING_STAFF, WRITING_STAFF

PUBLIC = "public"
AUTHENTICATED = "authenticated"
# the upstream of a route the gateway answers itself, from parts it fetches from the services
COMPOSED = "gateway"


@dataclass(frozen=True)
class Route:
    """One public route.

    ``access`` is ``PUBLIC``, ``AUTHENTICATED`` (any valid token) or a tuple of roles.
    ``upstream`` is a service's name, or ``COMPOSED`` for what the gateway composes itself.
    """

    methods: tuple[str, ...]
    template: str
    upstream: str
    access: str | tuple[str, ...]
    max_body_bytes: int | None = None  # None: the gateway's default limit
    pattern: re.Pattern[str] = field(init=False, compare=False)

    def __post_init__(self) -> None:
        regex = re.sub(
            r"\{([a-z_]+)\}",
            r"(?P<\1>[^/]+)",
            re.escape(self.template).replace(r"\{", "{").replace(r"\}", "}"),
        )
        object.__setattr__(self, "pattern", re.compile(f"^{regex}$"))

    def parameters(self, path: str) -> dict[str, str]:
        """The values of the template's ``{names}`` in ``path`` (a path this route matches)."""
        found = self.pattern.match(path)
        assert found is not None, path
        return found.groupdict()


RESIDENT_ONLY = (roles.RESIDENT,)
LEDGER_KEEPERS = (roles.COLLEGE_STAFF, roles.DISTRICT_ADMIN)
LEDGER_AUDITORS = (roles.AUDITOR, roles.COLLEGE_STAFF, roles.DISTRICT_ADMIN)
# the audit trails and the credit audit: auditors and the district administrator, not the
# college that grants the credits being audited
AUDIT_READERS = (roles.AUDITOR, roles.DISTRICT_ADMIN)

ROUTES: tuple[Route, ...] = (
    # the e-portfolio (终身学习电子档案), composed here from both services' parts
    Route(("GET",), "/api/v1/me/portfolio", COMPOSED, RESIDENT_ONLY),
    # staff and auditors covering the learner; a resident only their own (accounts decides)
    Route(
        ("GET",),
        "/api/v1/learners/{learner_id}/portfolio",
        COMPOSED,
        (*READING_STAFF, roles.RESIDENT),
    ),
    Route(("POST",), "/auth/token", "accounts", PUBLIC),
    Route(("POST",), "/auth/revoke", "accounts", PUBLIC),
    Route(("GET",), "/.well-known/jwks.json", "accounts", PUBLIC),
    Route(("GET",), "/api/v1/unit-levels", "accounts", PUBLIC),
    Route(("GET",), "/api/v1/units", "accounts", PUBLIC),
    Route(("GET",), "/api/v1/units/{key}", "accounts", PUBLIC),
    # registrations of a unit's residents (counts): staff covering it, auditors, district admins
    Route(("GET",), "/api/v1/units/{key}/registrations", "accounts", READING_STAFF),
    Route(("GET",), "/api/v1/me", "accounts", AUTHENTICATED),
    Route(("GET",), "/api/v1/me/account", "accounts", RESIDENT_ONLY),
    Route(("POST",), "/api/v1/learning-accounts", "accounts", WRITING_STAFF),
    Route(
        ("POST",), "/api/v1/learning-accounts/lookup", "accounts", (*READING_STAFF, roles.PARTNER)
    ),
    Route(("GET",), "/api/v1/learning-accounts", "accounts", READING_STAFF),
    Route(
        ("POST",),
        "/api/v1/learning-accounts/imports",
        "accounts",
        WRITING_STAFF,
        max_body_bytes=20_000_000,
    ),
    # owner or covering staff: the service decides which account the caller may see
    Route(
        ("GET",),
        "/api/v1/learning-accounts/{account_id}",
        "accounts",
        (*READING_STAFF, roles.RESIDENT),
    ),
    Route(("PATCH",), "/api/v1/learning-accounts/{account_id}", "accounts", WRITING_STAFF),
    Route(("POST",), "/api/v1/learning-accounts/{account_id}/status", "accounts", WRITING_STAFF),
    Route(("POST",), "/api/v1/learning-accounts/{account_id}/reveal", "accounts", REVEALING_STAFF),
    Route(("POST",), "/api/v1/partner-clients", "accounts", PARTNER_MANAGERS),
    Route(("POST",), "/api/v1/partner-clients/{client_id}/secret", "accounts", PARTNER_MANAGERS),
    Route(("POST",), "/api/v1/staff", "accounts", PARTNER_MANAGERS),
    Route(("GET",), "/api/v1/staff", "accounts", (*PARTNER_MANAGERS, roles.AUDITOR)),
    Route(("GET",), "/api/v1/categories", "credits", PUBLIC),
    Route(("POST",), "/api/v1/activities", "credits", WRITING_STAFF),
    Route(("GET",), "/api/v1/activities", "credits", AUTHENTICATED),
    Route(("GET",), "/api/v1/activities/{activity_id}", "credits", AUTHENTICATED),
    # a resident enrols themselves; staff covering the host unit enrol a resident by number
    Route(
        ("POST",),
        "/api/v1/activities/{activity_id}/enrolments",
        "credits",
        (roles.RESIDENT, *WRITING_STAFF),
    ),
    # before the staff route below: "me" would match {account_number} too, and first match wins
    Route(("DELETE",), "/api/v1/activities/{activity_id}/enrolments/me", "credits", RESIDENT_ONLY),
    Route(
        ("DELETE",),
        "/api/v1/activities/{activity_id}/enrolments/{account_number}",
        "credits",
        WRITING_STAFF,
    ),
    Route(("GET",), "/api/v1/me/enrolments", "credits", RESIDENT_ONLY),
    Route(("POST",), "/api/v1/sessions/{session_id}/check-in-code", "credits", WRITING_STAFF),
    Route(("POST",), "/api/v1/sessions/{session_id}/check-in", "credits", RESIDENT_ONLY),
    Route(("POST",), "/api/v1/sessions/{session_id}/check-out", "credits", RESIDENT_ONLY),
    # staff covering the host unit enter a whole session's attendance (the service checks cover)
    Route(("POST",), "/api/v1/sessions/{session_id}/attendance", "credits", WRITING_STAFF),
    Route(
        ("POST",),
        "/api/v1/sessions/{session_id}/attendance/imports",
        "credits",
        WRITING_STAFF,
        max_body_bytes=6_000_000,  # a sheet of at most 5 MB (the service's limit), in a form
    ),
    Route(("GET",), "/api/v1/me/attendance", "credits", RESIDENT_ONLY),
    Route(("GET",), "/api/v1/me/records", "credits", RESIDENT_ONLY),
    Route(("GET",), "/api/v1/me/hours", "credits", RESIDENT_ONLY),
    # one learner's parts: staff covering the learner (the service asks accounts) and auditors
    Route(("GET",), "/api/v1/learners/{learner_id}/enrolments", "credits", READING_STAFF),
    Route(("GET",), "/api/v1/learners/{learner_id}/attendance", "credits", READING_STAFF),
    Route(("GET",), "/api/v1/learners/{learner_id}/records", "credits", READING_STAFF),
    Route(("GET",), "/api/v1/learners/{learner_id}/hours", "credits", READING_STAFF),
    Route(("GET",), "/api/v1/learning-records", "credits", READING_STAFF),
    Route(
        ("POST",),
        "/api/v1/learning-records/{record_id}/status",
        "credits",
        (roles.SCHOOL_STAFF, roles.COLLEGE_STAFF, roles.DISTRICT_ADMIN),
    ),
    # credit rules (public policy) and the ledger
    Route(("GET",), "/api/v1/rule-versions", "credits", PUBLIC),
    Route(("GET",), "/api/v1/rule-versions/{version_id}", "credits", PUBLIC),
    Route(("POST",), "/api/v1/rule-versions", "credits", LEDGER_KEEPERS),
    Route(("POST",), "/api/v1/rule-versions/{version_id}/publish", "credits", LEDGER_KEEPERS),
    Route(("GET",), "/api/v1/me/credits", "credits", RESIDENT_ONLY),
    Route(("GET",), "/api/v1/me/credit-history", "credits", RESIDENT_ONLY),
    # staff covering the learner (the service asks accounts) and auditors
    Route(("GET",), "/api/v1/learners/{learner_id}/credits", "credits", READING_STAFF),
    Route(("GET",), "/api/v1/learners/{learner_id}/credit-history", "credits", READING_STAFF),
    Route(
        ("GET",),
        "/api/v1/credit-transactions/{transaction_id}",
        "credits",
        (*READING_STAFF, roles.RESIDENT),
    ),
    Route(("POST",), "/api/v1/ledger/settlements", "credits", LEDGER_KEEPERS),
    Route(("POST",), "/api/v1/ledger/expiry-runs", "credits", LEDGER_KEEPERS),
    Route(("GET",), "/api/v1/ledger/reconciliation", "credits", LEDGER_AUDITORS),
    # the credit audit (学分审计): samples with evidence chains, one entry's chain, a unit's
    # reconciliation; the service checks the unit is within the auditor's
    Route(("GET",), "/api/v1/credit-audits/sample", "credits", AUDIT_READERS),
    Route(("GET",), "/api/v1/credit-audits/entries/{transaction_id}", "credits", AUDIT_READERS),
    Route(("GET",), "/api/v1/credit-audits/reconciliation/{unit}", "credits", AUDIT_READERS),
    # each service's hash-chained audit trail: auditors and the district administrator only
    # (the services check again and write every query, a refused one too, to the trail)
    Route(("GET",), "/api/v1/audit/accounts/entries", "accounts", AUDIT_READERS),
    Route(("GET",), "/api/v1/audit/accounts/verify", "accounts", AUDIT_READERS),
    Route(("GET",), "/api/v1/audit/credits/entries", "credits", AUDIT_READERS),
    Route(("GET",), "/api/v1/audit/credits/verify", "credits", AUDIT_READERS),
    # certification of outcomes from elsewhere: residents and staff submit, the college reviews
    Route(("GET",), "/api/v1/certification-standards", "credits", PUBLIC),
    Route(("POST",), "/api/v1/certifications", "credits", (*WRITING_STAFF, roles.RESIDENT)),
    Route(("GET",), "/api/v1/certifications", "credits", READING_STAFF),
    Route(("GET",), "/api/v1/me/certifications", "credits", RESIDENT_ONLY),
    Route(("GET",), "/api/v1/learners/{learner_id}/certifications", "credits", READING_STAFF),
    Route(
        ("GET",),
        "/api/v1/certifications/{certification_id}",
        "credits",
        (*READING_STAFF, roles.RESIDENT),
    ),
    Route(
        ("POST",),
        "/api/v1/certifications/{certification_id}/evidence",
        "credits",
        (*WRITING_STAFF, roles.RESIDENT),
        max_body_bytes=6_000_000,  # one file of at most 5 MB, with the multipart framing
    ),
    Route(
        ("GET",),
        "/api/v1/certifications/{certification_id}/evidence/{evidence_id}",
        "credits",
        (*READING_STAFF, roles.RESIDENT),
    ),
    Route(("POST",), "/api/v1/certifications/{certification_id}/review", "credits", LEDGER_KEEPERS),
    # conversion: residents apply, the college decides, either cancels within the window
    Route(("GET",), "/api/v1/conversion-targets", "credits", PUBLIC),
    Route(("POST",), "/api/v1/conversions", "credits", RESIDENT_ONLY),
    Route(("GET",), "/api/v1/me/conversions", "credits", RESIDENT_ONLY),
    Route(("GET",), "/api/v1/learners/{learner_id}/conversions", "credits", READING_STAFF),
    Route(("GET",), "/api/v1/conversions", "credits", READING_STAFF),
    Route(("POST",), "/api/v1/conversions/{conversion_id}/decision", "credits", LEDGER_KEEPERS),
    Route(
        ("POST",),
        "/api/v1/conversions/{conversion_id}/cancel",
        "credits",
        (*LEDGER_KEEPERS, roles.RESIDENT),
    ),
    # volunteer points (seed 001): staff enter service, the college sets each unit's cap
    Route(("POST",), "/api/v1/volunteer-service", "credits", WRITING_STAFF),
    Route(("GET",), "/api/v1/me/volunteer-service", "credits", RESIDENT_ONLY),
    Route(("PUT",), "/api/v1/unit-assessments/{unit}/{year}", "credits", LEDGER_KEEPERS),
    # statistics (统计) and learning star candidates, as JSON or .xlsx/.csv: staff of the unit or
    # above it (the services check the unit), auditors and district administrators any unit
    Route(("GET",), "/api/v1/statistics/{unit}", "credits", READING_STAFF),
    Route(("GET",), "/api/v1/statistics/{unit}/learning-stars", "credits", READING_STAFF),
    # e-portfolio outputs: a resident's own transcript and credentials, or staff covering the
    # learner (the service asks accounts); keys, status lists and verification are public
    Route(("POST",), "/api/v1/me/transcripts", "credits", RESIDENT_ONLY),
    Route(("POST",), "/api/v1/learners/{learner_id}/transcripts", "credits", WRITING_STAFF),
    Route(("POST",), "/api/v1/me/credentials", "credits", RESIDENT_ONLY),
    Route(("GET",), "/api/v1/me/documents", "credits", RESIDENT_ONLY),
    Route(("GET",), "/api/v1/learners/{learner_id}/documents", "credits", READING_STAFF),
    Route(("POST",), "/api/v1/learners/{learner_id}/credentials", "credits", WRITING_STAFF),
    Route(("GET",), "/.well-known/credential-keys.json", "credits", PUBLIC),
    Route(("GET",), "/credentials/status/{list_number}", "credits", PUBLIC),
    Route(
        ("POST",),
        "/api/v1/credential-verifications",
        "credits",
        PUBLIC,
        max_body_bytes=250_000,  # one VC-JWT of at most 200 KB, in JSON
    ),
    Route(("GET",), "/verify/{certificate_number}", "credits", PUBLIC),
    Route(
        ("POST",),
        "/api/v1/learning-records:batch",
        "credits",
        (roles.PARTNER,),
        max_body_bytes=4_000_000,  # 1,000 records of about 400 bytes, with room
    ),
    Route(
        ("POST",),
        "/api/v1/xapi/statements",
        "credits",
        (roles.PARTNER,),
        max_body_bytes=8_000_000,  # 1,000 statements of a few kilobytes each
    ),
)


def match(method: str, path: str) -> tuple[Route | None, bool]:
    """Find the route for ``method`` and ``path``; the flag says whether the path exists at all.

    HEAD matches nothing: the services answer it 405, so the gateway does not admit it either.
    """
    path_known = False
    for route in ROUTES:
        if route.pattern.match(path):
            path_known = True
            if method in route.methods:
                return route, True
    return None, path_known


def methods_on(path: str) -> list[str]:
    """The methods the routes matching ``path`` take, for a 405's ``Allow`` header."""
    methods = {method for route in ROUTES if route.pattern.match(path) for method in route.methods}
    return sorted(methods)
