"""Partner batch bodies into records: one parse of the raw bytes for a clean batch, item by
item only when something in it is wrong, so each bad item gets its own reasons."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from pydantic import TypeAdapter, ValidationError

from credits.ingest.schemas import MAX_BATCH, Batch, ItemError, ItemResult, PartnerRecord
from kernel.problems import PROBLEMS, DomainError
from kernel.text import CONTROL_FREE

_batch = TypeAdapter(Batch)
_item = TypeAdapter(PartnerRecord)


class InvalidBatch(DomainError):
    """The body is not a batch at all (items are judged one by one, the envelope is not)."""

    type = PROBLEMS + "invalid-batch"
    status = 422
    title = "Invalid batch"


class BatchTooLarge(DomainError):
    """More items than one request may carry. Counted here, where the body is parsed anyway:
    the gateway caps the bytes and never parses (see docs/decisions.md)."""

    type = PROBLEMS + "batch-too-large"
    status = 422
    title = "Batch too large"


@dataclass
class ParsedBatch:
    """The items of one body: the well-formed ones by index, the refused ones as results."""

    size: int
    records: dict[int, PartnerRecord] = field(default_factory=dict)
    refused: list[ItemResult] = field(default_factory=list)


def parse_batch(body: bytes) -> ParsedBatch:
    """Validate a batch body; raise :class:`InvalidBatch` when it is not a batch at all.

    Items repeating an earlier item's ``id`` are refused here too.
    """
    try:
        records = _batch.validate_json(body).records
    except ValidationError:  # something is wrong: find what, item by item
        return _refuse_repeats(parse_items(_envelope_items(body)))
    return _refuse_repeats(ParsedBatch(size=len(records), records=dict(enumerate(records))))


def _envelope_items(body: bytes) -> list[Any]:
    try:
        envelope = json.loads(body)
    except ValueError:
        raise InvalidBatch("The body is not JSON.") from None
    except RecursionError:
        raise InvalidBatch("The body nests too deeply to be a batch.") from None
    items = envelope.get("records") if isinstance(envelope, dict) else None
    if not isinstance(items, list) or not items:
        raise InvalidBatch('The body must be {"records": [...]} with at least one record.')
    if len(items) > MAX_BATCH:
        raise BatchTooLarge(
            f"At most {MAX_BATCH} records a request; this one has {len(items)}."
            " Send them in smaller batches.",
            detail_zh=f"每次最多提交 {MAX_BATCH} 条记录，本次 {len(items)} 条，请分批提交。",
            max_items=MAX_BATCH,
            items=len(items),
        )
    return items


def parse_items(items: list[Any]) -> ParsedBatch:
    """Validate records one by one (already decoded JSON, e.g. mapped xAPI statements)."""
    parsed = ParsedBatch(size=len(items))
    for index, raw in enumerate(items):
        try:
            parsed.records[index] = _item.validate_python(raw)
        except ValidationError as exc:
            parsed.refused.append(
                ItemResult(index=index, id=_given_id(raw), status="rejected", errors=_errors(exc))
            )
    return parsed


def _refuse_repeats(parsed: ParsedBatch) -> ParsedBatch:
    seen: dict[str, int] = {}
    for index, item in list(parsed.records.items()):
        first = seen.setdefault(item.id, index)
        if first != index:
            parsed.refused.append(
                ItemResult(
                    index=index,
                    id=item.id,
                    status="rejected",
                    errors=[ItemError(field="id", reason=f"repeats item {first} of this batch")],
                )
            )
            del parsed.records[index]
    return parsed


def _given_id(raw: Any) -> str | None:
    return raw.get("id") if isinstance(raw, dict) and isinstance(raw.get("id"), str) else None


def _errors(exc: ValidationError) -> list[ItemError]:
    return [
        ItemError(field=".".join(str(p) for p in e["loc"]) or "item", reason=_reason(e))
        for e in exc.errors()
    ]


def _reason(error: Any) -> str:
    # the no-control-characters pattern (kernel.text.CONTROL_FREE) said in words
    if error["type"] == "string_pattern_mismatch" and error.get("ctx", {}).get("pattern") == (
        CONTROL_FREE
    ):
        return "control characters (NUL, zero-width or direction marks) are not allowed"
    if error["type"] == "greater_than_equal" and error["loc"][-1:] == ("minutes",):
        return "at least one whole minute: a stretch of less is no learning"
    return str(error["msg"])
