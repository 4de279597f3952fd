"""What crosses between users who may not see each other, with real clients: message bounces
that must not tell a stranger whether someone is logged in or exists, the offline store's
quota and whom it takes messages from, and IQ results and errors across an XEP-0191 block.

"May see the user's presence" is the rule of last activity: the user's roster has the sender
with subscription 'from' or 'both'. Everyone else is a stranger here, including a contact the
user keeps on the presence blocked list.
"""

from __future__ import annotations

from typing import Any

import pytest
from lxml import etree

from tests.integration.harness import (
    DOMAIN,
    Harness,
    Inbox,
    Peer,
    link,
    online,
    raw_session,
    sync,
)

ALICE, BOB, CAROL = f"alice@{DOMAIN}", f"bob@{DOMAIN}", f"carol@{DOMAIN}"
# Never registered.
NOBODY = f"nobody@{DOMAIN}"
PLAINTEXT = {"tls": {"required": False}}
STORE = {"offline": "store"}
SM = "urn:xmpp:sm:3"
STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"
# Stanzas near the largest a client may send (limits.max_stanza_bytes, 256 KiB): four fit in
# the default offline quota of 1 MiB, a fifth does not.
BIG_BODY = 250_000
# Lets a test send a few megabytes without waiting on the per-client rate limit.
FAST = {"bytes_per_second": 100_000_000, "burst_bytes": 100_000_000}


@pytest.fixture
async def users(harness: Harness) -> Harness:
    for name in ("alice", "bob", "carol"):
        await harness.add_user(name)
    return harness


def is_message(stanza: Any) -> bool:
    return stanza.name == "message"


def messages(inbox: Inbox) -> list[Any]:
    return [stanza for stanza in inbox.drain() if is_message(stanza)]


def bodies(inbox: Inbox) -> list[str]:
    return [str(stanza["body"]) for stanza in messages(inbox)]


async def keep_from_presence(harness: Harness, owner: str, contact: str) -> None:
    """Put `contact` on `owner`'s presence blocked list, as the visibility extension does."""
    await harness.ctx.visibility.block(owner, contact)


# What a message bounce tells the sender


@pytest.mark.parametrize(
    "to,message_type",
    [
        (CAROL, "chat"),
        (CAROL, "normal"),
        (f"{CAROL}/phone", "chat"),
        (f"{CAROL}/phone", "groupchat"),
        (NOBODY, "chat"),
        (NOBODY, "normal"),
        (f"{NOBODY}/phone", "chat"),
        (f"{NOBODY}/phone", "groupchat"),
    ],
)
async def test_a_stranger_reaches_an_online_user_and_hears_nothing_otherwise(
    users: Harness, to: str, message_type: str
) -> None:
    # carol exists and is not logged in; nobody does not exist. bob sees no one's presence.
    _alice, alice_in = await online(users, "alice")
    bob, bob_in = await online(users, "bob")
    bob.send_message(mto=to, mbody="anyone there?", mtype=message_type)
    bob.send_message(mto=ALICE, mbody="to the account", mtype="chat")
    bob.send_message(mto=f"{ALICE}/test", mbody="to the resource", mtype="chat")
    await alice_in.get(lambda s: is_message(s) and s["body"] == "to the account")
    await alice_in.get(lambda s: is_message(s) and s["body"] == "to the resource")
    await sync(bob)
    assert messages(bob_in) == []


async def test_a_contact_who_sees_presence_is_told_not_logged_in(users: Harness) -> None:
    await link(users, "alice", "carol")
    alice, alice_in = await online(users, "alice")
    bob, bob_in = await online(users, "bob")
    # The same offline carol: her contact alice is told, the stranger bob is not.
    bob.send_message(mto=CAROL, mbody="from a stranger", mtype="chat")
    alice.send_message(mto=CAROL, mbody="from a contact", mtype="chat")
    error = await alice_in.get(is_message)
    assert error["type"] == "error"
    assert error["error"]["condition"] == "service-unavailable"
    assert error["error"]["text"] == "The recipient is not logged in"
    await sync(bob)
    assert messages(bob_in) == []


async def test_a_contact_on_the_presence_blocked_list_is_a_stranger(users: Harness) -> None:
    await link(users, "alice", "carol")
    await keep_from_presence(users, "carol", ALICE)
    alice, alice_in = await online(users, "alice")
    alice.send_message(mto=CAROL, mbody="are you there?", mtype="chat")
    await sync(alice)
    assert messages(alice_in) == []


@pytest.mark.server_config(**PLAINTEXT)
async def test_a_lost_connection_bounces_only_to_those_who_see_presence(users: Harness) -> None:
    await link(users, "alice", "bob")
    raw, jid = await raw_session(users, "alice")
    # Stream management without resumption: what alice never acknowledged is bounced when her
    # stream ends.
    raw.send(f"<enable xmlns='{SM}'/>")
    await raw.expect(f"<enabled xmlns='{SM}'")
    bob, bob_in = await online(users, "bob")
    carol, carol_in = await online(users, "carol")
    carol.send_message(mto=jid, mbody="from the stranger", mtype="chat")
    await raw.expect("from the stranger")
    bob.send_message(mto=jid, mbody="from the contact", mtype="chat")
    await raw.expect("from the contact")
    raw.send("</stream:stream>")

    # Bounced in the order received: carol's bounce, had there been one, was written first.
    bounced = await bob_in.get(is_message)
    assert bounced["type"] == "error"
    assert bounced["error"]["condition"] == "service-unavailable"
    await sync(carol)
    assert messages(carol_in) == []


@pytest.mark.server_config(messages=STORE, **PLAINTEXT)
async def test_a_lost_connection_stores_its_chat_but_never_its_headlines(users: Harness) -> None:
    await link(users, "alice", "bob")
    raw, jid = await raw_session(users, "alice")
    raw.send(f"<enable xmlns='{SM}'/>")
    await raw.expect(f"<enabled xmlns='{SM}'")
    bob, _ = await online(users, "bob")
    bob.send_message(mto=jid, mbody="news of the moment", mtype="headline")
    await raw.expect("news of the moment")
    bob.send_message(mto=jid, mbody="keep this", mtype="chat")
    await raw.expect("keep this")
    raw.send("</stream:stream>")
    # The server closes only once the ended session's messages are dealt with.
    await raw.read_to_close()

    alice = await users.login("alice")
    alice_in = Inbox(alice)
    alice.send_presence()
    stored = await alice_in.get(is_message)
    assert str(stored["body"]) == "keep this"
    await sync(alice)
    assert messages(alice_in) == []


# Offline storage: the quota, and whom it takes messages from


@pytest.mark.server_config(messages=STORE, limits=FAST)
async def test_offline_storage_is_capped_in_bytes(users: Harness) -> None:
    await link(users, "alice", "bob")
    bob, bob_in = await online(users, "bob")
    carol, carol_in = await online(users, "carol")
    for number in range(4):
        bob.send_message(mto=ALICE, mbody=f"{number}" * BIG_BODY, mtype="chat")
    await sync(bob)
    assert messages(bob_in) == []

    # The fifth would pass 1 MiB: the contact is told, the stranger is not, and neither is kept.
    bob.send_message(mto=ALICE, mbody="4" * BIG_BODY, mtype="chat")
    full = await bob_in.get(is_message)
    assert full["type"] == "error"
    assert full["error"]["condition"] == "service-unavailable"
    assert "offline storage is full" in full["error"]["text"]
    carol.send_message(mto=ALICE, mbody="c" * (BIG_BODY // 4), mtype="chat")
    await sync(carol)
    assert messages(carol_in) == []

    alice = await users.login("alice")
    alice_in = Inbox(alice)
    alice.send_presence()
    for number in range(4):
        stored = await alice_in.get(is_message)
        assert str(stored["body"]) == f"{number}" * BIG_BODY
    await sync(alice)
    assert messages(alice_in) == []


@pytest.mark.server_config(messages=STORE)
async def test_offline_storage_refuses_the_presence_blocked_list(users: Harness) -> None:
    await keep_from_presence(users, "alice", CAROL)
    bob, bob_in = await online(users, "bob")
    carol, carol_in = await online(users, "carol")
    carol.send_message(mto=ALICE, mbody="kept from your presence", mtype="chat")
    bob.send_message(mto=ALICE, mbody="a stranger, within the quota", mtype="chat")
    await sync(carol, bob)
    assert messages(carol_in) == []
    assert messages(bob_in) == []

    alice = await users.login("alice")
    alice_in = Inbox(alice)
    alice.send_presence()
    stored = await alice_in.get(is_message)
    assert str(stored["body"]) == "a stranger, within the quota"
    await sync(alice)
    assert bodies(alice_in) == []


# IQ results and errors across an XEP-0191 block


async def peer(harness: Harness, user: str) -> tuple[Peer, list[etree._Element]]:
    """A bound raw client and every stanza it receives, IQ responses included."""
    raw, jid = await raw_session(harness, user)
    client = Peer(raw, jid)
    seen: list[etree._Element] = []
    client.listener = seen.append
    return client, seen


def responses(seen: list[etree._Element], *ids: str) -> list[str]:
    return [s.get("id", "") for s in seen if s.tag.endswith("}iq") and s.get("id") in ids]


def send_responses(sender: Peer, to: str, tag: str) -> tuple[str, str]:
    """An unsolicited IQ result and error with payloads, to `to`; their ids."""
    result, error = f"{tag}-result", f"{tag}-error"
    sender.send(f"<iq type='result' id='{result}' to='{to}'><query xmlns='urn:test'/></iq>")
    sender.send(
        f"<iq type='error' id='{error}' to='{to}'><query xmlns='urn:test'/>"
        f"<error type='cancel'><item-not-found xmlns='{STANZAS}'/></error></iq>"
    )
    return result, error


@pytest.mark.server_config(**PLAINTEXT)
@pytest.mark.parametrize("blocked_side", ["sender", "recipient"])
async def test_iq_responses_do_not_cross_a_block(users: Harness, blocked_side: str) -> None:
    alice, alice_seen = await peer(users, "alice")
    bob, bob_seen = await peer(users, "bob")
    sender, recipient, recipient_seen = (
        (bob, alice, alice_seen) if blocked_side == "sender" else (alice, bob, bob_seen)
    )

    # Without a block the responses arrive, payloads and all.
    ids = send_responses(sender, recipient.jid, "open")
    await sender.sync()
    await recipient.sync()
    assert responses(recipient_seen, *ids) == list(ids)

    blocked = await alice.iq("set", f"<block xmlns='urn:xmpp:blocking'><item jid='{BOB}'/></block>")
    assert blocked.get("type") == "result"
    ids = send_responses(sender, recipient.jid, "blocked")
    await sender.sync()
    await recipient.sync()
    assert responses(recipient_seen, *ids) == []
    # Dropped, not answered: a result gets no reply and an error is never answered.
    sender_seen = bob_seen if sender is bob else alice_seen
    assert [s for s in sender_seen if s.get("type") == "error" and s.get("id") in ids] == []
