"""Every row of the RFC 6121 Appendix A state tables that two local users can reach.

For each of the nine states alice can be in towards bob, each of the four subscription stanzas
is sent once by alice (outbound processing, tables A.2.x) and once by bob (inbound processing
for alice, tables A.3.x). The test checks both rosters as the server stores them and whether the
stanza reached the other user.
"""

from __future__ import annotations

import pytest

from tests.integration.harness import DOMAIN, Harness, Inbox, roster_of, sync

ALICE, BOB = f"alice@{DOMAIN}", f"bob@{DOMAIN}"

# How to reach each state of alice towards bob from nothing: (sender, stanza type) in order.
SETUP = {
    "None": [],
    "None+Out": [("alice", "subscribe")],
    "None+In": [("bob", "subscribe")],
    "None+Out/In": [("alice", "subscribe"), ("bob", "subscribe")],
    "To": [("alice", "subscribe"), ("bob", "subscribed")],
    "To+In": [("alice", "subscribe"), ("bob", "subscribed"), ("bob", "subscribe")],
    "From": [("bob", "subscribe"), ("alice", "subscribed")],
    "From+Out": [("bob", "subscribe"), ("alice", "subscribed"), ("alice", "subscribe")],
    "Both": [
        ("alice", "subscribe"),
        ("bob", "subscribed"),
        ("bob", "subscribe"),
        ("alice", "subscribed"),
    ],
}

# (alice's state, stanza type) -> (alice's new state, delivered to the other party)
# when alice sends it (tables A.2.1-A.2.4, then bob's inbound A.3.x) and when bob sends it.
OUTBOUND = {
    ("None", "subscribe"): ("None+Out", True),
    ("None", "subscribed"): ("None", False),
    ("None", "unsubscribe"): ("None", False),
    ("None", "unsubscribed"): ("None", False),
    ("None+Out", "subscribe"): ("None+Out", False),
    ("None+Out", "subscribed"): ("None+Out", False),
    ("None+Out", "unsubscribe"): ("None", True),
    ("None+Out", "unsubscribed"): ("None+Out", False),
    ("None+In", "subscribe"): ("None+Out/In", True),
    ("None+In", "subscribed"): ("From", True),
    ("None+In", "unsubscribe"): ("None+In", False),
    ("None+In", "unsubscribed"): ("None", True),
    ("None+Out/In", "subscribe"): ("None+Out/In", False),
    ("None+Out/In", "subscribed"): ("From+Out", True),
    ("None+Out/In", "unsubscribe"): ("None+In", True),
    ("None+Out/In", "unsubscribed"): ("None+Out", True),
    ("To", "subscribe"): ("To", False),
    ("To", "subscribed"): ("To", False),
    ("To", "unsubscribe"): ("None", True),
    ("To", "unsubscribed"): ("To", False),
    ("To+In", "subscribe"): ("To+In", False),
    ("To+In", "subscribed"): ("Both", True),
    ("To+In", "unsubscribe"): ("None+In", True),
    ("To+In", "unsubscribed"): ("To", True),
    ("From", "subscribe"): ("From+Out", True),
    ("From", "subscribed"): ("From", False),
    ("From", "unsubscribe"): ("From", False),
    ("From", "unsubscribed"): ("None", True),
    ("From+Out", "subscribe"): ("From+Out", False),
    ("From+Out", "subscribed"): ("From+Out", False),
    ("From+Out", "unsubscribe"): ("From", True),
    ("From+Out", "unsubscribed"): ("None+Out", True),
    ("Both", "subscribe"): ("Both", False),
    ("Both", "subscribed"): ("Both", False),
    ("Both", "unsubscribe"): ("From", True),
    ("Both", "unsubscribed"): ("To", True),
}
INBOUND = {
    ("None", "subscribe"): ("None+In", True),
    ("None", "subscribed"): ("None", False),
    ("None", "unsubscribe"): ("None", False),
    ("None", "unsubscribed"): ("None", False),
    ("None+Out", "subscribe"): ("None+Out/In", True),
    ("None+Out", "subscribed"): ("To", True),
    ("None+Out", "unsubscribe"): ("None+Out", False),
    ("None+Out", "unsubscribed"): ("None", True),
    ("None+In", "subscribe"): ("None+In", False),
    ("None+In", "subscribed"): ("None+In", False),
    ("None+In", "unsubscribe"): ("None", True),
    ("None+In", "unsubscribed"): ("None+In", False),
    ("None+Out/In", "subscribe"): ("None+Out/In", False),
    ("None+Out/In", "subscribed"): ("To+In", True),
    ("None+Out/In", "unsubscribe"): ("None+Out", True),
    ("None+Out/In", "unsubscribed"): ("None+In", True),
    ("To", "subscribe"): ("To+In", True),
    ("To", "subscribed"): ("To", False),
    ("To", "unsubscribe"): ("To", False),
    ("To", "unsubscribed"): ("None", True),
    ("To+In", "subscribe"): ("To+In", False),
    ("To+In", "subscribed"): ("To+In", False),
    ("To+In", "unsubscribe"): ("To", True),
    ("To+In", "unsubscribed"): ("None+In", True),
    ("From", "subscribe"): ("From", False),
    ("From", "subscribed"): ("From", False),
    ("From", "unsubscribe"): ("None", True),
    ("From", "unsubscribed"): ("From", False),
    ("From+Out", "subscribe"): ("From+Out", False),
    ("From+Out", "subscribed"): ("Both", True),
    ("From+Out", "unsubscribe"): ("None+Out", True),
    ("From+Out", "unsubscribed"): ("From", True),
    ("Both", "subscribe"): ("Both", False),
    ("Both", "subscribed"): ("Both", False),
    ("Both", "unsubscribe"): ("To", True),
    ("Both", "unsubscribed"): ("From", True),
}
MIRROR = {"none": "none", "to": "from", "from": "to", "both": "both"}


async def state_of(harness: Harness, client, owner: str, contact: str) -> str:
    """The Appendix A name of `owner`'s state towards `contact`, from the roster the server
    sends and the pending requests it stores."""
    item = (await roster_of(client)).get(contact, {"subscription": "none", "ask": None})
    pending_in = contact in (await harness.ctx.rosters.repo.load(owner)).pending
    flags = [flag for flag, on in (("Out", item["ask"] == "subscribe"), ("In", pending_in)) if on]
    name = item["subscription"].capitalize()
    return name + ("+" + "/".join(flags) if flags else "")


def mirrored(state: str) -> str:
    """Bob's state towards alice when alice's towards bob is `state`."""
    name, _, flags = state.partition("+")
    flipped = sorted({"Out": "In", "In": "Out"}[f] for f in flags.split("/") if f)
    bob_name = MIRROR[name.lower()].capitalize()
    ordered = [f for f in ("Out", "In") if f in flipped]
    return bob_name + ("+" + "/".join(ordered) if ordered else "")


@pytest.mark.parametrize("direction", ["outbound", "inbound"])
@pytest.mark.parametrize("kind", ["subscribe", "subscribed", "unsubscribe", "unsubscribed"])
@pytest.mark.parametrize("start", list(SETUP))
async def test_appendix_a_row(harness: Harness, start: str, kind: str, direction: str) -> None:
    await harness.add_user("alice")
    await harness.add_user("bob")
    clients = {}
    inboxes = {}
    for name in ("alice", "bob"):
        client = await harness.login(name)
        client.auto_authorize = None
        client.auto_subscribe = False
        inboxes[name] = Inbox(client)
        client.send_presence()
        clients[name] = client
    jid = {"alice": ALICE, "bob": BOB}
    other = {"alice": "bob", "bob": "alice"}
    for sender, stanza_type in SETUP[start]:
        clients[sender].send_presence(pto=jid[other[sender]], ptype=stanza_type)
        await sync(clients[sender], clients[other[sender]])
    assert await state_of(harness, clients["alice"], "alice", BOB) == start
    assert await state_of(harness, clients["bob"], "bob", ALICE) == mirrored(start)
    for inbox in inboxes.values():
        inbox.drain()

    sender = "alice" if direction == "outbound" else "bob"
    receiver = other[sender]
    expected_state, delivered = (OUTBOUND if direction == "outbound" else INBOUND)[(start, kind)]
    clients[sender].send_presence(pto=jid[receiver], ptype=kind)
    await sync(clients[sender], clients[receiver], clients[sender])

    assert await state_of(harness, clients["alice"], "alice", BOB) == expected_state
    assert await state_of(harness, clients["bob"], "bob", ALICE) == mirrored(expected_state)
    got = [p for p in inboxes[receiver].drain() if p["type"] == kind]
    assert [str(p["from"]) for p in got] == ([jid[sender]] if delivered else [])
