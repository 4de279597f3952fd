"""A subscription request's nickname (XEP-0172) across two nodes on one PostgreSQL and Redis:
sent on one node to a user on the other, it arrives with its nickname, or with the requester's
display name when it has none, and both go out again at the contact's next login, on a node
that did not store the request.
"""

from __future__ import annotations

from typing import Any

import slixmpp

from tests.integration.harness import DOMAIN, Inbox, online, presence_of
from tests.integration.harness.cluster import Cluster, ClusterNode

ALICE, BOB, CAROL = (f"{name}@{DOMAIN}" for name in ("alice", "bob", "carol"))
NICK = "{http://jabber.org/protocol/nick}nick"


async def bot(node: ClusterNode, user: str) -> slixmpp.ClientXMPP:
    client = node.make_client(user)
    client.register_plugin("chorus", module="chorus_presence.client.plugin")
    assert await node.connect(client) == "session_start"
    return client


def nick_of(stanza: Any) -> str | None:
    return stanza.xml.findtext(NICK)


async def test_nicknames_cross_nodes_and_come_again_at_login(cluster: Cluster) -> None:
    a, b = cluster
    await cluster.add_users("alice", "bob", "carol")
    bob, bob_in = await online(b, "bob")
    alice = await bot(a, "alice")
    carol = await bot(a, "carol")
    await carol.plugin["chorus"].set_name("Carol Danvers")

    alice.plugin["chorus"].subscribe(BOB, nick="Ally")
    carol.plugin["chorus"].subscribe(BOB)
    from_alice = await bob_in.expect(presence_of(bob, "subscribe", ALICE), "alice's request")
    from_carol = await bob_in.expect(presence_of(bob, "subscribe", CAROL), "carol's request")
    assert (nick_of(from_alice), nick_of(from_carol)) == ("Ally", "Carol Danvers")

    again = b.make_client("bob", resource="phone")
    again.auto_authorize = None
    again.auto_subscribe = False
    again_in = Inbox(again, "presence")
    assert await b.connect(again) == "session_start"
    again.send_presence()
    resent = {
        sender: nick_of(await again_in.expect(presence_of(again, "subscribe", sender), sender))
        for sender in (ALICE, CAROL)
    }
    assert resent == {ALICE: "Ally", CAROL: "Carol Danvers"}
