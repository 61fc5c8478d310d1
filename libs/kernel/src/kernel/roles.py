"""Role names carried in access tokens: the contract between the issuer and every checker."""

from __future__ import annotations

LEARNING_POINT_STAFF = "learning_point_staff"
SCHOOL_STAFF = "school_staff"
COLLEGE_STAFF = "college_staff"
AUDITOR = "auditor"
DISTRICT_ADMIN = "district_admin"
RESIDENT = "resident"
PARTNER = "partner"

STAFF_ROLES = (LEARNING_POINT_STAFF, SCHOOL_STAFF, COLLEGE_STAFF, AUDITOR, DISTRICT_ADMIN)
WRITING_STAFF = (LEARNING_POINT_STAFF, SCHOOL_STAFF, COLLEGE_STAFF, DISTRICT_ADMIN)
READING_STAFF = (*WRITING_STAFF, AUDITOR)
REVEALING_STAFF = (COLLEGE_STAFF, DISTRICT_ADMIN)
PARTNER_MANAGERS = (COLLEGE_STAFF, DISTRICT_ADMIN)
