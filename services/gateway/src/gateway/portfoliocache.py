"""A resident's own portfolio kept ready for a few seconds (the e-portfolio's hot path).

Composing a portfolio costs about 18 ms of CPU across the three processes (the credits
service's parts are most of it), so on two cores fifty residents at once queue behind each
other; and a resident who opens the app reads theirs several times a minute. So the gateway
keeps the answer it composed:

- **What is kept.** A resident's own portfolio (``/api/v1/me/portfolio``) when it is complete
  and nothing in it waits for settlement (a portfolio that says it is about to change is not
  worth keeping); for at most ``ttl`` seconds (``GATEWAY_PORTFOLIO_CACHE_SECONDS``, 0 turns
  the cache off), at most ``max_entries`` of them, the least recently read let go first.
  Staff and auditors' views are never kept: whether they may see the learner is asked anew
  each time.
- **What makes it fresh.** Every write the resident makes through the gateway (any POST, PUT,
  PATCH or DELETE with their token) moves their *generation* once it is answered (or fails).
  An answer serves only reads under the generation its composition began in, so neither a
  kept answer nor one composed while the write was under way serves a read after it: a
  resident always sees their own writes. With Redis the generation is shared by every gateway
  process; without it (the embedded default, one process) it lives in the process. Writes by
  others (staff entering attendance, a partner's hours) show within ``ttl`` seconds: the
  ledger settles those asynchronously anyway.
- **No stall at expiry.** A read in the last fifth of an answer's life serves it and composes
  a new one in the background; concurrent misses for one resident share one composition.
- **Failure.** When the generation cannot be read the portfolio is composed and not kept; when
  it cannot be moved the local copy is still dropped and the failure logged (other gateway
  processes then serve theirs for at most ``ttl`` seconds).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import redis.asyncio as aioredis
from pydantic_core import to_json

log = logging.getLogger("gateway.portfoliocache")

REFRESH_AFTER = 0.8  # of the time to live: a read after this composes the next answer early
GENERATION_KEY_SECONDS = 86_400  # a shared generation outlives every kept answer by far

Compose = Callable[[], Awaitable[dict[str, Any]]]


class Generations(Protocol):
    """Where each resident's generation is kept."""

    async def current(self, subject: str) -> str: ...

    async def move(self, subject: str) -> None: ...


class LocalGenerations:
    """Generations in this process (the embedded default runs one gateway process).

    A subject is forgotten once ``limit`` others have written since; its kept answer was
    dropped when it wrote, so forgetting it can never revive a stale one.
    """

    def __init__(self, limit: int = 100_000) -> None:
        self._clock = itertools.count(1)
        self._marks: OrderedDict[str, int] = OrderedDict()
        self._limit = limit

    async def current(self, subject: str) -> str:
        return str(self._marks.get(subject, 0))

    async def move(self, subject: str) -> None:
        self._marks[subject] = next(self._clock)
        self._marks.move_to_end(subject)
        while len(self._marks) > self._limit:
            self._marks.popitem(last=False)


class RedisGenerations:
    """Generations shared by every gateway process through Redis (one counter per resident)."""

    def __init__(self, url: str, prefix: str) -> None:
        self._redis = aioredis.Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)
        self._prefix = prefix

    def key(self, subject: str) -> str:
        """The Redis key of the subject's generation (the gateway reads it with the rate limits)."""
        return f"{self._prefix}:portfolio-generation:{subject}"

    @staticmethod
    def text(value: Any) -> str:
        """A generation as Redis answered it (bytes, or None before the first write)."""
        if isinstance(value, bytes):
            return value.decode()
        return "0" if value is None else str(value)

    async def current(self, subject: str) -> str:
        return self.text(await self._redis.get(self.key(subject)))

    async def move(self, subject: str) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            key = self.key(subject)
            pipe.incr(key)
            pipe.expire(key, GENERATION_KEY_SECONDS)
            await pipe.execute()

    async def close(self) -> None:
        await self._redis.aclose()


@dataclass(slots=True)
class _Entry:
    generation: str
    stored: float  # time.monotonic()
    body: bytes


@dataclass(slots=True)
class _Flight:
    generation: str
    task: asyncio.Task[bytes]


def keepable(document: dict[str, Any]) -> bool:
    """Complete, and not about to change: nothing in it waits for the ledger to settle."""
    balance = document.get("credit_balance")
    pending = isinstance(balance, dict) and bool(balance.get("settlement_pending"))
    return document.get("complete") is True and not pending


class PortfolioCache:
    """Residents' composed portfolios, by subject, each under the generation it was made in."""

    def __init__(
        self,
        generations: Generations,
        *,
        ttl_seconds: float,
        max_entries: int,
        count: Callable[[str], None] = lambda _outcome: None,
    ) -> None:
        self.generations = generations
        self.ttl = ttl_seconds
        self.max_entries = max_entries
        self._count = count
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._flights: dict[str, _Flight] = {}
        self._background: set[asyncio.Task[bytes]] = set()

    @property
    def enabled(self) -> bool:
        return self.ttl > 0 and self.max_entries > 0

    def shared_key(self, subject: str) -> str | None:
        """The Redis key of the subject's generation, when generations are kept there and the
        cache is on: the gateway reads it in the same round trip as the request's rate limits
        and hands it to :meth:`read`."""
        if self.enabled and isinstance(self.generations, RedisGenerations):
            return self.generations.key(subject)
        return None

    async def read(
        self, subject: str, compose: Compose, *, generation: str | None = None
    ) -> tuple[bytes, int | None]:
        """The portfolio's JSON and, when it was kept, its age in whole seconds.

        ``generation`` is the subject's generation when the caller has already read it (after
        the request arrived, so after every write the resident has had an answer to); without
        it the generation is read here.
        """
        if not self.enabled:
            return to_json(await compose()), None
        try:
            if generation is None:
                generation = await self.generations.current(subject)
        except Exception:  # the store failing must not fail the read: compose, keep nothing
            log.exception("portfolio generation unreadable; composed without the cache")
            self._count("bypass")
            return to_json(await compose()), None
        now = time.monotonic()
        entry = self._entries.get(subject)
        if entry is not None and entry.generation == generation and now - entry.stored < self.ttl:
            self._entries.move_to_end(subject)
            if now - entry.stored >= self.ttl * REFRESH_AFTER and subject not in self._flights:
                self._count("refresh")
                self._background.add(task := self._launch(subject, generation, compose))
                task.add_done_callback(self._settled)
            self._count("hit")
            return entry.body, int(now - entry.stored)
        flight = self._flights.get(subject)
        if flight is not None and flight.generation == generation:
            self._count("joined")
            return await asyncio.shield(flight.task), None
        self._count("miss")
        return await asyncio.shield(self._launch(subject, generation, compose)), None

    async def forget(self, subject: str) -> None:
        """The subject wrote: move their generation everywhere (and free what is kept here).

        What was kept, or is being composed, under the old generation serves no later read.
        """
        self._entries.pop(subject, None)
        try:
            await self.generations.move(subject)
        except Exception:
            log.exception("portfolio generation not moved; other gateways keep theirs for a while")

    def _launch(self, subject: str, generation: str, compose: Compose) -> asyncio.Task[bytes]:
        task = asyncio.get_running_loop().create_task(self._compose(subject, generation, compose))
        self._flights[subject] = _Flight(generation, task)
        return task

    async def _compose(self, subject: str, generation: str, compose: Compose) -> bytes:
        try:
            document = await compose()
            body = to_json(document)
            # kept under the generation the reading began in, unless a composition under a
            # newer one has begun since (an older answer must not push out a newer one)
            if keepable(document) and self._current_flight(subject):
                self._entries[subject] = _Entry(generation, time.monotonic(), body)
                self._entries.move_to_end(subject)
                while len(self._entries) > self.max_entries:
                    self._entries.popitem(last=False)
            return body
        finally:
            if self._current_flight(subject):
                del self._flights[subject]

    def _current_flight(self, subject: str) -> bool:
        """Whether the running task is the subject's newest composition."""
        flight = self._flights.get(subject)
        return flight is not None and flight.task is asyncio.current_task()

    def _settled(self, task: asyncio.Task[bytes]) -> None:
        """A background composition ended: nobody awaits it, so its failure is logged here."""
        self._background.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            log.error("portfolio composed in the background failed", exc_info=error)

    async def close(self) -> None:
        for task in list(self._background):
            task.cancel()
        if isinstance(self.generations, RedisGenerations):
            await self.generations.close()
