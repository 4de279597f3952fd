"""Who may see my presence, exactly: the route answer keeps the presence blocked list, the
pending count is pushed whenever it changes, and the lists take only real users, refused alike
over the IQ extension and the command line, while rows older versions let in still work."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import slixmpp
from slixmpp.exceptions import IqError
from slixmpp.xmlstream import ET
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

from chorus_presence.storage.rosters import RosterChanges, RosterItem
from tests.integration.harness import (
    ADHOC,
    DOMAIN,
    TIMEOUT,
    Harness,
    Inbox,
    complete,
    config_of,
    execute,
    fails,
    fields,
    listed,
    ok,
    online,
    options,
    presence_of,
    sync,
    visibility,
)

ALICE, BOB, CAROL, DAVE, ERIN = (
    f"{name}@{DOMAIN}" for name in ("alice", "bob", "carol", "dave", "erin")
)
BOSS, PBX = f"boss@{DOMAIN}", f"pbx@{DOMAIN}"
GHOST, PHANTOM = f"ghost@{DOMAIN}", f"phantom@{DOMAIN}"
VIS = "urn:chorus:visibility:0"
CHORUS = "chorus_presence.client.plugin"


@pytest.fixture
async def users(harness: Harness) -> Harness:
    for name in ("alice", "bob", "carol", "dave", "erin", "boss", "pbx"):
        await harness.add_user(name)
    return harness


async def bot(
    harness: Harness, user: str, resource: str = "bot"
) -> tuple[slixmpp.ClientXMPP, Inbox]:
    """A client with the chorus plugin that has sent initial presence."""
    client = harness.make_client(user, resource=resource)
    client.register_plugin("chorus", module=CHORUS)
    client.auto_authorize = None
    client.auto_subscribe = False
    assert await harness.connect(client) == "session_start"
    inbox = Inbox(client)
    client.send_presence()
    await inbox.get(presence_of(client, "available", f"{user}@{DOMAIN}/{resource}"))
    return client, inbox


async def act(client: slixmpp.ClientXMPP, action: str, jid: str) -> None:
    iq = client.make_iq_set()
    iq.append(ET.Element(f"{{{VIS}}}{action}", {"jid": jid}))
    await iq.send(timeout=TIMEOUT)


async def refusal(request: Any) -> tuple[str, str]:
    """The condition and text of the error a request coroutine ends with."""
    with pytest.raises(IqError) as caught:
        await request
    return caught.value.condition, caught.value.text


# The route answer and the presence blocked list


@pytest.mark.server_config(top_level={"admins": [BOSS]})
async def test_the_route_is_refused_to_whom_the_user_keeps_from_their_presence(
    users: Harness,
) -> None:
    alice, _ = await bot(users, "alice")
    boss, _ = await bot(users, "boss")
    pbx, _ = await bot(users, "pbx")
    await users.ctx.call_routing.set_permission("pbx", True)
    alice.plugin["chorus"].send_state("in-meeting")
    await sync(alice)
    for asker in (boss, pbx):
        assert (await asker.plugin["chorus"].route(ALICE)).state == "in-meeting"

    for asker, jid in ((boss, BOSS), (pbx, PBX)):
        await alice.plugin["chorus"].block(jid)
        assert await refusal(asker.plugin["chorus"].route(ALICE)) == (
            "forbidden",
            f"{ALICE} keeps you from seeing their presence, which the route would reveal",
        )
    # A stranger is refused as before, with the subject named.
    bob, _ = await bot(users, "bob")
    assert await refusal(bob.plugin["chorus"].route(ALICE)) == (
        "forbidden",
        f"You may not ask how {ALICE}'s calls are routed",
    )

    await alice.plugin["chorus"].allow(BOSS)
    assert (await boss.plugin["chorus"].route(ALICE)).state == "in-meeting"
    # The user themself always may.
    assert (await alice.plugin["chorus"].route()).state == "in-meeting"


# The pending count, pushed


def count_push(count: int) -> Any:
    """A predicate: the pending count notification from the user's own bare JID."""

    def matches(stanza: Any) -> bool:
        if stanza.name != "message" or stanza["type"] != "headline":
            return False
        node = stanza.xml.find(f"{{{VIS}}}pending")
        return (
            node is not None
            and str(stanza["from"]) == ALICE
            and stanza["to"].bare == ALICE
            and node.get("count") == str(count)
        )

    return matches


async def test_the_pending_count_is_pushed_to_every_resource_on_each_change(
    users: Harness,
) -> None:
    alice, _ = await bot(users, "alice", "phone")
    counts: asyncio.Queue[int] = asyncio.Queue()
    alice.add_event_handler("chorus_pending", counts.put_nowait)
    # A stock client that never sent presence is online too, and gets the same message.
    laptop = await users.login("alice", resource="laptop")
    laptop.auto_authorize = None
    laptop.register_handler(
        Callback(
            "any pending element",
            MatchXPath(f"{{jabber:client}}message/{{{VIS}}}pending"),
            lambda message: laptop.event("pending message", message),
        )
    )
    laptop_in = Inbox(laptop, "pending message")
    bob, bob_in = await online(users, "bob")
    carol, carol_in = await online(users, "carol")
    dave, dave_in = await online(users, "dave")
    erin, _ = await online(users, "erin")
    chorus = alice.plugin["chorus"]

    async def pushed(count: int, what: str) -> None:
        assert await asyncio.wait_for(counts.get(), TIMEOUT) == count, what
        await laptop_in.expect(count_push(count), what)

    bob.send_presence(pto=ALICE, ptype="subscribe")
    await pushed(1, "a request arrives")
    carol.send_presence(pto=ALICE, ptype="subscribe")
    await pushed(2, "a second request arrives")
    await chorus.accept(BOB)
    await pushed(1, "a request accepted")
    carol.send_presence(pto=ALICE, ptype="unsubscribe")
    await pushed(0, "a request withdrawn")

    dave.send_presence(pto=ALICE, ptype="subscribe")
    await pushed(1, "a request arrives")
    await chorus.block(DAVE)
    await pushed(0, "a requester blocked")
    # A refused request changes no count, so nothing is pushed.
    dave.send_presence(pto=ALICE, ptype="subscribe")
    await dave_in.get(presence_of(dave, "unsubscribed", ALICE))
    await sync(dave, alice, laptop)
    assert counts.empty() and not [m for m in laptop_in.drain() if count_push(1)(m)]

    erin.send_presence(pto=ALICE, ptype="subscribe")
    await pushed(1, "a request arrives")
    assert await users.ctx.accounts.remove("erin")
    await pushed(0, "the requester's account removed")

    carol.send_presence(pto=ALICE, ptype="subscribe")
    await pushed(1, "a request arrives")
    await chorus.set_policy("everyone")
    await pushed(0, "a policy that answers the pending requests")
    await carol_in.get(presence_of(carol, "subscribed", ALICE))
    # Stanzas from others never pass for the server's notification.
    bob_in.drain()
    forged = bob.make_message(mto=f"{ALICE}/phone", mtype="headline")
    forged.append(ET.Element(f"{{{VIS}}}pending", {"count": "7"}))
    forged.send()
    await sync(bob, alice)
    assert counts.empty()


# The lists take only real users


@pytest.mark.parametrize(
    "jid,condition,text",
    [
        (f"nosuch@{DOMAIN}", "item-not-found", f"No such user nosuch@{DOMAIN}"),
        ("bob@@x", "jid-malformed", "'bob@@x' is not a valid JID"),
        (DOMAIN, "bad-request", f"{DOMAIN} is a domain, not a user"),
        (
            "bob@elsewhere.example",
            "item-not-found",
            f"bob@elsewhere.example is not a user of {DOMAIN}, and only its users can see"
            " your presence",
        ),
    ],
)
async def test_the_lists_refuse_what_is_no_user_here(
    users: Harness, jid: str, condition: str, text: str
) -> None:
    alice, _ = await online(users, "alice")
    for action in ("allow", "block"):
        assert await refusal(act(alice, action, jid)) == (condition, text)
    overview = await visibility(alice)
    assert listed(overview, "allowed") == (0, [])
    assert listed(overview, "blocked") == (0, [])
    # Nothing was written on the side: no pre-approval or item hides in the roster.
    assert (await users.ctx.rosters.roster("alice")).items == {}


async def test_accepting_names_what_is_wrong(users: Harness) -> None:
    alice, _ = await online(users, "alice")
    assert await refusal(act(alice, "accept", BOB)) == (
        "item-not-found",
        f"No pending request from {BOB}",
    )
    assert await refusal(act(alice, "accept", "bob@@x")) == (
        "jid-malformed",
        "'bob@@x' is not a valid JID",
    )
    assert await refusal(act(alice, "block", ALICE)) == ("not-allowed", "You cannot block yourself")


@pytest.mark.server_config(admin={"socket": "admin.sock"})
async def test_the_command_line_shows_the_services_refusal(users: Harness) -> None:
    config = config_of(users)
    await fails(
        config, 1, "visibility", "allow", "alice", "nosuch", needle=f"No such user nosuch@{DOMAIN}"
    )
    await fails(
        config, 1, "visibility", "block", "alice", "bob@@x", needle="'bob@@x' is not a valid JID"
    )
    await fails(
        config,
        1,
        "visibility",
        "block",
        "alice",
        "bob@elsewhere.example",
        needle=f"bob@elsewhere.example is not a user of {DOMAIN}",
    )
    await fails(
        config, 1, "visibility", "accept", "alice", "bob", needle=f"No pending request from {BOB}"
    )
    await fails(
        config,
        1,
        "visibility",
        "block",
        "alice",
        DOMAIN,
        needle=f"{DOMAIN} is a domain, not a user",
    )
    shown = (await ok(config, "visibility", "show", "alice", "--json")).json()
    assert (shown["allowed"], shown["blocked"]) == ([], [])
    # A localpart still names a user of this server.
    blocked = (await ok(config, "visibility", "block", "alice", "bob", "--json")).json()
    assert blocked["blocked"] == [BOB]


async def plant_phantoms(harness: Harness) -> None:
    """Rows older versions let in: a pre-approval of no user, a block of no user and of a
    bare domain."""
    ctx = harness.ctx
    await ctx.rosters.commit(RosterChanges(upserts=[("alice", RosterItem(PHANTOM, approved=True))]))
    await ctx.visibility.presence_blocks.add("alice", GHOST)
    await ctx.visibility.presence_blocks.add("alice", "elsewhere.example")


async def test_rows_of_older_versions_can_still_be_moved(users: Harness) -> None:
    await plant_phantoms(users)
    alice, _ = await online(users, "alice")
    overview = await visibility(alice)
    assert listed(overview, "allowed") == (1, [PHANTOM])
    assert listed(overview, "blocked") == (2, ["elsewhere.example", GHOST])

    await act(alice, "block", PHANTOM)
    await act(alice, "allow", GHOST)
    await act(alice, "allow", "elsewhere.example")
    overview = await visibility(alice)
    assert listed(overview, "allowed") == (2, ["elsewhere.example", GHOST])
    assert listed(overview, "blocked") == (1, [PHANTOM])


async def test_ad_hoc_commands_move_rows_of_older_versions(users: Harness) -> None:
    await plant_phantoms(users)
    alice, _ = await online(users, "alice", plugins=ADHOC)
    command = await execute(alice, "urn:chorus:cmd:blocked")
    assert set(options(fields(command)["allow"])) == {"elsewhere.example", GHOST}
    assert GHOST in await complete(alice, command, {"allow": [GHOST]})
    command = await execute(alice, "urn:chorus:cmd:allowed")
    assert set(options(fields(command)["block"])) == {GHOST, PHANTOM}
    assert PHANTOM in await complete(alice, command, {"block": [PHANTOM]})
    overview = await visibility(alice)
    assert listed(overview, "allowed") == (1, [GHOST])
    assert listed(overview, "blocked") == (2, ["elsewhere.example", PHANTOM])
