"""Import every table module so the metadata is complete (for Alembic and readiness)."""


def load_all() -> None:
    """Register all credits tables on :data:`credits.db.metadata`."""
    from credits.activities import models as _activities  # noqa: F401
    from credits.audit import models as _audit  # noqa: F401
    from credits.catalogue import models as _catalogue  # noqa: F401
    from credits.certification import models as _certification  # noqa: F401
    from credits.conversion import models as _conversion  # noqa: F401
    from credits.credentials import models as _credentials  # noqa: F401
    from credits.incentives import models as _incentives  # noqa: F401
    from credits.ingest import models as _ingest  # noqa: F401
    from credits.ledger import models as _ledger  # noqa: F401
    from credits.records import models as _records  # noqa: F401
    from credits.rules import models as _rules  # noqa: F401
    from credits.statistics import models as _statistics  # noqa: F401
