"""Names that travel with subscription requests, and names read many at once, with real
clients and the slixmpp plugin: a request's nickname (XEP-0172) reaches the contact, stays
with the pending request, goes out again at the contact's next login and shows in the
visibility lists, the pending command and the command line; a request without one carries
the requester's display name; control characters are dropped and a nickname longer than a
display name is refused, saying why; the names query answers for many accounts in one IQ and
leaves out whoever has no name, does not exist or is across a block either way.
"""

from __future__ import annotations

from typing import Any

import pytest
import slixmpp
from slixmpp.exceptions import IqError
from slixmpp.xmlstream import ET

from chorus_presence.client.plugin import Request
from tests.integration.harness import (
    ADHOC,
    DOMAIN,
    Harness,
    Inbox,
    config_of,
    execute,
    fields,
    ok,
    options,
    presence_of,
    sync,
)
from tests.integration.harness.constants import TIMEOUT

ALICE, BOB, CAROL, DAVE = (f"{name}@{DOMAIN}" for name in ("alice", "bob", "carol", "dave"))
NICK = "{http://jabber.org/protocol/nick}nick"
NAMES = "urn:chorus:names:0"
# Beside the test's config, so that every test has its own admin socket.
pytestmark = pytest.mark.server_config(admin={"socket": "admin.sock"})


@pytest.fixture
async def users(harness: Harness) -> Harness:
    for name in ("alice", "bob", "carol", "dave"):
        await harness.add_user(name)
    return harness


async def bot(
    harness: Harness, user: str, resource: str = "test"
) -> tuple[slixmpp.ClientXMPP, Inbox]:
    client = harness.make_client(user, resource=resource, plugins=("xep_0191",))
    client.register_plugin("chorus", module="chorus_presence.client.plugin")
    client.auto_authorize = None
    client.auto_subscribe = False
    assert await harness.connect(client) == "session_start"
    inbox = Inbox(client)
    client.send_presence()
    await inbox.get(presence_of(client, "available", f"{user}@{DOMAIN}/{resource}"))
    return client, inbox


def nick_of(stanza: Any) -> str | None:
    return stanza.xml.findtext(NICK)


async def test_a_nickname_goes_with_the_request_now_and_at_the_next_login(users: Harness) -> None:
    alice, _ = await bot(users, "alice")
    bob, bob_in = await bot(users, "bob")
    # Bob's display name is not what Alice asked to be known by: her nickname wins.
    await bob.plugin["chorus"].set_name("Robert")
    await alice.plugin["chorus"].set_name("Alice Liddell")
    alice.plugin["chorus"].subscribe(BOB, nick="Ally", status="Hi, it's Alice")
    live = await bob_in.expect(presence_of(bob, "subscribe", ALICE), "the request")
    assert (nick_of(live), live["status"]) == ("Ally", "Hi, it's Alice")
    assert await bob.plugin["chorus"].pending() == [Request(ALICE, "Hi, it's Alice", "Ally")]

    bob.disconnect()
    again, again_in = await bot(users, "bob", "phone")
    resent = await again_in.expect(presence_of(again, "subscribe", ALICE), "the request again")
    assert (nick_of(resent), resent["status"]) == ("Ally", "Hi, it's Alice")
    # Kept in storage, not only in memory.
    await users.restart()
    bob, _ = await bot(users, "bob")
    assert await bob.plugin["chorus"].pending() == [Request(ALICE, "Hi, it's Alice", "Ally")]


async def test_a_request_without_a_nickname_carries_the_display_name(users: Harness) -> None:
    alice, _ = await bot(users, "alice")
    carol, _ = await bot(users, "carol")
    bob, bob_in = await bot(users, "bob")
    await alice.plugin["chorus"].set_name("Alice Liddell")
    alice.plugin["chorus"].subscribe(BOB)
    carol.plugin["chorus"].subscribe(BOB)
    from_alice = await bob_in.expect(presence_of(bob, "subscribe", ALICE), "Alice's request")
    from_carol = await bob_in.expect(presence_of(bob, "subscribe", CAROL), "Carol's request")
    assert (nick_of(from_alice), nick_of(from_carol)) == ("Alice Liddell", None)
    # Only what the request carried is kept with it; the name goes out as it is at each login.
    assert await bob.plugin["chorus"].pending() == [Request(ALICE), Request(CAROL)]
    await alice.plugin["chorus"].set_name("Alice P. Liddell")
    bob.disconnect()
    bob, bob_in = await bot(users, "bob", "phone")
    resent = await bob_in.expect(presence_of(bob, "subscribe", ALICE), "the request again")
    assert nick_of(resent) == "Alice P. Liddell"


async def test_nicknames_lose_control_characters_and_may_not_be_too_long(users: Harness) -> None:
    alice, alice_in = await bot(users, "alice")
    bob, bob_in = await bot(users, "bob")
    # XML carries no C0 control but tab, newline and return; the C1 ones pass through it.
    alice.plugin["chorus"].subscribe(BOB, nick=" Al\tice\u0085 Liddell\n")
    live = await bob_in.expect(presence_of(bob, "subscribe", ALICE), "the request")
    assert nick_of(live) == "Alice Liddell"
    assert await bob.plugin["chorus"].pending() == [Request(ALICE, nick="Alice Liddell")]

    carol, carol_in = await bot(users, "carol")
    carol.plugin["chorus"].subscribe(BOB, nick="é" * 65)
    error = await carol_in.expect(lambda s: s["type"] == "error", "the refusal")
    assert (error["error"]["condition"], error["error"]["text"]) == (
        "bad-request",
        "The nickname is longer than 64 characters",
    )
    # Nothing reached Bob, and nothing waits for him.
    await sync(carol, bob)
    assert not [s for s in bob_in.drain() if s["from"].bare == CAROL]
    assert [r.jid for r in await bob.plugin["chorus"].pending()] == [ALICE]
    # The longest nickname is kept whole; a nickname of spaces is none at all.
    carol.plugin["chorus"].subscribe(BOB, nick="é" * 64)
    dave, _ = await bot(users, "dave")
    dave.plugin["chorus"].subscribe(BOB, nick="  ")
    await sync(carol, dave, bob)
    assert await bob.plugin["chorus"].pending() == [
        Request(ALICE, nick="Alice Liddell"),
        Request(CAROL, nick="é" * 64),
        Request(DAVE),
    ]
    assert not [s for s in alice_in.drain() if s["type"] == "error"]


async def test_the_names_query_answers_for_many_and_respects_blocks(users: Harness) -> None:
    alice, _ = await bot(users, "alice")
    bob, _ = await bot(users, "bob")
    carol, _ = await bot(users, "carol")
    for client, name in ((alice, "Alice"), (bob, "Bob"), (carol, "Carol")):
        await client.plugin["chorus"].set_name(name)
    asked = [ALICE, BOB, CAROL, DAVE, f"nobody@{DOMAIN}", "bob@elsewhere.example", DOMAIN]
    # Dave has no name; nobody does not exist; the others are not of this server.
    assert await bob.plugin["chorus"].names(asked) == {ALICE: "Alice", BOB: "Bob", CAROL: "Carol"}
    # Alice blocks Carol: neither learns the other's name, whoever asks.
    await alice.plugin["xep_0191"].block([CAROL], timeout=TIMEOUT)
    assert await carol.plugin["chorus"].names(asked) == {BOB: "Bob", CAROL: "Carol"}
    assert await alice.plugin["chorus"].names(asked) == {ALICE: "Alice", BOB: "Bob"}
    # What a vCard get answers, one at a time.
    assert await bob.plugin["chorus"].get_name(ALICE) == "Alice"
    with pytest.raises(IqError) as caught:
        await carol.plugin["chorus"].get_name(ALICE)
    assert caught.value.condition == "forbidden"


async def test_the_names_query_refuses_what_it_cannot_answer(users: Harness) -> None:
    alice, _ = await bot(users, "alice")
    with pytest.raises(IqError) as caught:
        await alice.plugin["chorus"].names([f"user{n}@{DOMAIN}" for n in range(501)])
    assert (caught.value.condition, caught.value.text) == (
        "bad-request",
        "At most 500 addresses in one request",
    )
    with pytest.raises(IqError) as caught:
        await alice.plugin["chorus"].names(["not a jid@"])
    assert caught.value.condition == "jid-malformed"
    iq = alice.make_iq_get(ito=BOB)
    iq.append(ET.Element(f"{{{NAMES}}}names"))
    with pytest.raises(IqError) as caught:
        await iq.send(timeout=TIMEOUT)
    assert caught.value.condition == "forbidden"


async def test_the_server_lists_the_names_query(users: Harness) -> None:
    alice = await users.login("alice", plugins=("xep_0030",))
    server = await alice.plugin["xep_0030"].get_info(DOMAIN, timeout=TIMEOUT)
    assert NAMES in server["disco_info"]["features"]


async def test_the_pending_command_and_the_command_line_show_the_nickname(users: Harness) -> None:
    alice, _ = await bot(users, "alice")
    carol, _ = await bot(users, "carol")
    bob = await users.login("bob", plugins=ADHOC)
    alice.plugin["chorus"].subscribe(BOB, nick="Ally", status="it's me")
    carol.plugin["chorus"].subscribe(BOB, nick="Carol")
    await sync(alice, carol, bob)
    form = fields(await execute(bob, "urn:chorus:cmd:pending"))
    assert options(form["accept"]) == {ALICE: f"{ALICE}: Ally, “it's me”", CAROL: f"{CAROL}: Carol"}
    run = await ok(config_of(users), "visibility", "pending", "bob")
    assert run.out.splitlines()[-2:] == [f"  {ALICE} (Ally): it's me", f"  {CAROL} (Carol)"]
