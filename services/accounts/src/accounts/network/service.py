"""Loading the school network from data and reading it back."""

from __future__ import annotations

from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from accounts.audit import service as audit
from accounts.learners.models import LearningAccount
from accounts.network.models import Unit, UnitLevel
from accounts.network.repository import UnitRepository
from accounts.network.schemas import UnitPublic
from kernel.packagedata import read_json
from kernel.problems import PROBLEMS, NotFound


class UnitNotFound(NotFound):
    """No unit has the key asked for."""

    type = PROBLEMS + "unit-not-found"
    title = "Unit not found"


class InvalidNetworkData(ValueError):
    """The network data file is inconsistent (unknown parent or level, duplicate key)."""


def muye_network() -> dict[str, Any]:
    """The Muye network data shipped with the service (see data/SOURCE.md)."""
    return read_json("accounts.network", "data/muye_network.json")


def _ordered(units: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Units with every parent before its children; rejects cycles and unknown parents."""
    by_key = {u["key"]: u for u in units}
    if len(by_key) != len(units):
        raise InvalidNetworkData("duplicate unit keys in network data")
    ordered: list[dict[str, Any]] = []
    placed: set[str] = set()
    pending = list(units)
    while pending:
        progress = [u for u in pending if u.get("parent") is None or u["parent"] in placed]
        if not progress:
            missing = sorted({str(u.get("parent")) for u in pending})
            raise InvalidNetworkData(f"units with unknown or cyclic parents: {missing[:5]}")
        for unit in progress:
            ordered.append(unit)
            placed.add(unit["key"])
        pending = [u for u in pending if u["key"] not in placed]
    return ordered


async def load_network(
    *, session: AsyncSession, data: dict[str, Any], actor: str = "system:network-data"
) -> dict[str, int]:
    """Create or update levels and units from ``data``; running it twice changes nothing.

    A unit placed under another parent gets its new path, and so does every unit under it; the
    residents of each such unit keep a copy of its path (``residence_path``, what lists,
    counts and imports filter on), which is rewritten in the same transaction, and the move is
    audited (``unit.path``, by ``actor``) with the number of accounts it moved. Every level and
    unit created or changed is audited too (``unit.create``, ``unit.update`` with the fields
    before and after: a population is a rate's denominator).
    """
    repo = UnitRepository(session)
    level_codes = set()
    for level in data["levels"]:
        level_codes.add(level["code"])
        existing_level = await session.get(UnitLevel, level["code"])
        wanted = {"name": level["name"], "rank": level["rank"]}
        if existing_level is None:
            session.add(UnitLevel(code=level["code"], **wanted))
            audit.record(
                session,
                actor=actor,
                action="unit_level.create",
                target_type="unit_level",
                target_id=level["code"],
                before=None,
                after=wanted,
            )
        elif (existing_level.name, existing_level.rank) != (level["name"], level["rank"]):
            was = {"name": existing_level.name, "rank": existing_level.rank}
            existing_level.name, existing_level.rank = level["name"], level["rank"]
            audit.record(
                session,
                actor=actor,
                action="unit_level.update",
                target_type="unit_level",
                target_id=level["code"],
                before=was,
                after=wanted,
            )
    await session.flush()

    created = updated = residents_moved = 0
    paths: dict[str, tuple[Unit, str]] = {}
    for raw in _ordered(data["units"]):
        if raw["level"] not in level_codes:
            raise InvalidNetworkData(f"unit {raw['key']} names unknown level {raw['level']}")
        parent = paths.get(raw["parent"]) if raw.get("parent") else None
        path = (parent[1] if parent else "/") + raw["key"] + "/"
        fields = {
            "name": raw["name"],
            "level_code": raw["level"],
            "parent_id": parent[0].id if parent else None,
            "path": path,
            "division_code": raw.get("division_code"),
            "division_name": raw.get("division_name"),
            "population": raw.get("population"),
            "address": raw.get("address"),
            "is_demo": bool(raw.get("demo")),
        }
        unit = await repo.get_by_key(raw["key"])
        shown = _shown(fields, raw.get("parent"))
        if unit is None:
            unit = Unit(key=raw["key"], **fields)
            session.add(unit)
            created += 1
            audit.record(
                session,
                actor=actor,
                action="unit.create",
                target_type="unit",
                target_id=raw["key"],
                before=None,
                after=shown,
            )
        elif any(getattr(unit, name) != value for name, value in fields.items()):
            old_path = unit.path
            was = _shown({name: getattr(unit, name) for name in fields}, _parent_key(unit))
            for name, value in fields.items():
                setattr(unit, name, value)
            updated += 1
            # the population is the participation and registration rates' denominator
            audit.record(
                session,
                actor=actor,
                action="unit.update",
                target_type="unit",
                target_id=raw["key"],
                before=was,
                after=shown,
            )
            if old_path != path:
                residents_moved += await _move_residents(session, unit, old_path, actor=actor)
        paths[raw["key"]] = (unit, path)
        await session.flush()
    return {
        "created": created,
        "updated": updated,
        "total": len(paths),
        "residents_moved": residents_moved,
    }


def _shown(fields: dict[str, Any], parent_key: str | None) -> dict[str, Any]:
    """A unit's fields as the audit trail digests them: the parent by its key."""
    return {**{k: v for k, v in fields.items() if k != "parent_id"}, "parent": parent_key}


def _parent_key(unit: Unit) -> str | None:
    """The key of the unit's parent as it stands (before this load moves it)."""
    segments = unit.path.strip("/").split("/")
    return segments[-2] if len(segments) > 1 else None


async def _move_residents(session: AsyncSession, unit: Unit, old_path: str, *, actor: str) -> int:
    """Give the unit's residents its new path (one statement); audit the move; how many.

    By the residence unit, not by the old path as a prefix: when a unit and one under it both
    move, the prefix of the one under it is no longer what its residents hold once the first
    is rewritten, while each account still names its own unit."""
    moved = await session.execute(
        update(LearningAccount)
        .where(col(LearningAccount.residence_unit_id) == unit.id)
        .where(col(LearningAccount.residence_path) != unit.path)
        .values(residence_path=unit.path)
        .execution_options(synchronize_session="fetch")
    )
    count = int(getattr(moved, "rowcount", 0) or 0)
    audit.record(
        session,
        actor=actor,
        action="unit.path",
        target_type="unit",
        target_id=unit.key,
        before={"path": old_path},
        after={"path": unit.path, "residents_moved": count},
    )
    return count


def to_public(unit: Unit, parent_key: str | None) -> UnitPublic:
    """The API view of a unit."""
    return UnitPublic(
        id=unit.id,
        key=unit.key,
        name=unit.name,
        level=unit.level_code,
        parent_key=parent_key,
        path=unit.path,
        division_code=unit.division_code,
        division_name=unit.division_name,
        population=unit.population,
        status=unit.status,
        is_demo=unit.is_demo,
    )
