"""Who may see or change what: staff reach their unit and everything under it.

Reads only token claims (``kind``, ``roles``, ``unit_path``), so every service decides alike.
"""

from __future__ import annotations

from kernel.problems import Forbidden
from kernel.roles import READING_STAFF, REVEALING_STAFF, WRITING_STAFF
from kernel.tokens import Principal

__all__ = [
    "READING_STAFF",
    "REVEALING_STAFF",
    "WRITING_STAFF",
    "covers",
    "require_resident",
    "require_staff",
    "staff_path",
]


def staff_path(principal: Principal) -> str | None:
    """The unit path a staff token covers, or None for anyone else."""
    if principal.kind != "staff":
        return None
    path = principal.claims.get("unit_path")
    return path if isinstance(path, str) and path.startswith("/") else None


def covers(principal: Principal, path: str, *, roles: tuple[str, ...] = READING_STAFF) -> bool:
    """Whether a staff principal with one of ``roles`` covers the unit at ``path``."""
    own = staff_path(principal)
    return own is not None and principal.has_role(*roles) and path.startswith(own)


def require_staff(principal: Principal, roles: tuple[str, ...]) -> str:
    """Return the staff principal's unit path, or refuse with 403."""
    own = staff_path(principal)
    if own is None or not principal.has_role(*roles):
        raise Forbidden(
            "Only staff with the right role may do this.",
            detail_zh="只有具有相应权限的工作人员可以执行此操作。",
        )
    return own


def require_resident(principal: Principal) -> str:
    """Return the resident's learning account id, or refuse with 403."""
    if principal.kind != "resident":
        raise Forbidden(
            "Only a resident signed in to their own account may do this.",
            detail_zh="此操作需要居民本人登录。",
        )
    return principal.subject
