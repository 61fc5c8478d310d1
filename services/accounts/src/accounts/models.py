"""Import every table module so the metadata is complete (for Alembic and readiness)."""


def load_all() -> None:
    """Register all accounts tables on :data:`accounts.db.metadata`."""
    from accounts.audit import models as _audit  # noqa: F401
    from accounts.auth import models as _auth  # noqa: F401
    from accounts.learners import models as _learners  # noqa: F401
    from accounts.network import models as _network  # noqa: F401
    from accounts.partners import models as _partners  # noqa: F401
    from accounts.staff import models as _staff  # noqa: F401
