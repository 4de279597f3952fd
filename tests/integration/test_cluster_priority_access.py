"""Do Not Disturb with priority access across two nodes on one PostgreSQL and Redis: a user in
DND on one node gets the messages of senders on the other marked silent unless they are on the
priority list kept there, and a route asked on the other node for a priority caller names the
usual device."""

from __future__ import annotations

from typing import Any

import slixmpp

from chorus_presence.client.plugin import Device, Routing
from tests.integration.harness import DOMAIN, Inbox, online, presence_of
from tests.integration.harness.cluster import Cluster, ClusterNode

ALICE, BOB, CAROL = (f"{name}@{DOMAIN}" for name in ("alice", "bob", "carol"))
STATE = "{urn:chorus:presence:0}state"


async def bot(node: ClusterNode, user: str) -> tuple[slixmpp.ClientXMPP, Inbox]:
    client = node.make_client(user)
    client.register_plugin("chorus", module="chorus_presence.client.plugin")
    client.auto_authorize = None
    client.auto_subscribe = False
    assert await node.connect(client) == "session_start"
    inbox = Inbox(client)
    client.send_presence()
    await inbox.get(presence_of(client, "available", f"{user}@{DOMAIN}/test"))
    return client, inbox


def message_from(sender: str, body: str) -> Any:
    return lambda s: s.name == "message" and s["from"].bare == sender and s["body"] == body


async def test_priority_access_crosses_nodes(cluster: Cluster) -> None:
    a, b = cluster
    await cluster.add_users("alice", "bob", "carol")
    alice, alice_in = await bot(b, "alice")
    chorus = alice.plugin["chorus"]
    await chorus.add_priority(BOB)
    await chorus.set_routing(
        Routing(
            enabled=True,
            default="Desk",
            devices=[Device("Desk", "desk-phone"), Device("Voicemail", "voicemail")],
            mapping={"dnd": "Voicemail"},
        )
    )
    chorus.send_state("dnd")
    await alice_in.expect(
        lambda p: p["from"] == alice.boundjid and p.xml.findtext(STATE) == "dnd", "her dnd"
    )
    bob, _ = await online(a, "bob")
    carol, _ = await online(a, "carol")
    bob.send_message(mto=ALICE, mbody="urgent", mtype="chat")
    carol.send_message(mto=ALICE, mbody="later", mtype="chat")
    urgent = await alice_in.expect(message_from(BOB, "urgent"), "bob's message")
    later = await alice_in.expect(message_from(CAROL, "later"), "carol's message")
    assert not chorus.is_silent(urgent)
    assert chorus.is_silent(later)

    # Alice's own client on the other node, with no presence of its own, asks.
    asker = a.make_client("alice", resource="desk")
    asker.register_plugin("chorus", module="chorus_presence.client.plugin")
    assert await a.connect(asker) == "session_start"
    route = await asker.plugin["chorus"].route(ALICE, caller=BOB)
    assert (route.state, route.device.name if route.device else None) == ("dnd", "Desk")
    route = await asker.plugin["chorus"].route(ALICE, caller=CAROL)
    assert (route.state, route.device.name if route.device else None) == ("dnd", "Voicemail")
