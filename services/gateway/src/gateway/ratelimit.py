"""Rate limits per client and per IP: in process on the embedded default, Redis when configured.

Fixed windows from the ``limits`` library. When Redis cannot be reached the request is let
through and the failure logged: a broken limiter must not take the whole API down.
"""

from __future__ import annotations

import logging
import math
import time

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import FixedWindowRateLimiter

from kernel.problems import PROBLEMS, DomainError

log = logging.getLogger("gateway.ratelimit")


class RateLimited(DomainError):
    """Too many requests from this client or address."""

    type = PROBLEMS + "rate-limited"
    status = 429
    title = "Too many requests"


class Limiter:
    """Checks one request against the limits that apply to it."""

    def __init__(
        self,
        *,
        redis_url: str | None,
        per_ip: str,
        per_client: str,
        sign_in: str,
        key_prefix: str = "muye-gateway",
    ) -> None:
        self.storage: Storage = (
            RedisStorage(
                redis_url.replace("redis://", "async+redis://", 1),
                implementation="redispy",
                key_prefix=key_prefix,
            )
            if redis_url
            else MemoryStorage()
        )
        self._limiter = FixedWindowRateLimiter(self.storage)
        self.per_ip: RateLimitItem = parse(per_ip)
        self.per_client: RateLimitItem = parse(per_client)
        self.sign_in: RateLimitItem = parse(sign_in)

    async def check(self, item: RateLimitItem, scope: str, who: str) -> None:
        """Count one request of ``who``; raise :class:`RateLimited` when over the limit."""
        try:
            allowed = await self._limiter.hit(item, scope, who)
            if allowed:
                return
            stats = await self._limiter.get_window_stats(item, scope, who)
        except Exception:  # the limiter's storage failing must not fail the request
            log.exception("rate limiter storage failed; request let through")
            return
        wait = max(1, math.ceil(stats.reset_time - time.time()))
        raise RateLimited(
            f"Too many requests ({item}) for this {scope}; try again in {wait} seconds.",
            detail_zh=f"请求过于频繁，请在 {wait} 秒后重试。",
            headers={"Retry-After": str(wait)},
            limit=str(item),
        )
