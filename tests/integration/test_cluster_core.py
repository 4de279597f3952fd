"""Two nodes behave as one server: with the two clients of each exchange on different nodes
(node-a and node-b, real processes on one PostgreSQL database and one Redis), presence
broadcasts and probes both ways, directed presence, subscriptions with roster pushes on both
sides, every visibility policy, messages, the XEP-0191 block list, last activity, call routing
queries and the admin command line's cluster-wide session list and kick.

Nothing here waits for time to pass: a negative check ("nothing arrived") comes after
`across`, a message through the same node-to-node channel that everything before it took.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest
import slixmpp
from slixmpp.exceptions import IqError
from slixmpp.xmlstream import ET
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

from tests.integration.harness import (
    DOMAIN,
    TIMEOUT,
    Inbox,
    befriend,
    block_list,
    config_of,
    ending,
    listed,
    ok,
    online,
    presence_of,
    pushed,
    roster_of,
    visibility,
)
from tests.integration.harness.cluster import Cluster

ALICE, BOB, CAROL, DAVE = (f"{name}@{DOMAIN}" for name in ("alice", "bob", "carol", "dave"))
VISIBILITY = "urn:chorus:visibility:0"
ROUTING = "urn:chorus:routing:0"
LAST = "jabber:iq:last"
_markers = itertools.count(1)


async def across(sender: slixmpp.ClientXMPP, receiver: slixmpp.ClientXMPP, inbox: Inbox) -> None:
    """Everything the sender's node had sent the receiver's node has arrived (what the sender
    did, and that it is online): a message from the sender to the receiver, which travels
    behind it on the same channel, is received."""
    marker = f"marker-{next(_markers)}"
    sender.send_message(mto=receiver.boundjid.full, mbody=marker, mtype="chat")
    await inbox.expect(
        lambda s: s.name == "message" and s["body"] == marker, f"the marker {marker}"
    )


def available(client: slixmpp.ClientXMPP, sender: str, show: str | None = None) -> Any:
    """A predicate: available presence from the full JID `sender`, with `show` if given."""
    return lambda s: (
        s.name == "presence"
        and str(s["from"]) == sender
        and s["type"] in ("available", "away", "dnd", "xa", "chat")
        and (show is None or s["show"] == show)
    )


def unavailable_from(sender: str) -> Any:
    return lambda s: (
        s.name == "presence" and s["type"] == "unavailable" and str(s["from"]) == sender
    )


def presences_from(inbox: Inbox, sender: str) -> list[Any]:
    return [
        s
        for s in inbox.drain()
        if s.name == "presence" and (str(s["from"]) == sender or s["from"].bare == sender)
    ]


async def action(client: slixmpp.ClientXMPP, name: str, jid: str) -> None:
    """A visibility move (`accept`, `block`, `allow`) over the extension."""
    iq = client.make_iq_set()
    iq.append(ET.Element(f"{{{VISIBILITY}}}{name}", {"jid": jid}))
    await iq.send(timeout=TIMEOUT)


def pending_count(user: str, count: int) -> Any:
    def matches(stanza: Any) -> bool:
        if stanza.name != "message" or stanza["type"] != "headline":
            return False
        node = stanza.xml.find(f"{{{VISIBILITY}}}pending")
        return node is not None and str(stanza["from"]) == user and node.get("count") == str(count)

    return matches


def with_pending_counts(client: slixmpp.ClientXMPP) -> Inbox:
    """An inbox of the pending count notifications (headlines without a body, which
    slixmpp's message event leaves out)."""
    client.register_handler(
        Callback(
            "pending count",
            MatchXPath(f"{{jabber:client}}message/{{{VISIBILITY}}}pending"),
            lambda message: client.event("pending count", message),
        )
    )
    return Inbox(client, "pending count")


async def last_activity(client: slixmpp.ClientXMPP, user: str) -> ET.Element:
    iq = client.make_iq_get(queryxmlns=LAST, ito=user)
    result = await iq.send(timeout=TIMEOUT)
    return result.xml.find(f"{{{LAST}}}query")


async def refusal(request: Any) -> tuple[str, str]:
    with pytest.raises(IqError) as caught:
        await request
    return caught.value.condition, caught.value.iq["error"]["type"]


async def friends(cluster: Cluster) -> tuple[Any, Any, Any, Any]:
    """alice on node-a and bob on node-b, each subscribed to the other."""
    a, b = cluster
    await cluster.add_users("alice", "bob")
    alice, alice_in = await online(a, "alice")
    bob, bob_in = await online(b, "bob")
    await befriend(alice, alice_in, bob, bob_in)
    await alice_in.expect(available(alice, f"{BOB}/test"), "bob's presence on node-a")
    await bob_in.expect(available(bob, f"{ALICE}/test"), "alice's presence on node-b")
    return alice, alice_in, bob, bob_in


async def test_presence_broadcasts_and_probes_cross_nodes_both_ways(cluster: Cluster) -> None:
    a, b = cluster
    alice, alice_in, bob, bob_in = await friends(cluster)

    alice.send_presence(pshow="away", pstatus="Lunch")
    got = await bob_in.expect(available(bob, f"{ALICE}/test", "away"), "alice away on node-b")
    assert got["status"] == "Lunch"
    bob.send_presence(pshow="dnd")
    await alice_in.expect(available(alice, f"{BOB}/test", "dnd"), "bob dnd on node-a")

    # A new resource's initial presence is answered from what the node mirrors of the other.
    phone, phone_in = await online(b, "bob", "phone")
    await phone_in.expect(available(phone, f"{ALICE}/test", "away"), "alice for bob's phone")
    desk, desk_in = await online(a, "alice", "desk")
    await desk_in.expect(available(desk, f"{BOB}/test", "dnd"), "bob for alice's desk")
    # Both of a user's resources see each other, each on its own node.
    await desk_in.expect(available(desk, f"{ALICE}/test", "away"), "alice/test for alice/desk")
    await alice_in.expect(available(alice, f"{ALICE}/desk"), "alice/desk for alice/test")

    # A probe sent by a client is answered too.
    bob.send_presence(pto=ALICE, ptype="probe")
    await bob_in.expect(available(bob, f"{ALICE}/test", "away"), "the answer to bob's probe")
    alice.send_presence(pto=BOB, ptype="probe")
    await alice_in.expect(available(alice, f"{BOB}/phone"), "the answer to alice's probe")

    # Going offline reaches the other node, and a probe then says unavailable.
    phone.send_presence(ptype="unavailable")
    await alice_in.expect(unavailable_from(f"{BOB}/phone"), "bob/phone unavailable on node-a")


async def test_directed_presence_reaches_the_other_node(cluster: Cluster) -> None:
    a, b = cluster
    await cluster.add_users("alice", "carol")
    alice, _alice_in = await online(a, "alice")
    # Node-a knew carol/test before her client did.
    carol, carol_in = await online(b, "carol")

    alice.send_presence(pto=f"{CAROL}/test", pshow="chat", pstatus="Here")
    got = await carol_in.expect(available(carol, f"{ALICE}/test", "chat"), "directed presence")
    assert got["status"] == "Here"
    # Going unavailable tells whoever had directed presence, on whichever node.
    alice.send_presence(ptype="unavailable")
    await carol_in.expect(unavailable_from(f"{ALICE}/test"), "alice's unavailable")


async def test_a_subscription_across_nodes_pushes_both_rosters(cluster: Cluster) -> None:
    a, b = cluster
    await cluster.add_users("alice", "bob")
    alice, alice_in = await online(a, "alice", roster=True)
    bob, bob_in = await online(b, "bob", roster=True)

    # Sent at once: whether or not node-a heard of bob's initial presence yet, he gets it.
    alice.send_presence(pto=BOB, ptype="subscribe")
    await alice_in.expect(pushed(BOB, "none"), "alice's push of her request")
    await bob_in.expect(presence_of(bob, "subscribe", ALICE), "the request on node-b")
    bob.send_presence(pto=ALICE, ptype="subscribed")
    # Node-b committed both rosters; each side hears of its own change on its own node.
    await bob_in.expect(pushed(ALICE, "from"), "bob's push on node-b")
    await alice_in.expect(pushed(BOB, "to"), "alice's push on node-a, from node-b's commit")
    await alice_in.expect(presence_of(alice, "subscribed", BOB), "subscribed on node-a")
    await alice_in.expect(available(alice, f"{BOB}/test"), "bob's presence, now allowed")
    assert (await roster_of(alice))[BOB]["subscription"] == "to"
    assert (await roster_of(bob))[ALICE]["subscription"] == "from"

    # Node-a's copy of bob's roster followed node-b's commit: the reverse request, decided on
    # node-a from that copy, completes the pair.
    bob.send_presence(pto=ALICE, ptype="subscribe")
    await alice_in.expect(presence_of(alice, "subscribe", BOB), "bob's request on node-a")
    alice.send_presence(pto=BOB, ptype="subscribed")
    await bob_in.expect(pushed(ALICE, "both"), "bob's push on node-b, from node-a's commit")
    await alice_in.expect(pushed(BOB, "both"), "alice's push on node-a")
    assert (await roster_of(bob))[ALICE]["subscription"] == "both"


async def test_every_visibility_policy_across_nodes(cluster: Cluster) -> None:
    a, b = cluster
    await cluster.add_users("alice", "bob", "carol", "dave")
    alice, alice_in = await online(a, "alice")
    bob, _bob_in = await online(b, "bob")
    carol, _carol_in = await online(b, "carol")
    dave, dave_in = await online(b, "dave")
    dave_counts = with_pending_counts(dave)
    # Node-a mirrors the presence of everyone on node-b (dave logged in last there): what
    # it shows alice once a policy lets her see them.
    await across(dave, alice, alice_in)
    await visibility(bob, policy="everyone")
    await visibility(carol, policy="nobody")

    # everyone: approved at once, decided on node-a from bob's settings.
    alice.send_presence(pto=BOB, ptype="subscribe")
    await alice_in.expect(presence_of(alice, "subscribed", BOB), "bob's policy approves")
    await alice_in.expect(available(alice, f"{BOB}/test"), "bob's presence")
    # nobody: refused.
    alice.send_presence(pto=CAROL, ptype="subscribe")
    await alice_in.expect(presence_of(alice, "unsubscribed", CAROL), "carol's policy refuses")
    # ask (the default): pending on node-b until dave accepts there.
    alice.send_presence(pto=DAVE, ptype="subscribe")
    await dave_in.expect(presence_of(dave, "subscribe", ALICE), "the request for dave")
    await dave_counts.expect(pending_count(DAVE, 1), "dave's pending count")
    assert listed(await visibility(dave), "pending") == (1, [ALICE])
    await action(dave, "accept", ALICE)
    await alice_in.expect(presence_of(alice, "subscribed", DAVE), "dave accepted")
    await alice_in.expect(available(alice, f"{DAVE}/test"), "dave's presence")
    await dave_counts.expect(pending_count(DAVE, 0), "dave's pending count back to 0")

    # The presence blocked list: alice stops seeing bob, at once, on her node.
    await action(bob, "block", ALICE)
    await alice_in.expect(presence_of(alice, "unsubscribed", BOB), "bob blocked alice")
    await alice_in.expect(unavailable_from(f"{BOB}/test"), "bob's presence withdrawn")
    assert listed(await visibility(bob), "blocked") == (1, [ALICE])

    # Away while offline, set on node-b: node-a shows it to alice after dave logged out.
    await visibility(dave, **{"away-when-offline": "true"})
    dave.disconnect()
    await alice_in.expect(unavailable_from(f"{DAVE}/test"), "dave logged out")
    shown = await alice_in.expect(
        lambda s: s.name == "presence" and str(s["from"]) == DAVE and s["show"] == "away",
        "dave's presence while offline",
    )
    assert shown["type"] == "away"
    # A new resource of alice is told by node-a itself, from its own copy of the setting.
    _desk, desk_in = await online(a, "alice", "desk")
    await desk_in.expect(
        lambda s: s.name == "presence" and str(s["from"]) == DAVE and s["show"] == "away",
        "dave's automated presence for alice/desk",
    )


async def test_messages_across_nodes(cluster: Cluster) -> None:
    alice, alice_in, bob, bob_in = await friends(cluster)

    alice.send_message(mto=BOB, mbody="to the account", mtype="chat")
    got = await bob_in.expect(lambda s: s.name == "message", "a message to bob's bare JID")
    assert (got["body"], str(got["from"])) == ("to the account", f"{ALICE}/test")
    bob.send_message(mto=f"{ALICE}/test", mbody="to the resource", mtype="chat")
    got = await alice_in.expect(lambda s: s.name == "message", "a message to alice/test")
    assert got["body"] == "to the resource"

    # Offline everywhere: alice may see bob's presence, so she is told.
    bob.disconnect()
    await alice_in.expect(unavailable_from(f"{BOB}/test"), "bob logged out")
    alice.send_message(mto=BOB, mbody="anyone?", mtype="chat")
    error = await alice_in.expect(
        lambda s: s.name == "message" and s["type"] == "error", "the bounce"
    )
    assert error["error"]["condition"] == "service-unavailable"


async def test_a_block_on_one_node_holds_on_the_other(cluster: Cluster) -> None:
    a, b = cluster
    alice, alice_in, bob, bob_in = await friends(cluster)
    # bob's second resource on node-a asked for the list, so node-a pushes it changes.
    desk, _desk_in = await online(a, "bob", "desk", plugins=("xep_0191",))
    assert await block_list(desk) == []
    bob_blocking = await b.login("bob", resource="blocker", plugins=("xep_0191",))

    await bob_blocking.plugin["xep_0191"].block([ALICE], timeout=TIMEOUT)
    # alice stops seeing bob at once, on her node.
    await alice_in.expect(unavailable_from(f"{BOB}/test"), "bob hidden by the block")
    await alice_in.expect(unavailable_from(f"{BOB}/desk"), "bob/desk hidden by the block")
    # Node-a's copy of bob's list followed: it refuses alice's messages as node-b would.
    alice.send_message(mto=BOB, mbody="hello?", mtype="chat")
    error = await alice_in.expect(
        lambda s: s.name == "message" and s["type"] == "error", "the refusal"
    )
    assert error["error"]["condition"] == "service-unavailable"
    assert await block_list(desk) == [ALICE]
    # Nothing reached bob on node-b: node-a sent it nothing before this marker.
    await across(desk, bob, bob_in)
    assert not [s for s in bob_in.drain() if s.name == "message"]

    await bob_blocking.plugin["xep_0191"].unblock([ALICE], timeout=TIMEOUT)
    await alice_in.expect(available(alice, f"{BOB}/test"), "bob shown again")
    alice.send_message(mto=f"{BOB}/test", mbody="there you are", mtype="chat")
    got = await bob_in.expect(lambda s: s.name == "message", "alice's message after unblock")
    assert got["body"] == "there you are"
    assert await block_list(desk) == []


async def test_last_activity_and_the_route_across_nodes(cluster: Cluster) -> None:
    a, b = cluster
    alice, alice_in, bob, _bob_in = await friends(cluster)

    # Online on the other node: no idle time.
    assert (await last_activity(alice, BOB)).get("seconds") == "0"
    bob.send_presence(ptype="unavailable", pstatus="Gone fishing")
    await alice_in.expect(unavailable_from(f"{BOB}/test"), "bob went offline")
    # Node-b writes the logout in the background; node-a reads it from the database once it
    # is there, with its status. Asked again on each answer that it is not (yet).
    async with asyncio.timeout(TIMEOUT):
        while True:
            try:
                recorded = await last_activity(alice, BOB)
                break
            except IqError as error:
                assert error.condition == "item-not-found"
    assert int(recorded.get("seconds")) >= 0 and recorded.text == "Gone fishing"

    # Call routing decides by the effective state node-a mirrors from node-b.
    await ok(
        config_of(b),
        "routing",
        "set",
        "bob",
        "--device",
        "desk-phone:Desk",
        "--device",
        "voicemail:Voicemail",
        "--default",
        "Desk",
        "--map",
        "dnd=Voicemail",
        "--on",
    )
    await ok(config_of(a), "routing", "grant", "alice")
    bob.send_presence(pshow="dnd")
    await alice_in.expect(available(alice, f"{BOB}/test", "dnd"), "bob dnd")
    iq = alice.make_iq_get(ito=BOB)
    iq.append(ET.Element(f"{{{ROUTING}}}route"))
    answer = (await iq.send(timeout=TIMEOUT)).xml.find(f"{{{ROUTING}}}route")
    assert dict(answer.attrib) == {
        "jid": BOB,
        "state": "dnd",
        "device": "Voicemail",
        "kind": "voicemail",
    }


async def test_session_list_and_kick_across_the_cluster(cluster: Cluster) -> None:
    a, b = cluster
    await cluster.add_users("alice", "bob")
    alice, alice_in = await online(a, "alice")
    bob, _bob_in = await online(b, "bob", "phone")
    alice.send_presence(pshow="away")
    await alice_in.expect(available(alice, f"{ALICE}/test", "away"), "alice's own away")

    for node in (a, b):
        sessions = (await ok(config_of(node), "session", "list", "--json")).json()
        assert [(s["jid"], s["node"], s["state"]) for s in sessions] == [
            (f"{ALICE}/test", "node-a", "away"),
            (f"{BOB}/phone", "node-b", "available"),
        ]
        stats = (await ok(config_of(node), "stats", "--json", "--interval", "0.05")).json()
        assert (stats["sessions"], stats["online_users"]) == (2, 2)
        assert {name: n["sessions"] for name, n in stats["nodes"].items()} == {
            "node-a": 1,
            "node-b": 1,
        }
    everyone = (await ok(config_of(a), "presence", "show", "--json")).json()
    assert [(user["jid"], user["effective_state"]) for user in everyone] == [
        (ALICE, "away"),
        (BOB, "available"),
    ]
    table = (await ok(config_of(a), "session", "list")).out
    assert f"{BOB}/phone" in table and f"{ALICE}/test" in table

    # Kicked through node-a, ended by node-b, which holds it.
    ended, errors = ending(bob)
    kicked = (await ok(config_of(a), "session", "kick", f"{BOB}/phone", "--json")).json()
    assert kicked == {"kicked": [f"{BOB}/phone"]}
    await ended
    assert errors == ["policy-violation"]


async def test_removing_a_user_cleans_up_on_every_node(cluster: Cluster) -> None:
    a, b = cluster
    _alice, alice_in, bob, _bob_in = await friends(cluster)
    # alice has a resource on each node; the one on node-b asked for her roster.
    phone, phone_in = await online(b, "alice", "phone", roster=True)
    ended, errors = ending(bob)

    await ok(config_of(a), "user", "remove", "bob")
    # bob's stream, held by node-b, ends as the account's would on one node.
    await ended
    assert errors == ["not-authorized"]
    await alice_in.expect(unavailable_from(f"{BOB}/test"), "bob gone, on node-a")
    # Node-b's copy of alice's roster lost bob, and her resource there was told.
    await phone_in.expect(pushed(BOB, "remove"), "the removal pushed on node-b")
    assert BOB not in await roster_of(phone)
