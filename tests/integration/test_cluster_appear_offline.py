"""Appear offline across two nodes on one PostgreSQL and Redis: set on one node, it holds for
the user's resources on both; contacts on either see a logout, probes and IQs to each full JID
answer as for one; the user's own resources still see each other and get their
messages; turned off on the other node, contacts see both resources again. With Redis lost, a
message to the user is answered as for a logout, not as for a user on a node out of reach."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from slixmpp.exceptions import IqError
from slixmpp.xmlstream import ET

from tests.engines.redis import RedisServer
from tests.integration.harness import (
    DOMAIN,
    TIMEOUT,
    Inbox,
    befriend,
    online,
    presence_of,
    sync,
    visibility,
)
from tests.integration.harness.cluster import Cluster, ClusterNode

ALICE, BOB = f"alice@{DOMAIN}", f"bob@{DOMAIN}"
DISCO_INFO = "http://jabber.org/protocol/disco#info"


def heard_from(inbox: Inbox, user: str) -> list[Any]:
    return [s for s in inbox.drain() if s.name == "presence" and s["from"].bare == user]


async def refused(client: Any, to: str) -> str:
    iq = client.make_iq_get(ito=to)
    iq.append(ET.Element(f"{{{DISCO_INFO}}}query"))
    try:
        await iq.send(timeout=TIMEOUT)
    except IqError as error:
        return str(error.iq["error"]["condition"])
    return "result"


async def test_appearing_offline_holds_on_every_node(cluster: Cluster) -> None:
    a, b = cluster
    await cluster.add_users("alice", "bob")
    bob, bob_in = await online(a, "bob")
    alice, alice_in = await online(b, "alice")
    await befriend(alice, alice_in, bob, bob_in)
    phone, phone_in = await online(a, "alice", "phone")
    await bob_in.expect(presence_of(bob, "available", f"{ALICE}/phone"), "alice's phone")
    bob_in.drain()

    assert (await visibility(alice, **{"appear-offline": "true"})).get("appear-offline") == "true"
    await bob_in.expect(presence_of(bob, "unavailable", f"{ALICE}/test"), "node b's resource")
    await bob_in.expect(presence_of(bob, "unavailable", f"{ALICE}/phone"), "node a's resource")

    bob.send_presence(pto=ALICE, ptype="probe")
    await sync(bob)
    assert {s["type"] for s in heard_from(bob_in, ALICE)} <= {"unavailable"}
    for resource in ("test", "phone"):
        assert await refused(bob, f"{ALICE}/{resource}") == "service-unavailable"
    # The user's own resources, on both nodes, go on as before.
    phone.send_presence(pshow="dnd")
    await alice_in.expect(
        lambda p: str(p["from"]) == f"{ALICE}/phone" and p["show"] == "dnd", "her phone's dnd"
    )
    bob.send_message(mto=ALICE, mbody="still there?", mtype="chat")
    for inbox in (alice_in, phone_in):
        await inbox.expect(
            lambda m: m.name == "message" and m["body"] == "still there?", "bob's message"
        )
    await sync(phone, alice, bob)
    assert {s["type"] for s in heard_from(bob_in, ALICE)} <= {"unavailable"}

    assert (await visibility(phone, **{"appear-offline": "false"})).get("appear-offline") == (
        "false"
    )
    await bob_in.expect(
        lambda p: str(p["from"]) == f"{ALICE}/phone" and p["show"] == "dnd", "the phone again"
    )
    await bob_in.expect(presence_of(bob, "available", f"{ALICE}/test"), "node b's again")


async def redis_lost_on(node: ClusterNode) -> None:
    """Ask the node for its cluster-wide stats until it answers that Redis is lost, which it
    notices at its next heartbeat."""
    async with asyncio.timeout(TIMEOUT):
        while True:
            reader, writer = await asyncio.open_unix_connection(str(node.directory / "admin.sock"))
            try:
                writer.write(json.dumps({"command": "stats", "args": {}}).encode() + b"\n")
                answer = json.loads(await reader.readline())
            finally:
                writer.close()
            if not answer["ok"]:
                return


async def test_with_redis_lost_nothing_says_the_user_is_on_another_node(
    cluster: Cluster, redis_server: RedisServer
) -> None:
    a, b = cluster
    await cluster.add_users("alice", "bob", "carol")
    bob, bob_in = await online(a, "bob")
    for user in ("alice", "carol"):
        other, other_in = await online(b, user)
        await befriend(other, other_in, bob, bob_in)
        if user == "carol":
            other.disconnect()
            await bob_in.expect(presence_of(bob, "unavailable", f"{user}@{DOMAIN}/test"), user)
        else:
            await visibility(other, **{"appear-offline": "true"})
            await bob_in.expect(presence_of(bob, "unavailable", f"{ALICE}/test"), "alice hides")
    redis_server.halt()
    try:
        await redis_lost_on(a)
        for user in ("alice", "carol"):
            bob.send_message(mto=f"{user}@{DOMAIN}", mbody="there?", mtype="chat")
        await sync(bob)
        errors = {
            s["from"].bare: (s["error"]["condition"], s["error"]["type"], s["error"]["text"])
            for s in bob_in.drain()
            if s.name == "message" and s["type"] == "error"
        }
        assert errors[ALICE] == errors[f"carol@{DOMAIN}"]
        assert "another node" not in errors[ALICE][2]
    finally:
        redis_server.resume()
