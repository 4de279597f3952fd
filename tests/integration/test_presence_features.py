"""The seed guide's presence features, sentence by sentence, with real clients: the six states
and custom text, who may see my presence (policies, requests, accept, block, the lists and their
counts, moving people between them) and presence automation."""

from __future__ import annotations

import pytest
from slixmpp.xmlstream import ET

from tests.integration.harness import (
    DOMAIN,
    Harness,
    Inbox,
    listed,
    online,
    presence_of,
    roster_of,
    sync,
    visibility,
)

ALICE, BOB, CAROL = f"alice@{DOMAIN}", f"bob@{DOMAIN}", f"carol@{DOMAIN}"
VIS = "urn:chorus:visibility:0"
STATE = "{urn:chorus:presence:0}state"


@pytest.fixture
async def users(harness: Harness) -> Harness:
    for name in ("alice", "bob", "carol"):
        await harness.add_user(name)
    return harness


async def act(client, action: str, jid: str) -> None:
    iq = client.make_iq_set()
    iq.append(ET.Element(f"{{{VIS}}}{action}", {"jid": jid}))
    await iq.send(timeout=10)


async def mutual(alice, alice_in, bob, bob_in) -> None:
    """bob sees alice (bob asked, alice accepted)."""
    bob.send_presence(pto=ALICE, ptype="subscribe")
    await alice_in.get(presence_of(alice, "subscribe", BOB))
    await act(alice, "accept", BOB)
    await bob_in.get(presence_of(bob, "available", f"{ALICE}/test"))


def send_state(client, state: str | None = None, show: str | None = None, status=None) -> None:
    presence = client.make_presence(pshow=show, pstatus=status)
    if state is not None:
        element = ET.Element(STATE)
        element.text = state
        presence.append(element)
    presence.send()


@pytest.mark.parametrize(
    "state,show,status",
    [
        ("available", None, None),
        ("away", "away", None),
        ("brb", "away", "Be Right Back"),
        ("dnd", "dnd", "Do Not Disturb"),
        ("busy", "dnd", "Busy"),
        ("in-meeting", "dnd", "In a meeting"),
    ],
)
async def test_each_state_is_seen_by_stock_and_extension_clients(
    users: Harness, state: str, show: str | None, status: str | None
) -> None:
    alice, alice_in = await online(users, "alice")
    bob, bob_in = await online(users, "bob")
    await mutual(alice, alice_in, bob, bob_in)
    send_state(alice, state)
    seen = await bob_in.get(
        lambda p: (
            str(p["from"]) == f"{ALICE}/test"
            and p.xml.find(STATE) is not None
            and p.xml.find(STATE).text == state
        )
    )
    assert (seen.xml.findtext("{jabber:client}show")) == show
    assert (seen.xml.findtext("{jabber:client}status")) == status
    # Custom text replaces the default text; the state stays exact.
    send_state(alice, state, status="Back after lunch")
    custom = await bob_in.get(lambda p: p["status"] == "Back after lunch")
    assert custom.xml.find(STATE).text == state
    assert custom.xml.findtext("{jabber:client}show") == show


async def test_a_stock_client_show_is_mapped_to_a_state(users: Harness) -> None:
    alice, alice_in = await online(users, "alice")
    bob, bob_in = await online(users, "bob")
    await mutual(alice, alice_in, bob, bob_in)
    for show, state in (("xa", "away"), ("dnd", "dnd"), ("chat", "available")):
        send_state(alice, show=show)
        seen = await bob_in.get(lambda p, show=show: p.xml.findtext("{jabber:client}show") == show)
        assert seen.xml.find(STATE).text == state


async def test_unknown_state_is_refused(users: Harness) -> None:
    alice, alice_in = await online(users, "alice")
    send_state(alice, "offline")
    error = await alice_in.get(lambda p: p["type"] == "error")
    assert error["error"]["condition"] == "bad-request"


async def test_ask_policy_keeps_requests_pending_with_a_count(users: Harness) -> None:
    alice, _alice_in = await online(users, "alice")
    bob, _ = await online(users, "bob")
    carol, _ = await online(users, "carol")
    assert (await visibility(alice)).get("policy") == "ask"
    for requester in (bob, carol):
        requester.send_presence(pto=ALICE, ptype="subscribe")
    await sync(bob, carol, alice)
    count, pending = listed(await visibility(alice), "pending")
    assert count == 2 and sorted(pending) == [BOB, CAROL]


async def test_accept_and_block_a_pending_request(users: Harness) -> None:
    alice, alice_in = await online(users, "alice")
    bob, bob_in = await online(users, "bob")
    carol, carol_in = await online(users, "carol")
    bob.send_presence(pto=ALICE, ptype="subscribe")
    carol.send_presence(pto=ALICE, ptype="subscribe")
    await sync(bob, carol, alice)
    await act(alice, "accept", BOB)
    await bob_in.get(presence_of(bob, "subscribed", ALICE))
    await bob_in.get(presence_of(bob, "available", f"{ALICE}/test"))
    await act(alice, "block", CAROL)
    await carol_in.get(presence_of(carol, "unsubscribed", ALICE))
    overview = await visibility(alice)
    assert listed(overview, "pending") == (0, [])
    assert listed(overview, "allowed") == (1, [BOB])
    assert listed(overview, "blocked") == (1, [CAROL])
    # A blocked requester's later requests are refused like any refusal.
    alice_in.drain()
    carol.send_presence(pto=ALICE, ptype="subscribe")
    await carol_in.get(presence_of(carol, "unsubscribed", ALICE))
    await sync(carol, alice)
    assert not [p for p in alice_in.drain() if p["type"] == "subscribe"]


async def test_everyone_policy_approves_requests_except_blocked(users: Harness) -> None:
    alice, _ = await online(users, "alice")
    bob, bob_in = await online(users, "bob")
    carol, carol_in = await online(users, "carol")
    await act(alice, "block", CAROL)
    await visibility(alice, policy="everyone")
    bob.send_presence(pto=ALICE, ptype="subscribe")
    await bob_in.get(presence_of(bob, "subscribed", ALICE))
    await bob_in.get(presence_of(bob, "available", f"{ALICE}/test"))
    carol.send_presence(pto=ALICE, ptype="subscribe")
    await carol_in.get(presence_of(carol, "unsubscribed", ALICE))
    overview = await visibility(alice)
    assert listed(overview, "allowed") == (1, [BOB])
    assert listed(overview, "blocked") == (1, [CAROL])


async def test_nobody_policy_refuses_requests_except_allowed(users: Harness) -> None:
    alice, _ = await online(users, "alice")
    bob, bob_in = await online(users, "bob")
    carol, carol_in = await online(users, "carol")
    await visibility(alice, policy="nobody")
    await act(alice, "allow", BOB)  # explicitly allowed in advance
    bob.send_presence(pto=ALICE, ptype="subscribe")
    await bob_in.get(presence_of(bob, "subscribed", ALICE))
    carol.send_presence(pto=ALICE, ptype="subscribe")
    await carol_in.get(presence_of(carol, "unsubscribed", ALICE))
    overview = await visibility(alice)
    assert listed(overview, "allowed") == (1, [BOB])
    assert listed(overview, "blocked") == (1, [CAROL])


async def test_a_policy_change_applies_to_pending_requests(users: Harness) -> None:
    alice, _ = await online(users, "alice")
    bob, bob_in = await online(users, "bob")
    bob.send_presence(pto=ALICE, ptype="subscribe")
    await sync(bob, alice)
    await visibility(alice, policy="everyone")
    await bob_in.get(presence_of(bob, "subscribed", ALICE))
    assert listed(await visibility(alice), "pending") == (0, [])


async def test_moving_between_the_lists_is_live(users: Harness) -> None:
    alice, alice_in = await online(users, "alice")
    bob, bob_in = await online(users, "bob")
    await mutual(alice, alice_in, bob, bob_in)
    await act(alice, "block", BOB)
    await bob_in.get(presence_of(bob, "unsubscribed", ALICE))
    await bob_in.get(presence_of(bob, "unavailable", f"{ALICE}/test"))
    bob_in.drain()
    send_state(alice, "busy")
    await sync(alice, bob)
    assert not [p for p in bob_in.drain() if p["from"].bare == ALICE and p["type"] != "unavailable"]
    assert (await roster_of(bob))[ALICE]["subscription"] == "none"

    await act(alice, "allow", BOB)
    seen = await bob_in.get(presence_of(bob, "dnd", f"{ALICE}/test"))
    assert seen.xml.find(STATE).text == "busy"
    assert (await roster_of(bob))[ALICE]["subscription"] == "to"
    overview = await visibility(alice)
    assert listed(overview, "allowed") == (1, [BOB])
    assert listed(overview, "blocked") == (0, [])


async def test_presence_automation_on_and_off(users: Harness) -> None:
    alice, alice_in = await online(users, "alice")
    bob, bob_in = await online(users, "bob")
    await mutual(alice, alice_in, bob, bob_in)
    assert (await visibility(alice)).get("away-when-offline") == "false"
    await visibility(alice, **{"away-when-offline": "true"})
    alice.abort()
    await bob_in.get(presence_of(bob, "unavailable", f"{ALICE}/test"))
    away = await bob_in.get(lambda p: str(p["from"]) == ALICE and p["type"] == "away")
    assert away["type"] == "away" and away["status"] == "Not logged in"
    assert away.xml.find(STATE).text == "offline"

    # A contact logging in later gets the same answer to the server's probe.
    bob.abort()
    bob = await users.login("bob", resource="again")
    again = Inbox(bob)
    bob.send_presence()
    probe_answer = await again.get(lambda p: str(p["from"]) == ALICE and p["type"] == "away")
    assert probe_answer["status"] == "Not logged in"

    # Switched off while alice is away: bob sees plain unavailable at once.
    alice = await users.login("alice", resource="settings")
    await visibility(alice, **{"away-when-offline": "false"})
    await again.get(lambda p: str(p["from"]) == ALICE and p["type"] == "unavailable")
