"""No ghosts across nodes, and a cluster that outlives its parts: a node killed with SIGKILL is
declared dead by the other, whose users see its users go offline within node_timeout + 2 s;
the node, restarted, drops what its earlier run left and serves again; SIGTERM of one node
ends only its own sessions; a stream-management session is never resumed on another node;
Redis lost while the nodes run costs answers, not the nodes, and the cluster is whole again
once Redis is back; a node that cannot reach Redis at start stops with one line naming
`cluster.redis`.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
import redis
import slixmpp
from slixmpp import JID

from tests.engines.postgres import free_port
from tests.engines.redis import RedisServer
from tests.integration.harness import (
    DOMAIN,
    TIMEOUT,
    Inbox,
    befriend,
    config_of,
    ending,
    fails,
    online,
    raw_login,
    visibility,
    write_config,
)
from tests.integration.harness.cluster import NODE_TIMEOUT, Cluster, ClusterFactory, ClusterNode

ALICE, BOB, CAROL = (f"{name}@{DOMAIN}" for name in ("alice", "bob", "carol"))
SM = "urn:xmpp:sm:3"
# The bound the acceptance sets on seeing a dead node's users go offline.
DEATH_NOTICED = NODE_TIMEOUT + 2


def available_from(sender: str) -> Any:
    return lambda s: (
        s.name == "presence" and str(s["from"]) == sender and s["type"] != "unavailable"
    )


def unavailable_from(sender: str) -> Any:
    return lambda s: (
        s.name == "presence" and s["type"] == "unavailable" and str(s["from"]) == sender
    )


async def friends(cluster: Cluster) -> tuple[slixmpp.ClientXMPP, Inbox, slixmpp.ClientXMPP, Inbox]:
    """alice on node-a and bob on node-b, each subscribed to the other."""
    a, b = cluster
    await cluster.add_users("alice", "bob", "carol")
    alice, alice_in = await online(a, "alice")
    bob, bob_in = await online(b, "bob")
    await befriend(alice, alice_in, bob, bob_in)
    await alice_in.expect(available_from(f"{BOB}/test"), "bob's presence on node-a")
    return alice, alice_in, bob, bob_in


async def test_a_killed_node_is_declared_dead_and_comes_back(
    cluster: Cluster, redis_db: str
) -> None:
    _a, b = cluster
    alice, alice_in, bob, _bob_in = await friends(cluster)
    # bob is shown "away" while offline: that is what alice must see once node-b is gone.
    await visibility(bob, **{"away-when-offline": "true"})

    await b.kill_9()
    async with asyncio.timeout(DEATH_NOTICED):
        await alice_in.get(unavailable_from(f"{BOB}/test"))
        away = await alice_in.get(
            lambda s: s.name == "presence" and str(s["from"]) == BOB and s["show"] == "away"
        )
    assert away["type"] == "away"
    # Node-a serves on: alice's message to bob, offline everywhere, bounces.
    alice.send_message(mto=BOB, mbody="are you there?", mtype="chat")
    bounce = await alice_in.expect(lambda s: s.name == "message", "the bounce")
    assert bounce["error"]["condition"] == "service-unavailable"

    # The restarted node dropped its earlier run's directory before serving anyone.
    await b.restart()
    directory = redis.Redis.from_url(redis_db).hgetall("chorus:0:node:node-b:sessions")
    assert directory == {}
    bob, bob_in = await online(b, "bob")
    await alice_in.expect(available_from(f"{BOB}/test"), "bob back, through node-b")
    await bob_in.expect(available_from(f"{ALICE}/test"), "alice for the new bob")
    bob.send_message(mto=f"{ALICE}/test", mbody="back", mtype="chat")
    got = await alice_in.expect(lambda s: s.name == "message", "bob's message")
    assert got["body"] == "back"


async def test_sigterm_of_one_node_ends_only_its_own_sessions(cluster: Cluster) -> None:
    a, b = cluster
    alice, alice_in, bob, _bob_in = await friends(cluster)
    _carol, carol_in = await online(a, "carol")
    ended, errors = ending(bob)

    assert await b.terminate() == 0
    await ended
    assert errors == ["system-shutdown"]
    await alice_in.expect(unavailable_from(f"{BOB}/test"), "bob went with node-b")
    # Node-a's sessions are untouched.
    alice.send_message(mto=f"{CAROL}/test", mbody="still here", mtype="chat")
    got = await carol_in.expect(lambda s: s.name == "message", "alice's message on node-a")
    assert got["body"] == "still here"


@pytest.fixture
async def plaintext(cluster_of: ClusterFactory) -> Cluster:
    """Two nodes that let raw clients log in without TLS."""
    cluster = await cluster_of(2, tls={"required": False})
    await cluster.add_users("alice")
    return cluster


async def sm_session(node: ClusterNode) -> str:
    raw = await raw_login(node, "alice")
    raw.send("<presence/>")
    raw.send(f"<enable xmlns='{SM}' resume='true'/>")
    return (await raw.expect(rb"<enabled [^>]*id='([^']+)'"))[1].decode()


async def test_a_session_is_never_resumed_on_another_node(plaintext: Cluster) -> None:
    a, b = plaintext
    sm_id = await sm_session(a)

    # Not while its node holds it...
    elsewhere = await raw_login(b, "alice", bind=False)
    elsewhere.send(f"<resume xmlns='{SM}' previd='{sm_id}' h='0'/>")
    await elsewhere.expect(rf"<failed xmlns='{SM}'><item-not-found")
    # ...nor once that node died.
    await a.kill_9()
    after = await raw_login(b, "alice", bind=False)
    after.send(f"<resume xmlns='{SM}' previd='{sm_id}' h='0'/>")
    await after.expect(rf"<failed xmlns='{SM}'><item-not-found")


async def admin_answer(node: ClusterNode, command: str) -> dict[str, Any]:
    """One request on the node's admin socket, and its answer, refused or not."""
    reader, writer = await asyncio.open_unix_connection(str(node.directory / "admin.sock"))
    try:
        writer.write(json.dumps({"command": command, "args": {}}).encode() + b"\n")
        answer: dict[str, Any] = json.loads(await reader.readline())
        return answer
    finally:
        writer.close()


async def until_answered(node: ClusterNode, *, redis_up: bool) -> dict[str, Any]:
    """Ask the node for its cluster-wide stats until the answer shows Redis lost (refused) or
    back (both nodes counted): the node notices at its next heartbeat."""
    async with asyncio.timeout(TIMEOUT):
        while True:
            answer = await admin_answer(node, "stats")
            if not redis_up and not answer["ok"]:
                return answer
            if redis_up and answer["ok"] and len(answer["result"]["nodes"]) == 2:
                return answer


async def test_losing_redis_costs_answers_not_nodes(
    cluster: Cluster, redis_server: RedisServer
) -> None:
    a, b = cluster
    alice, alice_in, bob, bob_in = await friends(cluster)

    redis_server.halt()
    refused = await until_answered(a, redis_up=False)
    assert refused["error"] == (
        "Redis cannot be reached, so the other nodes of the cluster cannot be asked"
    )
    # A message for a user only node-b holds cannot get there: the sender is told so.
    alice.send_message(mto=BOB, mbody="lost?", mtype="chat")
    error = await alice_in.expect(lambda s: s.name == "message", "the refusal")
    assert (error["error"]["condition"], error["error"]["type"]) == ("service-unavailable", "wait")
    assert "cannot be reached now" in error["error"]["text"]

    # Redis comes back empty; both nodes join again and know each other's sessions.
    redis_server.resume()
    await until_answered(a, redis_up=True)
    await until_answered(b, redis_up=True)
    alice.send_message(mto=BOB, mbody="found", mtype="chat")
    got = await bob_in.expect(lambda s: s.name == "message", "alice's message after the outage")
    assert got["body"] == "found"
    bob.send_presence(pshow="dnd")
    await alice_in.expect(
        lambda s: s.name == "presence" and s["show"] == "dnd", "bob's presence after the outage"
    )
    assert a.running and b.running


async def test_redis_unreachable_at_start_is_one_line_naming_the_key(
    tmp_path: Path, tls_files: tuple[Path, Path], postgres_url: str
) -> None:
    config = write_config(
        tmp_path,
        tls_files,
        storage={"backend": "postgresql", "url": postgres_url},
        cluster={
            "enabled": True,
            "node": "node-a",
            "redis": f"redis://127.0.0.1:{free_port()}/0",
        },
    )
    run = await fails(config, 2, "serve", needle="(cluster.redis)")
    line = run.err.strip().splitlines()[-1]
    assert line.startswith("chorus-presence: Cannot connect to Redis at redis://127.0.0.1:")


async def test_a_second_process_under_a_running_nodes_name_is_refused(cluster: Cluster) -> None:
    a, _b = cluster
    alice, alice_in, bob, bob_in = await friends(cluster)

    # The same configuration started again: the name's heartbeat never expires.
    run = await fails(config_of(a), 2, "serve", needle="(cluster.node)")
    assert run.err.strip().splitlines()[-1] == (
        "chorus-presence: Another node named node-a is running on the cluster's Redis"
        " (cluster.node): give each node a name of its own"
    )
    # The running node-a lost nothing: bob's presence still reaches alice through it.
    bob.send_presence(pstatus="still seen")
    got = await alice_in.expect(available_from(f"{BOB}/test"), "bob's presence on node-a")
    assert got["status"] == "still seen"
    alice.send_message(mto=f"{BOB}/test", mbody="and heard", mtype="chat")
    heard = await bob_in.expect(lambda s: s.name == "message", "alice's message on node-b")
    assert heard["body"] == "and heard"


async def test_what_was_committed_while_redis_was_away_reaches_the_other_node(
    cluster: Cluster, redis_server: RedisServer
) -> None:
    """The word of a change is lost with Redis; the node that joins again reloads its copies."""
    a, b = cluster
    await cluster.add_users("alice", "carol")
    desk = await a.login("alice", resource="desk", plugins=("xep_0191",))
    phone = await b.login("alice", resource="phone", plugins=("xep_0191",))
    assert await phone.plugin["xep_0191"].get_blocked_jids(timeout=TIMEOUT) == set()

    redis_server.halt()
    await until_answered(a, redis_up=False)
    await desk.plugin["xep_0191"].block([CAROL], timeout=TIMEOUT)

    redis_server.resume()
    await until_answered(b, redis_up=True)
    # Node-b answers from its copy of alice's list, which it reloads on joining again.
    async with asyncio.timeout(TIMEOUT):
        while await phone.plugin["xep_0191"].get_blocked_jids(timeout=TIMEOUT) != {JID(CAROL)}:
            pass
