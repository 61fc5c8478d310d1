"""The limiter on its own: in process, through a real Redis (counts, windows and the keys it reads
in the same round trip), and with Redis gone.

(The limits as a client meets them, 429 and Retry-After through a running gateway, are tested in
tests/test_e2e_gateway.py.)
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from gateway.ratelimit import Hit, Limiter, RateLimited
from testkit.postgres import free_port
from testkit.redis import REDIS_URL, redis_answers

needs_redis = pytest.mark.skipif(not redis_answers(), reason="no Redis at 127.0.0.1:6379")


def _limiter(redis_url: str | None, prefix: str, per_ip: str = "3/minute") -> Limiter:
    return Limiter(
        redis_url=redis_url,
        per_ip=per_ip,
        per_client="2/minute",
        sign_in="1/minute",
        key_prefix=prefix,
    )


@pytest.fixture
async def prefix() -> AsyncIterator[str]:
    """A key prefix of this test's own, its keys removed afterwards."""
    name = f"test-{uuid.uuid4().hex}"
    yield name
    if redis_answers():
        client = aioredis.Redis.from_url(REDIS_URL)
        keys = [key async for key in client.scan_iter(f"{name}:*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


async def test_in_process_the_request_over_a_limit_is_refused_with_the_wait() -> None:
    limiter = _limiter(None, "unused")
    address = Hit(limiter.per_ip, "address", "10.0.0.1")
    for _ in range(3):
        assert await limiter.hit([address]) == []
    with pytest.raises(RateLimited) as refused:
        await limiter.hit([address])
    assert 1 <= int(refused.value.response_headers["Retry-After"]) <= 60
    assert "address" in str(refused.value)
    await limiter.hit([Hit(limiter.per_ip, "address", "10.0.0.2")])  # another address is apart


@needs_redis
async def test_two_limiters_on_one_redis_count_together(prefix: str) -> None:
    one, other = _limiter(REDIS_URL, prefix), _limiter(REDIS_URL, prefix)
    try:
        address = Hit(one.per_ip, "address", "10.0.0.1")
        await one.hit([address])
        await other.hit([address])
        await one.hit([address])
        with pytest.raises(RateLimited) as refused:
            await other.hit([address])
        assert 1 <= int(refused.value.response_headers["Retry-After"]) <= 60
        assert refused.value.extensions["limit"] == "3 per 1 minute"
    finally:
        await one.close()
        await other.close()


@needs_redis
async def test_every_limit_of_a_request_counts_and_the_first_one_over_is_named(
    prefix: str,
) -> None:
    limiter = _limiter(REDIS_URL, prefix, per_ip="100/minute")
    try:
        hits = [Hit(limiter.per_ip, "address", "10.0.0.1"), Hit(limiter.per_client, "client", "c")]
        await limiter.hit(hits)
        await limiter.hit(hits)
        with pytest.raises(RateLimited) as refused:
            await limiter.hit(hits)  # the client's third in a minute; the address is far from it
        assert "client" in str(refused.value)
        # another client from the same address is under its own limit
        await limiter.hit(
            [Hit(limiter.per_ip, "address", "10.0.0.1"), Hit(limiter.per_client, "client", "d")]
        )
    finally:
        await limiter.close()


@needs_redis
async def test_keys_asked_for_are_read_in_the_same_call(prefix: str) -> None:
    limiter = _limiter(REDIS_URL, prefix)
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        await client.set(f"{prefix}:portfolio-generation:a", 7)
        read = await limiter.hit(
            [Hit(limiter.per_ip, "address", "10.0.0.1")],
            read=(f"{prefix}:portfolio-generation:a", f"{prefix}:portfolio-generation:b"),
        )
        assert read == [b"7", None]
    finally:
        await client.aclose()
        await limiter.close()


@needs_redis
async def test_a_window_lasts_the_limits_period_from_its_first_hit(prefix: str) -> None:
    limiter = _limiter(REDIS_URL, prefix)
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        await limiter.hit([Hit(limiter.per_ip, "address", "10.0.0.1")])
        keys = [key async for key in client.scan_iter(f"{prefix}:*")]
        assert len(keys) == 1
        assert 55_000 < await client.pttl(keys[0]) <= 60_000
        await limiter.hit([Hit(limiter.per_ip, "address", "10.0.0.1")])
        assert int(await client.get(keys[0])) == 2  # the same window, not a new one
    finally:
        await client.aclose()
        await limiter.close()


async def test_an_unreachable_redis_lets_requests_through_and_reads_nothing() -> None:
    limiter = _limiter(f"redis://127.0.0.1:{free_port()}/0", "test", per_ip="1/minute")
    try:
        address = Hit(limiter.per_ip, "address", "10.0.0.1")
        for _ in range(3):  # over the limit of one, but nobody can count: let through
            assert await limiter.hit([address], read=("test:portfolio-generation:a",)) == []
    finally:
        await limiter.close()
