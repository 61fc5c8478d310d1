"""Rate limits per client and per IP: in process on the embedded default, Redis when configured.

Fixed windows, as the ``limits`` library counts them: a window starts with its first hit and
lasts the limit's period. In process the counting is ``limits``' own memory storage. With Redis
every limit a request is under, and anything else the request needs from Redis (a resident's
portfolio generation), is one script call: one round trip a request instead of one a limit
(three on a resident's portfolio read). ``limits`` counts one item a call and redis-py spends
about 60 us of CPU on each, so the three cost 177 us of the gateway's CPU against 57 us for the
script (measured with 50 concurrent callers on uvloop); the keys and windows stay ``limits``'.

When Redis cannot be reached the request is let through and the failure logged: a broken
limiter must not take the whole API down.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import FixedWindowRateLimiter

from kernel.problems import PROBLEMS, DomainError

log = logging.getLogger("gateway.ratelimit")

# KEYS: the windows' counters, then the keys to read; ARGV[1]: how many counters, then each
# counter's window in milliseconds. Answers each counter's count and milliseconds left, then
# each read key's value (false, a nil reply, where it has none).
COUNT_AND_READ = """
local counters = tonumber(ARGV[1])
local out = {}
for i = 1, counters do
  local n = redis.call('INCR', KEYS[i])
  if n == 1 then redis.call('PEXPIRE', KEYS[i], ARGV[i + 1]) end
  out[#out + 1] = n
  out[#out + 1] = redis.call('PTTL', KEYS[i])
end
for i = counters + 1, #KEYS do
  out[#out + 1] = redis.call('GET', KEYS[i]) or false
end
return out
"""


class RateLimited(DomainError):
    """Too many requests from this client or address."""

    type = PROBLEMS + "rate-limited"
    status = 429
    title = "Too many requests"


@dataclass(frozen=True, slots=True)
class Hit:
    """One request counted against one limit for one caller (``scope`` names the kind)."""

    item: RateLimitItem
    scope: str
    who: str


class Limiter:
    """Counts each request against the limits that apply to it."""

    def __init__(
        self,
        *,
        redis_url: str | None,
        per_ip: str,
        per_client: str,
        sign_in: str,
        key_prefix: str = "muye-gateway",
    ) -> None:
        self._prefix = key_prefix
        self._redis: aioredis.Redis | None = None
        if redis_url:
            self._redis = aioredis.Redis.from_url(
                redis_url, socket_timeout=1.0, socket_connect_timeout=1.0
            )
            self._script = self._redis.register_script(COUNT_AND_READ)
        self._memory = FixedWindowRateLimiter(MemoryStorage())
        self.per_ip: RateLimitItem = parse(per_ip)
        self.per_client: RateLimitItem = parse(per_client)
        self.sign_in: RateLimitItem = parse(sign_in)

    async def hit(self, hits: Sequence[Hit], *, read: Sequence[str] = ()) -> list[Any]:
        """Count one request under every limit in ``hits``.

        Returns the values of the Redis keys in ``read`` (None for a key without one), read in
        the same round trip; an empty list in process, or when Redis failed and the request was
        let through. Raises :class:`RateLimited` for the first limit the request is over.
        """
        if self._redis is None:
            for hit in hits:
                await self._hit_in_process(hit)
            return []
        try:
            answer = await self._script(
                keys=[self._key(hit) for hit in hits] + list(read),
                args=[len(hits), *(hit.item.get_expiry() * 1000 for hit in hits)],
            )
        except Exception:  # the limiter's storage failing must not fail the request
            log.exception("rate limiter storage failed; request let through")
            return []
        for index, hit in enumerate(hits):
            count, left_ms = int(answer[2 * index]), int(answer[2 * index + 1])
            if count > hit.item.amount:
                raise _limited(hit, max(1, math.ceil(left_ms / 1000)))
        return list(answer[2 * len(hits) :])

    async def _hit_in_process(self, hit: Hit) -> None:
        if await self._memory.hit(hit.item, hit.scope, hit.who):
            return
        stats = await self._memory.get_window_stats(hit.item, hit.scope, hit.who)
        raise _limited(hit, max(1, math.ceil(stats.reset_time - time.time())))

    def _key(self, hit: Hit) -> str:
        # the key limits' own Redis storage would use, under our prefix
        return f"{self._prefix}:{hit.item.key_for(hit.scope, hit.who)}"

    async def close(self) -> None:
        """Let the Redis connections go."""
        if self._redis is not None:
            await self._redis.aclose()


def _limited(hit: Hit, wait: int) -> RateLimited:
    return RateLimited(
        f"Too many requests ({hit.item}) for this {hit.scope}; try again in {wait} seconds.",
        detail_zh=f"请求过于频繁，请在 {wait} 秒后重试。",
        headers={"Retry-After": str(wait)},
        limit=str(hit.item),
    )
