"""The services as `composition.build` wires them, on a real SQLite file, driven through the
router by fake sessions: presence broadcast and probes, subscription exchanges, the visibility
policy and its IQ, XEP-0191 blocks, account removal and the presence-settings ad-hoc command.

Every assertion is on the stanzas a session was sent or on what storage now holds; nothing
here opens a socket or sleeps.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from lxml import etree

from chorus_presence.xmpp import namespaces as ns
from chorus_presence.xmpp.jid import JID
from chorus_presence.xmpp.stanza import Element
from tests.unit.fakes import DOMAIN, FakeSession, World, c, error_condition, one, open_world

ALICE, BOB, CAROL, DAVE = (f"{name}@{DOMAIN}" for name in ("alice", "bob", "carol", "dave"))
ROSTER_QUERY = ns.qname(ns.ROSTER, "query")
ROSTER_ITEM = ns.qname(ns.ROSTER, "item")
VISIBILITY = ns.qname(ns.CHORUS_VISIBILITY, "visibility")
STATE = ns.qname(ns.CHORUS_PRESENCE, "state")
COMMAND = ns.qname(ns.COMMANDS, "command")
FORM = ns.qname(ns.DATA_FORMS, "x")
FIELD = ns.qname(ns.DATA_FORMS, "field")
SETTINGS_NODE = "urn:chorus:cmd:presence-settings"


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    async with open_world(tmp_path) as opened:
        for name in ("alice", "bob", "carol", "dave"):
            await opened.add_user(name)
        yield opened


def xml(stanza: Element) -> str:
    return etree.tostring(stanza, encoding="unicode")


def roster_pushes(session: FakeSession) -> list[Element]:
    """The roster items pushed to a session (RFC 6121 section 2.1.6), in order."""
    items = []
    for iq in session.of_kind("iq"):
        query = iq.find(ROSTER_QUERY)
        if iq.get("type") == "set" and query is not None:
            assert iq.get("to") == str(session.jid)
            items.extend(query.findall(ROSTER_ITEM))
    return items


def item_state(item: Element) -> tuple[str | None, str | None, str | None]:
    return item.get("jid"), item.get("subscription"), item.get("ask")


def subscription_stanzas(session: FakeSession) -> list[tuple[str | None, str | None, str | None]]:
    """(type, from, to) of the subscription presences a session received."""
    kinds = ("subscribe", "subscribed", "unsubscribe", "unsubscribed")
    return [
        (p.get("type"), p.get("from"), p.get("to"))
        for p in session.presences()
        if p.get("type") in kinds
    ]


def available_from(session: FakeSession, sender: str) -> list[Element]:
    return [p for p in session.presences(sender=sender) if p.get("type") is None]


async def block(world: World, session: FakeSession, jid: str) -> None:
    """An XEP-0191 block from `session`, which must succeed; whether it is answered only once
    is a test of its own below."""
    await world.send(
        session,
        f"<iq type='set' id='block-{jid}'><block xmlns='{ns.BLOCKING}'>"
        f"<item jid='{jid}'/></block></iq>",
    )
    replies = [r for r in session.of_kind("iq") if r.get("id") == f"block-{jid}"]
    assert replies and replies[0].get("type") == "result", session.dump()
    assert world.components.block_list.blocked(session.jid.bare, JID.parse(jid))


# Presence


async def test_presence_broadcast_reaches_a_subscribed_contact_not_a_stranger(
    world: World,
) -> None:
    await world.befriend("alice", "bob")
    bob, carol = await world.online("bob"), await world.online("carol")
    bob.take(), carol.take()
    alice = await world.online("alice")
    # Initial presence: to the subscriber, addressed to its bare JID (RFC 6121 section 4.2.2).
    [initial] = available_from(bob, str(alice.jid))
    assert initial.get("to") == BOB and initial.findtext(STATE) == "available"
    bob.take()
    await world.send(alice, "<presence><show>away</show><status>Lunch</status></presence>")
    [update] = bob.presences(sender=str(alice.jid))
    assert update.get("to") == BOB and update.get("type") is None
    assert (update.findtext(c("show")), update.findtext(c("status"))) == ("away", "Lunch")
    assert update.findtext(STATE) == "away"
    # Carol has no subscription to alice: she heard neither presence.
    assert carol.received == []
    # Alice's own resources hear it too, the sender included.
    assert alice.presences(sender=str(alice.jid))[-1].findtext(STATE) == "away"


async def test_a_probe_is_answered_only_for_a_contact_the_user_sees(world: World) -> None:
    await world.befriend("alice", "bob")
    # Dave sees alice, but alice does not see dave: her item for him is 'from'.
    await world.components.subscriptions.exchange(
        world.jid("dave"), world.jid("alice"), "subscribe"
    )
    await world.components.subscriptions.exchange(
        world.jid("alice"), world.jid("dave"), "subscribed"
    )
    assert await world.subscription("alice", "dave") == "from"
    bob, carol, dave = [await world.online(name) for name in ("bob", "carol", "dave")]
    alice = await world.online("alice")
    alice.take()
    await world.send(alice, f"<presence type='probe' to='{BOB}'/>")
    [answer] = alice.received
    assert (answer.get("from"), answer.get("to")) == (str(bob.jid), str(alice.jid))
    assert answer.get("type") is None and answer.findtext(STATE) == "available"
    alice.take()
    for stranger in (CAROL, DAVE):
        await world.send(alice, f"<presence type='probe' to='{stranger}'/>")
    assert alice.received == [], alice.dump()
    # Probes are answered by the server: the probed never hear of them.
    assert not [p for s in (carol, dave) for p in s.presences() if p.get("type") == "probe"]
    # A contact alice sees who is offline is answered with unavailable from the bare JID.
    await world.end(bob)
    alice.take()
    await world.send(alice, f"<presence type='probe' to='{BOB}'/>")
    [offline] = alice.received
    assert (offline.get("type"), offline.get("from"), offline.get("to")) == (
        "unavailable",
        BOB,
        str(alice.jid),
    )


# Subscriptions


async def test_subscribe_then_subscribed_sets_both_rosters_and_pushes(world: World) -> None:
    alice, bob = await world.online("alice"), await world.online("bob")
    alice.take(), bob.take()

    await world.send(alice, f"<presence type='subscribe' to='{BOB}'><status>Hi</status></presence>")
    # RFC 6121 section 3.1.2: the user's item, none + ask, pushed; the request delivered.
    assert [item_state(i) for i in roster_pushes(alice)] == [(BOB, "none", "subscribe")]
    [request] = bob.presences()
    assert (request.get("type"), request.get("from"), request.get("to")) == (
        "subscribe",
        ALICE,
        BOB,
    )
    assert request.findtext(c("status")) == "Hi"
    # The contact's roster holds a pending request, not an item.
    assert roster_pushes(bob) == []
    bob_roster = await world.components.rosters.roster("bob")
    assert ALICE not in bob_roster.items and list(bob_roster.pending) == [ALICE]
    alice.take(), bob.take()

    await world.send(bob, f"<presence type='subscribed' to='{ALICE}'/>")
    assert [item_state(i) for i in roster_pushes(bob)] == [(ALICE, "from", None)]
    assert [item_state(i) for i in roster_pushes(alice)] == [(BOB, "to", None)]
    assert subscription_stanzas(alice) == [("subscribed", BOB, ALICE)]
    # Alice now sees bob at once, with his current presence.
    [shown] = available_from(alice, str(bob.jid))
    assert shown.get("to") == str(alice.jid)
    # Bob does not see alice: he only granted, he never asked.
    assert available_from(bob, str(alice.jid)) == []
    assert (await world.subscription("alice", "bob"), await world.subscription("bob", "alice")) == (
        "to",
        "from",
    )
    alice_item = (await world.components.rosters.roster("alice")).items[BOB]
    assert not alice_item.pending_out
    assert (await world.components.rosters.roster("bob")).pending == {}
    # What the pushes said is what storage holds, read back through the roster IQ.
    result = await world.iq(alice, f"<iq type='get'><query xmlns='{ns.ROSTER}'/></iq>")
    assert [item_state(i) for i in one(result, ROSTER_QUERY)] == [(BOB, "to", None)]


# Visibility


async def test_policy_nobody_refuses_a_request_and_blocks_the_requester(world: World) -> None:
    alice, bob = await world.online("alice"), await world.online("bob")
    reply = await world.iq(
        bob, f"<iq type='set'><visibility xmlns='{ns.CHORUS_VISIBILITY}' policy='nobody'/></iq>"
    )
    assert reply.get("type") == "result" and one(reply, VISIBILITY).get("policy") == "nobody"
    alice.take(), bob.take()

    await world.send(alice, f"<presence type='subscribe' to='{BOB}'/>")
    # RFC 6121 section 3.1.3: refused with unsubscribed; bob is not asked.
    assert subscription_stanzas(alice) == [("unsubscribed", BOB, ALICE)]
    # bob is only told his lists changed: the pending count, still 0, to read them again.
    (push,) = bob.take()
    assert push.get("type") == "headline"
    assert one(push, ns.qname(ns.CHORUS_VISIBILITY, "pending")).get("count") == "0"
    assert await world.subscription("alice", "bob") == "none"
    assert not (await world.components.rosters.roster("alice")).items[BOB].pending_out
    overview = await world.components.visibility.overview("bob")
    assert (overview.blocked, overview.pending, overview.allowed) == ([ALICE], [], [])
    # The IQ shows the same list.
    shown = await world.iq(bob, f"<iq type='get'><visibility xmlns='{ns.CHORUS_VISIBILITY}'/></iq>")
    blocked = one(one(shown, VISIBILITY), ns.qname(ns.CHORUS_VISIBILITY, "blocked"))
    assert blocked.get("count") == "1"
    assert [node.get("jid") for node in blocked] == [ALICE]


async def test_policy_everyone_approves_a_request(world: World) -> None:
    alice, bob = await world.online("alice"), await world.online("bob")
    await world.components.visibility.set_policy("bob", "everyone")
    alice.take(), bob.take()

    await world.send(alice, f"<presence type='subscribe' to='{BOB}'/>")
    assert subscription_stanzas(alice) == [("subscribed", BOB, ALICE)]
    assert len(available_from(alice, str(bob.jid))) == 1
    # Approved for bob: he gets the new item, not a request to answer.
    assert subscription_stanzas(bob) == []
    assert [item_state(i) for i in roster_pushes(bob)] == [(ALICE, "from", None)]
    assert (await world.subscription("alice", "bob"), await world.subscription("bob", "alice")) == (
        "to",
        "from",
    )
    overview = await world.components.visibility.overview("bob")
    assert (overview.allowed, overview.blocked, overview.pending) == ([ALICE], [], [])


async def test_a_refused_configure_changes_nothing(world: World) -> None:
    alice, bob = await world.online("alice"), await world.online("bob")
    # A pending request that policy 'nobody' would refuse, if it were applied.
    await world.send(alice, f"<presence type='subscribe' to='{BOB}'/>")
    alice.take(), bob.take()

    reply = await world.iq(
        bob,
        f"<iq type='set'><visibility xmlns='{ns.CHORUS_VISIBILITY}' policy='nobody'"
        " away-when-offline='perhaps'/></iq>",
    )
    assert error_condition(reply) == "bad-request"
    assert one(reply, c("error")).get("type") == "modify"
    overview = await world.components.visibility.overview("bob")
    assert (overview.policy, overview.away_when_offline) == ("ask", False)
    assert [request.contact for request in overview.pending] == [ALICE]
    assert overview.blocked == []
    # Alice's request still stands: she was told nothing.
    assert alice.received == []
    assert (await world.components.rosters.roster("alice")).items[BOB].pending_out


# XEP-0191 blocks


async def test_a_block_is_answered_once_and_pushed(world: World) -> None:
    alice = await world.online("alice")
    listed = await world.iq(alice, f"<iq type='get'><blocklist xmlns='{ns.BLOCKING}'/></iq>")
    assert len(one(listed, ns.qname(ns.BLOCKING, "blocklist"))) == 0
    alice.take()
    await world.send(
        alice,
        f"<iq type='set' id='b1'><block xmlns='{ns.BLOCKING}'><item jid='{BOB}'/></block></iq>",
    )
    # XEP-0191 section 3.3: one result, and the push to the resource that asked for the list.
    replies = [r for r in alice.of_kind("iq") if r.get("id") == "b1"]
    assert [r.get("type") for r in replies] == ["result"], alice.dump()
    [push] = [r for r in alice.of_kind("iq") if r.get("type") == "set"]
    pushed = one(push, ns.qname(ns.BLOCKING, "block"))
    assert [item.get("jid") for item in pushed] == [BOB]
    listed = await world.iq(alice, f"<iq type='get'><blocklist xmlns='{ns.BLOCKING}'/></iq>")
    assert [item.get("jid") for item in one(listed, ns.qname(ns.BLOCKING, "blocklist"))] == [BOB]


async def test_a_message_to_a_blocked_contact_is_not_acceptable(world: World) -> None:
    alice, bob = await world.online("alice"), await world.online("bob")
    await block(world, alice, BOB)
    alice.take(), bob.take()
    await world.send(alice, f"<message id='m1' to='{BOB}' type='chat'><body>hi</body></message>")
    [reply] = alice.received
    assert (reply.tag, reply.get("type"), reply.get("id")) == (c("message"), "error", "m1")
    assert error_condition(reply) == "not-acceptable"
    error = one(reply, c("error"))
    assert error.find(ns.qname(ns.BLOCKING_ERRORS, "blocked")) is not None
    assert bob.received == []


async def test_a_message_from_a_blocked_contact_is_service_unavailable(world: World) -> None:
    alice, bob = await world.online("alice"), await world.online("bob")
    await block(world, alice, BOB)
    alice.take(), bob.take()
    await world.send(bob, f"<message id='m2' to='{ALICE}' type='chat'><body>hi</body></message>")
    [reply] = bob.received
    assert reply.get("type") == "error" and error_condition(reply) == "service-unavailable"
    # The same as for an address nobody is at: no hint of the block.
    assert one(reply, c("error")).find(ns.qname(ns.BLOCKING_ERRORS, "blocked")) is None
    assert alice.received == []


async def test_presence_broadcast_skips_the_blocked_both_ways(world: World) -> None:
    for first, second in (("alice", "bob"), ("alice", "carol"), ("bob", "carol")):
        await world.befriend(first, second)
    alice, bob, carol = [await world.online(name) for name in ("alice", "bob", "carol")]
    await block(world, alice, BOB)
    # The block hides each from the other at once, as unavailable (XEP-0191 section 3.3).
    assert [p.get("type") for p in bob.presences(sender=str(alice.jid))][-1] == "unavailable"
    assert [p.get("type") for p in alice.presences(sender=str(bob.jid))][-1] == "unavailable"
    alice.take(), bob.take(), carol.take()

    await world.send(alice, "<presence><show>dnd</show></presence>")
    assert bob.presences(sender=str(alice.jid)) == []
    assert [p.findtext(STATE) for p in carol.presences(sender=str(alice.jid))] == ["dnd"]
    await world.send(bob, "<presence><show>away</show></presence>")
    assert alice.presences(sender=str(bob.jid)) == []
    assert [p.findtext(STATE) for p in carol.presences(sender=str(bob.jid))] == ["away"]


async def test_the_route_query_from_a_blocked_asker_is_forbidden(world: World) -> None:
    alice, bob = await world.online("alice"), await world.online("bob")
    # Bob may ask anyone's route (a PBX's account), so only the block can refuse him.
    await world.components.call_routing.set_permission("bob", True)
    query = f"<iq type='get' to='{ALICE}'><route xmlns='{ns.CHORUS_ROUTING}'/></iq>"
    answer = await world.iq(bob, query)
    assert answer.get("type") == "result", xml(answer)
    route = one(answer, ns.qname(ns.CHORUS_ROUTING, "route"))
    assert (route.get("jid"), route.get("state")) == (ALICE, "available")

    await block(world, alice, BOB)
    bob.take()
    refused = await world.iq(bob, query)
    assert refused.get("type") == "error" and error_condition(refused) == "forbidden"
    assert refused.find(ns.qname(ns.CHORUS_ROUTING, "route")) is None


# Account removal


async def test_removing_an_account_tells_its_contacts_and_ends_its_session(world: World) -> None:
    await world.befriend("alice", "bob")
    bob = await world.online("bob")
    # A second resource of bob's that never fetched the roster, nor sent presence.
    quiet = world.connect("bob", "quiet")
    alice = await world.online("alice")
    bob.take()

    assert await world.components.accounts.remove("alice")
    [push] = [iq for iq in bob.of_kind("iq") if iq.get("type") == "set"]
    assert push.get("to") == str(bob.jid)
    [item] = one(push, ROSTER_QUERY)
    assert item_state(item) == (ALICE, "remove", None)
    # Alice was available: bob, who saw her, sees her go.
    [gone] = bob.presences(sender=str(alice.jid))
    assert (gone.get("type"), gone.get("to")) == ("unavailable", BOB)
    assert quiet.received == []
    # not-authorized: the client's credentials no longer log it in.
    assert alice.closed is not None and alice.closed.condition == "not-authorized"
    assert ALICE not in (await world.components.rosters.roster("bob")).items


async def test_removing_an_offline_account_sends_no_presence(world: World) -> None:
    await world.befriend("alice", "bob")
    bob = await world.online("bob")
    bob.take()
    assert await world.components.accounts.remove("alice")
    assert [item_state(i) for i in roster_pushes(bob)] == [(ALICE, "remove", None)]
    assert bob.presences() == []


async def test_a_recreated_account_starts_with_an_empty_roster(world: World) -> None:
    await world.befriend("alice", "bob")
    await world.components.subscriptions.exchange(
        world.jid("carol"), world.jid("alice"), "subscribe"
    )
    alice = await world.online("alice")
    assert await world.components.accounts.remove("alice")
    # The stream's teardown after the close the removal asked for.
    await world.end(alice)

    await world.add_user("alice")
    again = world.connect("alice", "new")
    result = await world.iq(again, f"<iq type='get'><query xmlns='{ns.ROSTER}'/></iq>")
    assert list(one(result, ROSTER_QUERY)) == []
    roster = await world.components.rosters.roster("alice")
    assert (roster.items, roster.pending) == ({}, {})
    # Neither does anyone else's roster remember the old account.
    assert await world.subscription("bob", "alice") is None
    assert await world.subscription("carol", "alice") is None


# Ad-hoc commands


async def test_the_presence_settings_command_shows_a_form_and_applies_it(world: World) -> None:
    bob = await world.online("bob")
    executed = await world.iq(
        bob,
        f"<iq type='set' to='{DOMAIN}'><command xmlns='{ns.COMMANDS}'"
        f" node='{SETTINGS_NODE}' action='execute'/></iq>",
    )
    assert executed.get("type") == "result", xml(executed)
    command = one(executed, COMMAND)
    assert (command.get("node"), command.get("status")) == (SETTINGS_NODE, "executing")
    session_id = command.get("sessionid")
    assert session_id
    form = one(command, FORM)
    assert form.get("type") == "form"
    value = ns.qname(ns.DATA_FORMS, "value")
    fields = {f.get("var"): (f.get("type"), f.findtext(value)) for f in form.findall(FIELD)}
    assert fields == {
        "policy": ("list-single", "ask"),
        "away-when-offline": ("boolean", "0"),
        "appear-offline": ("boolean", "0"),
    }

    completed = await world.iq(
        bob,
        f"<iq type='set' to='{DOMAIN}'><command xmlns='{ns.COMMANDS}' node='{SETTINGS_NODE}'"
        f" sessionid='{session_id}' action='complete'>"
        f"<x xmlns='{ns.DATA_FORMS}' type='submit'>"
        "<field var='policy'><value>nobody</value></field></x></command></iq>",
    )
    assert completed.get("type") == "result", xml(completed)
    done = one(completed, COMMAND)
    assert (done.get("status"), done.get("sessionid")) == ("completed", session_id)
    note = one(done, ns.qname(ns.COMMANDS, "note"))
    assert note.get("type") == "info"
    assert "Nobody can see my presence status" in (note.text or "")
    overview = await world.components.visibility.overview("bob")
    # The field left out of the submission is left as it was.
    assert (overview.policy, overview.away_when_offline) == ("nobody", False)
