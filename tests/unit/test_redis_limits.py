"""The cluster's failed-login throttles and subscription allowance in Redis (the session's
private one), with two counters on one Redis standing for two nodes: the thresholds are those
of the in-process throttles, whichever node counts; the keys expire; and with Redis gone each
node falls back to counting alone, saying so once.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
import redis

from chorus_presence.cluster.limits import RedisCounters
from chorus_presence.config import Config, LimitsConfig
from chorus_presence.core.limits import Limits, LoginGuard, RequestLimit
from tests.engines.redis import RedisServer


@pytest.fixture
def config(tmp_path: Path) -> LimitsConfig:
    return replace(
        Config.defaults(tmp_path).limits,
        auth_failures=3,
        auth_account_failures=4,
        auth_failure_window=600.0,
        auth_backoff_base=600.0,
        auth_backoff_max=600.0,
        subscriptions_per_minute=3,
    )


@pytest.fixture
async def nodes(redis_db: str, config: LimitsConfig) -> AsyncIterator[tuple[Limits, Limits]]:
    pair = tuple(Limits(config, RedisCounters(redis_db, config, timeout=1.0)) for _ in range(2))
    yield pair[0], pair[1]
    for limits in pair:
        await limits.close()


async def fail(guard: LoginGuard, account: str, address: str) -> None:
    attempt = await guard.admit(account, address)
    assert attempt is not None, f"{account} from {address} refused"
    attempt.failed()


async def test_failures_from_one_address_add_up_across_nodes(nodes: tuple[Limits, Limits]) -> None:
    a, b = (limits.login_guard for limits in nodes)
    await fail(a, "nobody1", "192.0.2.1")
    await fail(b, "nobody2", "192.0.2.1")
    assert not await a.address_refused("192.0.2.1")
    await fail(a, "nobody3", "192.0.2.1")
    for guard in (a, b):
        assert await guard.address_refused("192.0.2.1")
        assert await guard.admit("alice", "192.0.2.1") is None
    assert await b.admit("alice", "192.0.2.2") is not None


async def test_failures_before_an_account_count_against_the_address(
    nodes: tuple[Limits, Limits],
) -> None:
    a, b = (limits.login_guard for limits in nodes)
    a.address_failed("192.0.2.1")
    b.address_failed("192.0.2.1")
    await fail(a, "nobody", "192.0.2.1")
    assert await b.address_refused("192.0.2.1")
    assert await a.admit("alice", "192.0.2.1") is None


async def test_a_success_gives_its_place_back(nodes: tuple[Limits, Limits]) -> None:
    a, b = (limits.login_guard for limits in nodes)
    await fail(a, "nobody1", "192.0.2.1")
    await fail(b, "nobody2", "192.0.2.1")
    attempt = await a.admit("alice", "192.0.2.1")
    assert attempt is not None
    assert await b.address_refused("192.0.2.1")
    attempt.succeeded()
    assert not await a.address_refused("192.0.2.1")
    # The pair that got in has no back-off left, on either node.
    attempt = await a.admit("alice", "192.0.2.1")
    assert attempt is not None
    attempt.succeeded()


async def test_the_back_off_holds_the_pair_on_every_node(nodes: tuple[Limits, Limits]) -> None:
    a, b = (limits.login_guard for limits in nodes)
    await fail(a, "alice", "192.0.2.1")
    assert await b.admit("alice", "192.0.2.1") is None
    assert await a.admit("alice", "192.0.2.1") is None
    # The owner, elsewhere, and another account from there are not held up.
    assert await b.admit("alice", "192.0.2.9") is not None
    assert await b.admit("bob", "192.0.2.1") is not None


async def test_the_account_ceiling_adds_up_across_nodes_and_addresses(
    nodes: tuple[Limits, Limits],
) -> None:
    a, b = (limits.login_guard for limits in nodes)
    for number in range(4):
        await fail((a, b)[number % 2], "alice", f"192.0.2.{number + 1}")
    assert await a.admit("alice", "192.0.2.50") is None
    assert await b.admit("alice", "192.0.2.51") is None
    assert await b.admit("bob", "192.0.2.50") is not None


async def test_a_refused_login_counts_nothing(nodes: tuple[Limits, Limits]) -> None:
    a, b = (limits.login_guard for limits in nodes)
    await fail(a, "alice", "192.0.2.1")
    for _ in range(5):
        assert await b.admit("alice", "192.0.2.1") is None
    # Two more failures from that address, not seven, reach the limit of three.
    await fail(b, "bob", "192.0.2.1")
    assert not await a.address_refused("192.0.2.1")
    await fail(a, "carol", "192.0.2.1")
    assert await a.address_refused("192.0.2.1")


async def test_subscription_requests_share_one_allowance(nodes: tuple[Limits, Limits]) -> None:
    a, b = (limits.subscription_requests for limits in nodes)
    outcomes = [await (a, b)[number % 2].admit("alice") for number in range(5)]
    assert outcomes == [True, True, True, False, False]
    assert await b.admit("bob")


async def test_every_key_expires(redis_db: str, nodes: tuple[Limits, Limits]) -> None:
    a, _b = nodes
    await fail(a.login_guard, "alice", "192.0.2.1")
    a.login_guard.address_failed("192.0.2.2")
    assert await a.subscription_requests.admit("alice")
    await a.login_guard.address_refused("192.0.2.2")
    client = redis.Redis.from_url(redis_db)
    try:
        keys = client.keys("*limits*")
        assert len(keys) == 5, keys
        assert all(client.pttl(key) > 0 for key in keys), keys
    finally:
        client.close()


async def test_without_redis_each_node_counts_alone_and_says_so(
    redis_server: RedisServer,
    nodes: tuple[Limits, Limits],
    caplog: pytest.LogCaptureFixture,
) -> None:
    a, b = nodes
    await fail(a.login_guard, "nobody1", "192.0.2.1")
    redis_server.halt()
    with caplog.at_level(logging.WARNING, logger="chorus_presence.cluster.limits"):
        # Not locked out: the node's own counts take over, from nothing.
        for name in ("nobody2", "nobody3", "nobody4"):
            await fail(a.login_guard, name, "192.0.2.1")
        assert await a.login_guard.admit("nobody5", "192.0.2.1") is None
        assert await b.login_guard.admit("nobody5", "192.0.2.1") is not None
        requests: RequestLimit = a.subscription_requests
        assert [await requests.admit("alice") for _ in range(4)] == [True, True, True, False]
        lost = [r for r in caplog.records if "cannot be reached" in r.getMessage()]
        # Once for each node, not once for each count.
        assert len(lost) == 2, caplog.text
        assert lost[0].levelno == logging.ERROR
        redis_server.resume()
        assert await a.login_guard.address_refused("192.0.2.1") is False
        assert "reachable again" in caplog.text
