"""The cluster harness itself and the private Redis it runs on: nodes are real processes on one
shared PostgreSQL database, each with its own name, ports, admin socket and `[cluster]`
settings; they can be killed, stopped and restarted on the same ports; each test gets an empty
Redis that is running, whatever the test before did to it."""

from __future__ import annotations

import asyncio
import signal
from urllib.request import urlopen

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError

from chorus_presence.config import ClusterConfig, load_config
from tests.engines.redis import RedisServer
from tests.integration.harness import (
    DOMAIN,
    TIMEOUT,
    Cluster,
    ClusterFactory,
    ending,
    ok,
    online,
)
from tests.integration.harness.admin import config_of

ALICE, BOB = f"alice@{DOMAIN}", f"bob@{DOMAIN}"


async def test_two_nodes_share_one_database(cluster: Cluster, postgres_url: str) -> None:
    a, b = cluster
    assert (a.name, b.name) == ("node-a", "node-b")
    assert len({a.port, b.port}) == 2
    await cluster.add_users("alice", "bob")

    # Created through node-a, logged in on node-b: one database.
    alice = await a.login("alice")
    bob = await b.login("bob")
    assert str(alice.boundjid.bare) == ALICE
    assert str(bob.boundjid.bare) == BOB

    for node, other in ((a, b), (b, a)):
        config = load_config(config_of(node))
        assert config.cluster == ClusterConfig(
            enabled=True, redis=cluster.redis_url, node=node.name, heartbeat=0.2, node_timeout=1.0
        )
        assert (config.storage.backend, config.storage.url) == ("postgresql", postgres_url)
        assert config.admin.socket != load_config(config_of(other)).admin.socket
        assert config.c2s.port == node.port
    # The admin command line reaches each node through its own config.
    listed = (await ok(config_of(b), "user", "list", "--json")).json()
    assert sorted(user["username"] for user in listed) == ["alice", "bob"]


async def test_kill_9_then_restart_on_the_same_port(cluster: Cluster) -> None:
    a, b = cluster
    await cluster.add_users("alice", "bob")
    alice, _ = await online(a, "alice")
    cut, _ = ending(alice)
    port, pid = a.port, a.server.process.pid

    await a.kill_9()
    assert a.server.process.returncode == -signal.SIGKILL
    assert not a.running
    await asyncio.wait_for(cut, TIMEOUT)
    # The other node serves on.
    await b.login("bob")

    await a.restart()
    assert a.running
    assert (a.port, a.server.process.pid != pid) == (port, True)
    # Its own presence comes back: the restarted node serves.
    await online(a, "alice")


async def test_terminate_is_the_clean_stop(cluster: Cluster) -> None:
    a, b = cluster
    await cluster.add_users("bob")
    bob = await a.login("bob")
    cut, errors = ending(bob)
    assert await a.terminate() == 0
    await asyncio.wait_for(cut, TIMEOUT)
    assert errors == ["system-shutdown"]
    assert b.running
    await a.restart()
    await a.login("bob")


async def test_settings_and_listeners_per_node(cluster_of: ClusterFactory) -> None:
    nodes = await cluster_of(
        3,
        cluster={"node_timeout": 2.5, "enabled": False, "node": "ignored"},
        metrics={"enabled": True},
        messages={"offline": "store"},
    )
    assert [node.name for node in nodes] == ["node-a", "node-b", "node-c"]
    ports = [port for node in nodes for port in (node.port, node.metrics_port)]
    assert len(set(ports)) == 6
    for node in nodes:
        config = load_config(config_of(node))
        assert (config.cluster.enabled, config.cluster.node) == (True, node.name)
        assert (config.cluster.heartbeat, config.cluster.node_timeout) == (0.2, 2.5)
        assert config.messages.offline == "store"
        assert config.metrics.port == node.metrics_port
        with urlopen(f"http://127.0.0.1:{node.metrics_port}/metrics", timeout=TIMEOUT) as page:
            assert page.status == 200
    # Restarted, a node listens where it did.
    first = nodes[2]
    port, metrics = first.port, first.metrics_port
    await first.restart()
    assert (first.port, first.metrics_port) == (port, metrics)


async def test_a_node_that_cannot_start_says_why(cluster_of: ClusterFactory) -> None:
    with pytest.raises(
        AssertionError, match=r"node-a exited \(2\) before it was ready: .*'tls.cert' file not"
    ):
        await cluster_of(1, tls={"cert": "/nonexistent/cert.pem"})


# Odd turns leave Redis stopped, even ones leave a key behind: in any order, one of each kind is
# followed by another turn, which must find Redis running and empty.
@pytest.mark.parametrize("turn", [1, 2, 3, 4])
async def test_each_test_gets_an_empty_running_redis(
    redis_db: str, redis_server: RedisServer, turn: int
) -> None:
    assert redis_server.running
    client = aioredis.from_url(redis_db)
    try:
        assert await client.keys("*") == []
        await client.set("left-by", turn)
    finally:
        await client.aclose()
    if turn % 2:
        redis_server.halt()
        assert not redis_server.running


async def test_redis_comes_back_on_its_port(redis_db: str, redis_server: RedisServer) -> None:
    client = aioredis.from_url(redis_db)
    try:
        await client.set("k", "v")
        redis_server.kill()
        with pytest.raises(RedisConnectionError):
            await client.get("k")
        redis_server.resume()
        assert redis_server.url() == redis_db
        # The same client reconnects; nothing was kept on disk.
        assert await client.get("k") is None
    finally:
        await client.aclose()
