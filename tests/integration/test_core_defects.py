"""Four defects of the core, each pinned down end to end with real clients and raw sockets:

- a user name removed and registered again inherits nothing of the old account (contacts'
  rosters and presence, pending requests, block list, settings), whether the account went
  in-band (XEP-0077), through the admin command line while the server runs, or through it
  while the server is stopped;
- repeated stream management resumptions (XEP-0198) hold one connection each, so the
  per-address connection limit never refuses a client that only ever has one open;
- a handler that raises is answered with internal-server-error and the stream lives on;
- a visibility request refused with bad-request changes nothing, not even its valid part.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
import slixmpp
from slixmpp.exceptions import IqError
from slixmpp.xmlstream import ET

from tests.integration.harness import (
    DOMAIN,
    TIMEOUT,
    Harness,
    RawClient,
    block_list,
    config_of,
    ending,
    link,
    listed,
    ok,
    online,
    ping,
    presence_of,
    pushed,
    raw_login,
    roster_of,
    sync,
    visibility,
)

ALICE, BOB, CAROL, DAVE = (f"{name}@{DOMAIN}" for name in ("alice", "bob", "carol", "dave"))
SM = "urn:xmpp:sm:3"
PLAINTEXT = {"tls": {"required": False}}
BLOCKING = ("xep_0191",)
NEW_PASSWORD = "a different horse entirely"
ROSTER_ITEM = "{jabber:iq:roster}query/{jabber:iq:roster}item"


@pytest.fixture
async def users(harness: Harness) -> Harness:
    for name in ("alice", "bob", "carol", "dave"):
        await harness.add_user(name)
    return harness


def about(jid: str) -> Callable[[Any], bool]:
    """A predicate: presence or a message from `jid` (any resource), or a roster push of it."""

    def matches(stanza: Any) -> bool:
        if stanza.name == "iq":
            # A roster result lists the whole roster; only a push says something changed.
            item = stanza.xml.find(ROSTER_ITEM)
            return stanza["type"] == "set" and item is not None and item.get("jid") == jid
        return stanza["from"].bare == jid

    return matches


# A recycled user name


async def remove_in_band(harness: Harness, alice: slixmpp.ClientXMPP) -> None:
    """XEP-0077 section 3.2: alice cancels her registration, and the server ends her stream."""
    ended, _ = ending(alice)
    iq = alice.make_iq_set(ito=DOMAIN)
    query = ET.Element("{jabber:iq:register}query")
    ET.SubElement(query, "{jabber:iq:register}remove")
    iq.append(query)
    await iq.send(timeout=TIMEOUT)
    await asyncio.wait_for(ended, TIMEOUT)


async def remove_by_admin(harness: Harness, alice: slixmpp.ClientXMPP) -> None:
    """`chorus-presence user remove alice` through the running server's admin socket."""
    ended, _ = ending(alice)
    await ok(config_of(harness), "user", "remove", "alice")
    await asyncio.wait_for(ended, TIMEOUT)


REMOVALS = {"in-band": remove_in_band, "admin": remove_by_admin}


@pytest.mark.parametrize("removal", [*REMOVALS, "admin-stopped"])
async def test_a_recycled_user_name_inherits_nothing(users: Harness, removal: str) -> None:
    await link(users, "alice", "bob")
    alice, alice_in = await online(users, "alice", plugins=BLOCKING)
    bob, bob_in = await online(users, "bob", roster=True)
    await bob_in.expect(presence_of(bob, "available", f"{ALICE}/test"), "alice seen by bob")
    dave, _ = await online(users, "dave")
    dave.send_presence(pto=ALICE, ptype="subscribe")
    await alice_in.expect(presence_of(alice, "subscribe", DAVE), "dave's request to alice")
    await alice.plugin["xep_0191"].block([CAROL], timeout=TIMEOUT)
    overview = await visibility(alice, **{"away-when-offline": "true"})
    # What the new alice must not inherit is all there before the old one goes.
    assert overview.get("away-when-offline") == "true"
    assert listed(overview, "pending") == (1, [DAVE])
    assert await block_list(alice) == [CAROL]
    assert (await roster_of(bob))[ALICE]["subscription"] == "both"

    if removal in REMOVALS:
        await REMOVALS[removal](users, alice)
        await bob_in.expect(
            presence_of(bob, "unavailable", f"{ALICE}/test"), "alice's unavailable at bob"
        )
        await bob_in.expect(
            lambda s: pushed(ALICE, "remove")(s) or pushed(ALICE, "none")(s),
            "a roster push to bob taking alice's subscription away",
        )
    else:
        config = config_of(users)
        await users.restart(while_stopped=lambda: ok(config, "user", "remove", "alice"))
        bob, bob_in = await online(users, "bob", roster=True)
    await sync(bob)
    # Not even "away, not logged in": the account is gone, not offline.
    ghosts = [
        str(s)
        for s in bob_in.drain()
        if s.name == "presence" and s["from"].bare == ALICE and s["type"] != "unavailable"
    ]
    assert ghosts == [], "bob still sees the removed alice"
    assert ALICE not in await roster_of(bob), "the removed alice is still in bob's roster"

    # The name is registered again, by someone else as far as anyone can tell.
    await users.add_user("alice", NEW_PASSWORD)
    alice, alice_in = await online(users, "alice", password=NEW_PASSWORD, plugins=BLOCKING)
    carol, _ = await online(users, "carol")
    assert await roster_of(alice) == {}
    assert await block_list(alice) == []
    overview = await visibility(alice)
    assert (overview.get("policy"), overview.get("away-when-offline")) == ("ask", "false")
    for name in ("pending", "allowed", "blocked"):
        assert listed(overview, name) == (0, []), f"the new alice's {name} list"
    # bob's presence, as sent at her login or as he changes it, never reaches her.
    bob.send_presence(pstatus="still here")
    await sync(bob, alice)
    inherited = [str(s) for s in alice_in.drain() if s["from"].bare != ALICE]
    assert inherited == [], "the new alice received the old one's presence or requests"
    await sync(alice, bob)
    heard = [str(s) for s in bob_in.drain() if about(ALICE)(s)]
    assert heard == [], "bob heard of the new alice's login"

    carol.send_message(mto=ALICE, mbody="hello, new alice", mtype="chat")
    message = await alice_in.expect(
        lambda s: s.name == "message" and s["from"].bare == CAROL,
        "carol's message to the new alice (the old alice's block list still applies)",
    )
    assert (message["type"], message["body"]) == ("chat", "hello, new alice")


# Stream management resumptions and the connection limit

RESUMPTIONS = 6


async def reconnect(harness: Harness, number: int) -> RawClient:
    """A new connection, authenticated as alice and not bound: ready to resume."""
    try:
        return await raw_login(harness, "alice", bind=False)
    except (AssertionError, ConnectionError) as refused:
        # What the server said before it closed the connection, when the reset left it.
        said = harness.raw_connections[-1].received
        pytest.fail(f"resumption {number}: the connection was refused: {said!r} ({refused!r})")


@pytest.mark.server_config(**PLAINTEXT, limits={"connections_per_address": 3})
async def test_repeated_resumptions_each_hold_one_connection(harness: Harness) -> None:
    await harness.add_user("alice")
    raw = await raw_login(harness, "alice")
    raw.send("<presence/>")
    await raw.expect(rf"<presence[^>]*from=\"{ALICE}/")
    raw.received = b""
    raw.send(f"<enable xmlns='{SM}' resume='true'/>")
    sm_id = (await raw.expect(rb"<enabled [^>]*id='([^']+)'"))[1].decode()

    # Each round ends with a ping, one stanza each way: so before round n each side has
    # handled n - 1 stanzas of the other's since <enable/>, and both counters must say so.
    for number in range(1, RESUMPTIONS + 1):
        # The connection dies; the resume handler itself waits for the server to notice.
        raw.writer.transport.abort()
        raw = await reconnect(harness, number)
        handled = number - 1
        raw.send(f"<resume xmlns='{SM}' previd='{sm_id}' h='{handled}'/>")
        answer = await raw.expect(rb"<resumed [^>]*/>|<failed .*?</failed>|</stream:stream>")
        assert answer[0] == f"<resumed xmlns='{SM}' h='{handled}' previd='{sm_id}'/>".encode(), (
            f"resumption {number}: {raw.received!r}"
        )
        raw.received = raw.received[answer.end() :]
        await ping(raw, f"round-{number}")

    # One connection is open after all that, so another one from the address is welcome.
    other = await raw_login(harness, "alice")
    await ping(other, "another")


# A handler that raises


async def test_a_failing_handler_is_answered_and_the_stream_lives_on(users: Harness) -> None:
    await link(users, "alice", "bob")
    bob, bob_in = await online(users, "bob")
    alice, _ = await online(users, "alice")
    await bob_in.expect(presence_of(bob, "available", f"{ALICE}/test"), "alice seen by bob")

    def boom(_request: object) -> object:
        raise RuntimeError("boom")

    users.ctx.bus.on("iq-get/server/{urn:test:boom}boom", boom)
    ended, errors = ending(alice)
    iq = alice.make_iq_get(ito=DOMAIN)
    iq["id"] = "b1"
    iq.append(ET.Element("{urn:test:boom}boom"))
    with pytest.raises(IqError) as raised:
        await iq.send(timeout=TIMEOUT)
    assert raised.value.iq["error"]["condition"] == "internal-server-error"

    # The same stream answers a ping, and nobody saw alice go.
    await sync(alice, bob)
    assert not ended.done() and errors == [], f"alice's stream ended: {errors}"
    gone = [str(p) for p in bob_in.drain() if p["from"].bare == ALICE]
    assert gone == [], "bob was shown alice leaving"


# A refused visibility request


async def test_a_refused_visibility_request_changes_nothing(users: Harness) -> None:
    bob, bob_in = await online(users, "bob")
    carol, carol_in = await online(users, "carol")
    carol.send_presence(pto=BOB, ptype="subscribe")
    await bob_in.expect(presence_of(bob, "subscribe", CAROL), "carol's request to bob")
    before = await visibility(bob)
    assert (before.get("policy"), before.get("away-when-offline")) == ("ask", "false")
    assert listed(before, "pending") == (1, [CAROL])

    # A valid policy beside an invalid boolean: the whole request is refused.
    with pytest.raises(IqError) as raised:
        await visibility(bob, policy="nobody", **{"away-when-offline": "perhaps"})
    assert raised.value.iq["error"]["condition"] == "bad-request"

    after = await visibility(bob)
    assert (after.get("policy"), after.get("away-when-offline")) == ("ask", "false")
    assert listed(after, "pending") == (1, [CAROL])
    assert listed(after, "blocked") == (0, [])
    await sync(bob, carol)
    refused = [str(p) for p in carol_in.drain() if p["type"] == "unsubscribed"]
    assert refused == [], "carol's request was refused"
    assert (await roster_of(carol))[BOB]["ask"] == "subscribe"
