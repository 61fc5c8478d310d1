"""The portfolio cache's generations shared through a real Redis, and what a broken store does.

(How the gateway uses the cache is tested through its HTTP interface in test_portfolio.py.)
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from gateway.portfoliocache import LocalGenerations, PortfolioCache, RedisGenerations
from testkit.postgres import free_port
from testkit.redis import REDIS_URL, redis_answers


class Composer:
    """Composes a complete portfolio showing how many times it was asked."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self) -> dict[str, Any]:
        self.calls += 1
        return {"complete": True, "missing": {}, "calls": self.calls}


@pytest.mark.skipif(not redis_answers(), reason="no Redis at 127.0.0.1:6379")
async def test_a_write_through_one_gateway_process_is_seen_by_the_others() -> None:
    prefix = f"test-{uuid.uuid4().hex}"
    one = PortfolioCache(RedisGenerations(REDIS_URL, prefix), ttl_seconds=30, max_entries=10)
    other = PortfolioCache(RedisGenerations(REDIS_URL, prefix), ttl_seconds=30, max_entries=10)
    compose = Composer()
    try:
        subject = str(uuid.uuid4())
        first, age = await one.read(subject, compose)
        assert age is None and b'"calls":1' in first
        kept, age = await one.read(subject, compose)
        assert kept == first and age == 0
        await other.forget(subject)  # the resident wrote through the other process
        after, age = await one.read(subject, compose)
        assert age is None and b'"calls":2' in after
        assert (await one.read(str(uuid.uuid4()), compose))[1] is None  # others are apart
    finally:
        await one.close()
        await other.close()


async def test_an_unreachable_generation_store_composes_every_read_and_fails_none() -> None:
    closed = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    cache = PortfolioCache(RedisGenerations(closed, "test"), ttl_seconds=30, max_entries=10)
    compose = Composer()
    try:
        subject = str(uuid.uuid4())
        answers = [await cache.read(subject, compose) for _ in range(3)]
        assert [age for _, age in answers] == [None, None, None]
        assert compose.calls == 3
        await cache.forget(subject)  # logged, not raised
    finally:
        await cache.close()


async def test_the_least_recently_read_answers_are_let_go_beyond_the_limit() -> None:
    cache = PortfolioCache(LocalGenerations(), ttl_seconds=30, max_entries=2)
    compose = Composer()
    a, b, c = (str(uuid.uuid4()) for _ in range(3))
    for subject in (a, b, a, c):  # a read again, so b is the least recently read
        await cache.read(subject, compose)
    assert compose.calls == 3
    assert (await cache.read(a, compose))[1] == 0
    assert (await cache.read(c, compose))[1] == 0
    assert (await cache.read(b, compose))[1] is None and compose.calls == 4


async def test_a_generation_read_by_the_caller_is_used_without_asking_the_store() -> None:
    """The gateway reads a resident's generation with the rate limits and hands it over; the
    cache then keeps and serves by it, even where the store itself cannot be reached."""
    closed = f"redis://127.0.0.1:{free_port()}/0"
    cache = PortfolioCache(RedisGenerations(closed, "test"), ttl_seconds=30, max_entries=10)
    compose = Composer()
    try:
        subject = str(uuid.uuid4())
        assert cache.shared_key(subject) == f"test:portfolio-generation:{subject}"
        assert (await cache.read(subject, compose, generation="4"))[1] is None
        assert (await cache.read(subject, compose, generation="4"))[1] == 0  # kept under 4
        assert (await cache.read(subject, compose, generation="5"))[1] is None  # it moved
        assert compose.calls == 2
    finally:
        await cache.close()


async def test_only_generations_kept_in_redis_have_a_key_to_read() -> None:
    local = PortfolioCache(LocalGenerations(), ttl_seconds=30, max_entries=10)
    off = PortfolioCache(RedisGenerations(REDIS_URL, "test"), ttl_seconds=0, max_entries=10)
    try:
        assert local.shared_key("someone") is None
        assert off.shared_key("someone") is None  # the cache is off: nothing to read
    finally:
        await off.close()
