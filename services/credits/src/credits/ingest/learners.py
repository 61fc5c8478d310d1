"""Learning account numbers to learner ids and statuses, asked of the accounts service and kept
for a short time, so a stream of batches for the same learners costs no HTTP hop per batch.

The trade-off (docs/decisions.md): an account closed or frozen in the accounts service keeps
being accepted here for at most the time-to-live; one reopened keeps being refused as long.
Unknown numbers are never kept, so a new account can be posted for at once.
"""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable

import httpx

from credits.learners import lookup_learners

Learner = tuple[uuid.UUID, str]  # (learner id, account status)

__all__ = ["Learner", "LearnerDirectory", "lookup_learners"]


class LearnerDirectory:
    """A bounded cache of :func:`lookup_learners` answers, each kept ``ttl_seconds``.

    The accounts service answers every partner with ``records:write`` alike (id and status, no
    personal data), so one cache serves all partners. ``ttl_seconds <= 0`` turns it off.
    """

    def __init__(
        self,
        *,
        ttl_seconds: float,
        max_entries: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, Learner]] = OrderedDict()  # oldest first
        self.lookups = 0  # calls made to the accounts service

    async def resolve(
        self, accounts: httpx.AsyncClient, authorization: str, numbers: Iterable[str]
    ) -> dict[str, Learner]:
        """The learners of ``numbers`` (already upper case) that exist, from cache or asked."""
        now = self._clock()
        found: dict[str, Learner] = {}
        missing: list[str] = []
        for number in sorted(set(numbers)):
            entry = self._entries.get(number)
            if entry is not None and entry[0] > now:
                found[number] = entry[1]
            else:
                missing.append(number)
        if missing:
            self.lookups += 1
            fresh = await lookup_learners(accounts, authorization, missing)
            found.update(fresh)
            if self.ttl_seconds > 0:
                self._keep(fresh, self._clock() + self.ttl_seconds)
        return found

    def _keep(self, fresh: dict[str, Learner], expires_at: float) -> None:
        for number, learner in fresh.items():
            self._entries.pop(number, None)
            self._entries[number] = (expires_at, learner)
        # entries sit in the order they expire: drop the expired, then the oldest over the bound
        now = self._clock()
        while self._entries and (
            len(self._entries) > self.max_entries or next(iter(self._entries.values()))[0] <= now
        ):
            self._entries.popitem(last=False)
