"""Nothing sent in the moment a user logs in or out on another node is lost: a session is
known to every node before its client learns its full JID, a subscription request that
crosses the announcement of the contact's initial presence still reaches the contact, and a
message that reaches a node after the session it was for ended there is bounced.

Each exchange is repeated, with a new resource each time, so that it lands on every side of
the announcements it races; nothing waits for them.
"""

from __future__ import annotations

import asyncio
from typing import Any

import slixmpp

from tests.integration.harness import DOMAIN, Inbox, befriend, ending, online, presence_of
from tests.integration.harness.cluster import Cluster

ALICE, BOB = (f"{name}@{DOMAIN}" for name in ("alice", "bob"))
ROUNDS = 20


async def logged_out(client: slixmpp.ClientXMPP) -> None:
    ended, _errors = ending(client)
    client.disconnect()
    await ended


def directed_from(sender: str) -> Any:
    return lambda s: s.name == "presence" and str(s["from"]) == sender and s["show"] == "chat"


async def test_directed_presence_to_a_resource_bound_a_moment_ago(cluster: Cluster) -> None:
    a, b = cluster
    await cluster.add_users("alice", "bob")
    alice, _alice_in = await online(a, "alice")

    for round_ in range(ROUNDS):
        bob = b.make_client("bob", resource=f"r{round_}")
        bob_in = Inbox(bob, "presence")
        # Sent from node-a the instant bob's client holds its full JID: node-a knows it by then.
        bob.add_event_handler(
            "session_bind",
            lambda jid: alice.send_presence(pto=str(jid), pshow="chat"),
        )
        assert await b.connect(bob) == "session_start"
        await bob_in.expect(directed_from(f"{ALICE}/test"), f"round {round_}: the presence")
        await logged_out(bob)


async def test_a_request_crossing_the_contacts_login_is_delivered(cluster: Cluster) -> None:
    a, b = cluster
    await cluster.add_users("alice", "bob")
    alice, alice_in = await online(a, "alice")

    for round_ in range(ROUNDS):
        bob = await b.login("bob", resource=f"r{round_}")
        bob.auto_authorize = None
        bob.auto_subscribe = False
        bob_in = Inbox(bob, "presence", "message")
        # bob's initial presence and alice's request leave at once: node-b may make bob
        # available before or after node-a stores the request, and node-a may hear of it
        # before or after it decides whom to give the request to.
        bob.send_presence()
        alice.send_presence(pto=BOB, ptype="subscribe")
        await bob_in.expect(presence_of(bob, "subscribe", ALICE), f"round {round_}: the request")
        # Once: whatever either node sent bob travelled ahead of this message from node-a.
        alice.send_message(mto=f"{BOB}/r{round_}", mbody="after", mtype="chat")
        await bob_in.expect(lambda s: s.name == "message", f"round {round_}: the message")
        assert not [s for s in bob_in.drain() if presence_of(bob, "subscribe", ALICE)(s)]
        # Refused, so that no request is left pending for the next login to deliver.
        bob.send_presence(pto=ALICE, ptype="unsubscribed")
        await alice_in.expect(presence_of(alice, "unsubscribed", BOB), f"round {round_}: refused")
        await logged_out(bob)


async def test_a_message_in_flight_to_a_session_that_ended_is_bounced(cluster: Cluster) -> None:
    a, b = cluster
    await cluster.add_users("alice", "bob")
    alice, alice_in = await online(a, "alice")
    bob, bob_in = await online(b, "bob")
    # alice may see bob's presence, so a message he cannot get is bounced to her.
    await befriend(alice, alice_in, bob, bob_in)
    await logged_out(bob)

    for round_ in range(ROUNDS):
        bob, bob_in = await online(b, "bob", f"r{round_}")
        # Node-a knows bob/r<n> and sends to node-b, which may see his stream end first.
        bob.disconnect()
        message = alice.make_message(mto=f"{BOB}/r{round_}", mbody=f"round {round_}", mtype="chat")
        message.send()
        sent = message["id"]
        bounced = asyncio.ensure_future(
            alice_in.get(lambda s, sent=sent: s["type"] == "error" and s["id"] == sent)
        )
        received = asyncio.ensure_future(bob_in.get(lambda s: s.name == "message"))
        done, pending = await asyncio.wait((bounced, received), return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        outcome = done.pop()
        assert outcome.exception() is None, f"round {round_}: neither delivered nor bounced"
        if outcome is bounced:
            assert outcome.result()["error"]["condition"] == "service-unavailable"
