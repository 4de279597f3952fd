"""Quiet hours across two nodes on one PostgreSQL and Redis: a schedule set on one node reaches
the user's resources on the other, which applies what is then in force to its own, and
clearing it there ends it. The nodes run on the wall clock, so the slot here is in force all
day."""

from __future__ import annotations

from typing import Any

import slixmpp

from chorus_presence.client.plugin import QuietSlot
from tests.integration.harness import DOMAIN, Inbox, online, presence_of
from tests.integration.harness.cluster import Cluster, ClusterNode

ALICE = f"alice@{DOMAIN}"
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


def state_of(resource: str, state: str, text: str = "") -> Any:
    return lambda p: (
        str(p["from"]) == f"{ALICE}/{resource}"
        and p.xml.get("type") is None
        and p.xml.findtext(STATE) == state
        and p["status"] == text
    )


async def test_a_schedule_set_on_one_node_applies_on_the_other(cluster: Cluster) -> None:
    a, b = cluster
    await cluster.add_users("alice")
    _phone, phone_in = await online(b, "alice", "phone")
    laptop, laptop_in = await bot(a, "alice")
    chorus = laptop.plugin["chorus"]
    everyday = QuietSlot("daily", "00:00", "24:00", "away", "Elsewhere")
    assert await chorus.set_quiet_hours([everyday]) == [everyday]
    await phone_in.expect(state_of("phone", "away", "Elsewhere"), "the phone follows")
    await phone_in.expect(state_of("test", "away", "Elsewhere"), "the laptop, seen there")
    await laptop_in.expect(state_of("phone", "away", "Elsewhere"), "the phone, seen here")

    await chorus.set_quiet_hours([])
    await phone_in.expect(state_of("phone", "available"), "the phone back to Available")
    await laptop_in.expect(state_of("test", "available"), "the laptop back to Available")
