"""The portfolio's credits parts: each domain's own query, run one after another on one session.

One request and one database connection for the whole of a learner's credits side, instead of
one of each per part: the gateway's portfolio asks for this, and the parts' own routes serve
the pages after the first.
"""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from credits.activities import service as activities
from credits.attendance import service as attendance
from credits.certification import service as certification
from credits.conversion import service as conversion
from credits.ledger import statements
from credits.portfolio.schemas import PortfolioParts
from credits.records import service as records
from kernel.pagination import PageParams

# items of each growing list in the portfolio: an overview; the app pages on for more
FIRST_PAGE = 10
AWARD = "award"


async def parts_of(
    *, session: AsyncSession, learner_id: uuid.UUID, first_page: int = FIRST_PAGE
) -> PortfolioParts:
    """Every credits part of the learner's portfolio; lists that grow come as a first page.

    Awards (表彰) are the approved certifications of outcome type ``award``: district, city,
    provincial and national honours are submitted with evidence, reviewed and credited like any
    other outcome, and there is no separate awards register yet.
    """
    page = PageParams(limit=first_page, cursor=None)
    learner, db = learner_id, session
    kept = await certification.certifications_of(session=db, learner_id=learner)
    return PortfolioParts(
        enrolments=await activities.enrolments_of(session=db, learner_id=learner),
        attendance=await attendance.attendance_of(session=db, learner_id=learner, page=page),
        hours=await records.hours_of(session=db, learner_id=learner),
        recent_records=await records.records_of(session=db, learner_id=learner, page=page),
        credit_balance=await statements.summary_of(session=db, learner_id=learner),
        credit_history=await statements.history_of(session=db, learner_id=learner, page=page),
        certifications=kept,
        conversions=await conversion.conversions_of(session=db, learner_id=learner),
        awards=[c for c in kept if c.outcome_type == AWARD and c.status == "approved"],
    )
