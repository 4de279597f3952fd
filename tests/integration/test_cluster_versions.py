"""A cluster upgraded node by node: a node skips what a newer node of the same protocol
version adds (kinds it does not know, trailing fields) and goes on with the rest of the
message, and drops, with one warning, every message of a version it does not speak. And a
kind added since: sign-ins revoked on one node end their streams on the others."""

from __future__ import annotations

import json

import redis.asyncio as aioredis

from chorus_presence.cluster.keys import Keys
from tests.integration.harness import DOMAIN, bind, config_of, ok, online
from tests.integration.harness.cluster import Cluster, ClusterFactory, tail
from tests.integration.harness.fast import password_login, secure, token_login

BOB = f"bob@{DOMAIN}"


async def publish_as_node_a(cluster: Cluster, version: int, items: list[list[object]]) -> None:
    """A message on node-b's channel as node-a's running incarnation would send it."""
    client = aioredis.Redis.from_url(cluster.redis_url)
    try:
        keys = Keys.for_database(int(client.connection_pool.connection_kwargs.get("db", 0)))
        boot = (await client.get(keys.alive("node-a"))).decode()
        message = {"v": version, "n": "node-a", "b": boot, "i": items}
        assert await client.publish(keys.channel("node-b"), json.dumps(message)) == 1
    finally:
        await client.aclose()


def chat(to: str, body: str) -> str:
    return f"<message xmlns='jabber:client' to='{to}' type='chat'><body>{body}</body></message>"


async def test_what_a_newer_node_adds_is_skipped_and_the_rest_delivered(cluster: Cluster) -> None:
    _a, b = cluster
    await cluster.add_users("bob")
    bob, bob_in = await online(b, "bob")
    full = bob.boundjid.full
    await publish_as_node_a(
        cluster,
        1,
        [
            ["a-kind-of-a-later-release", {"whatever": 1}],
            ["send", full, chat(full, "after the unknown kind"), "a trailing field"],
        ],
    )
    message = await bob_in.expect(
        lambda s: s.name == "message" and s["body"] == "after the unknown kind",
        "the stanza behind the unknown kind",
    )
    assert str(message["to"]) == full
    assert "skipped a-kind-of-a-later-release from node node-a: a newer node's" in tail(b.log)


async def test_a_message_of_a_version_the_node_does_not_speak_is_dropped(cluster: Cluster) -> None:
    _a, b = cluster
    await cluster.add_users("bob")
    bob, bob_in = await online(b, "bob")
    full = bob.boundjid.full
    for attempt in range(2):
        await publish_as_node_a(cluster, 2, [["send", full, chat(full, f"version 2, {attempt}")]])
    await publish_as_node_a(cluster, 1, [["send", full, chat(full, "version 1")]])
    await bob_in.expect(
        lambda s: s.name == "message" and s["body"] == "version 1", "the version 1 message"
    )
    bodies = [s["body"] for s in bob_in.drain() if s.name == "message"]
    assert not [body for body in bodies if body.startswith("version 2")]
    log = b.log.read_text()
    assert log.count("node node-a speaks version 2 of the cluster protocol") == 1


async def test_a_sign_in_revoked_on_one_node_ends_its_stream_on_the_other(
    cluster_of: ClusterFactory,
) -> None:
    a, b = await cluster_of(2, admin={"socket": "admin.sock"})
    await a.add_user("alice")
    raw = await secure(b)
    result = await password_login(raw, "alice", client_id="desk-id", device="Desk")
    assert result.success and result.token, result
    raw.close()
    raw = await secure(b)
    assert (await token_login(raw, "alice", result.token, client_id="desk-id")).success
    await bind(raw, "desk")
    listed = (await ok(config_of(a), "signin", "list", "alice", "--json")).json()
    (desk,) = listed["sign_ins"]
    await ok(config_of(a), "signin", "revoke", "alice", desk["id"])
    await raw.expect_stream_error("not-authorized")
