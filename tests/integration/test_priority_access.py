"""Do Not Disturb with priority access, through the wire with real clients: messages to a user
in DND arrive marked silent unless the sender is on the priority list, and the sender hears
exactly what they hear today; the route query with a caller; the list's refusals; an account
removed off every list; a restart keeps the list; the ad-hoc command, disco and the admin
command line."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from slixmpp.exceptions import IqError
from slixmpp.xmlstream import ET

from chorus_presence.client.plugin import Device, Routing
from chorus_presence.services.call_routing import Device as ServerDevice
from chorus_presence.services.call_routing import RoutingConfig
from tests.integration.harness import (
    ADHOC,
    DOMAIN,
    TIMEOUT,
    Harness,
    Inbox,
    befriend,
    cli,
    complete,
    config_of,
    execute,
    fails,
    fields,
    ok,
    online,
    options,
    presence_of,
    sync,
)

DND = "urn:chorus:dnd:0"
NO_ALERT = f"{{{DND}}}no-alert"
ROUTING = "urn:chorus:routing:0"
STATE = "{urn:chorus:presence:0}state"
ALICE, BOB, CAROL, DAVE, PBX = (f"{n}@{DOMAIN}" for n in ("alice", "bob", "carol", "dave", "pbx"))
COMMAND = "urn:chorus:cmd:priority"
ADHOC_NODE = "http://jabber.org/protocol/commands"


@pytest.fixture
async def users(harness: Harness) -> Harness:
    for name in ("alice", "bob", "carol", "dave", "pbx"):
        await harness.add_user(name)
    return harness


async def bot(harness: Harness, user: str, *plugins: str) -> tuple[Any, Inbox]:
    """A client with the chorus plugin that has sent its initial presence."""
    client = harness.make_client(user, plugins=plugins)
    client.register_plugin("chorus", module="chorus_presence.client.plugin")
    client.auto_authorize = None
    client.auto_subscribe = False
    assert await harness.connect(client) == "session_start"
    inbox = Inbox(client)
    client.send_presence()
    await inbox.get(presence_of(client, "available", f"{user}@{DOMAIN}/test"))
    return client, inbox


async def set_state(client: Any, inbox: Inbox, state: str) -> None:
    client.plugin["chorus"].send_state(state)
    me = f"{client.boundjid.bare}/test"
    await inbox.expect(
        lambda p: str(p["from"]) == me and p.xml.findtext(STATE) == state, f"own {state}"
    )


def message_from(sender: str, body: str) -> Any:
    return lambda s: s.name == "message" and s["from"].bare == sender and s["body"] == body


def errors(inbox: Inbox) -> list[Any]:
    return [s for s in inbox.drain() if s["type"] == "error"]


async def refusal(call: Any) -> tuple[str, str]:
    with pytest.raises(IqError) as refused:
        await call
    error = refused.value.iq["error"]
    return error["condition"], error["text"]


async def test_in_dnd_only_the_priority_list_alerts_and_senders_hear_what_they_did(
    users: Harness,
) -> None:
    alice, alice_in = await bot(users, "alice")
    bob, bob_in = await online(users, "bob")
    carol, carol_in = await online(users, "carol")
    dave, dave_in = await online(users, "dave")
    await befriend(alice, alice_in, bob, bob_in)
    chorus = alice.plugin["chorus"]
    await chorus.add_priority(DAVE)
    assert await chorus.priority_list() == [DAVE]

    bob.send_message(mto=ALICE, mbody="before", mtype="chat")
    assert not chorus.is_silent(await alice_in.expect(message_from(BOB, "before"), "available"))

    for state in ("dnd", "busy", "in-meeting"):
        await set_state(alice, alice_in, state)
        sent = f"in {state}"
        bob.send_message(mto=ALICE, mbody=sent, mtype="chat")
        carol.send_message(mto=f"{ALICE}/test", mbody=sent, mtype="chat")
        dave.send_message(mto=ALICE, mbody=sent, mtype="chat")
        contact = await alice_in.expect(message_from(BOB, sent), "the contact's message")
        stranger = await alice_in.expect(message_from(CAROL, sent), "the stranger's message")
        priority = await alice_in.expect(message_from(DAVE, sent), "the priority message")
        assert chorus.is_silent(contact) and chorus.is_silent(stranger)
        assert not chorus.is_silent(priority)
        await sync(bob, carol, dave)
        # Nobody hears that the user is in DND: no error, no marker, for anyone.
        assert errors(bob_in) == errors(carol_in) == errors(dave_in) == []

    # A normal message is marked like a chat; a sender's own marker means nothing.
    forged = dave.make_message(mto=ALICE, mbody="forged", mtype="normal")
    forged.append(ET.Element(NO_ALERT))
    forged.send()
    carol.send_message(mto=ALICE, mbody="normal", mtype="normal")
    assert not chorus.is_silent(await alice_in.expect(message_from(DAVE, "forged"), "forged"))
    assert chorus.is_silent(await alice_in.expect(message_from(CAROL, "normal"), "normal"))

    await set_state(alice, alice_in, "away")
    forged = carol.make_message(mto=ALICE, mbody="away", mtype="chat")
    forged.append(ET.Element(NO_ALERT))
    forged.send()
    assert not chorus.is_silent(await alice_in.expect(message_from(CAROL, "away"), "away"))


async def test_a_message_to_a_user_in_dnd_bounces_as_it_does_today(users: Harness) -> None:
    """With no resource of priority 0 or more, a message is not delivered: a contact is told
    the user is not logged in, a stranger nothing, in DND as in any state."""
    alice, alice_in = await bot(users, "alice")
    bob, bob_in = await online(users, "bob")
    carol, carol_in = await online(users, "carol")
    await befriend(alice, alice_in, bob, bob_in)
    alice.plugin["chorus"].send_state("dnd")
    alice.send_presence(ppriority=-1, pshow="dnd")
    await bob_in.expect(lambda p: p["priority"] == -1, "alice's negative priority")
    bob.send_message(mto=ALICE, mbody="hello", mtype="chat")
    carol.send_message(mto=ALICE, mbody="hello", mtype="chat")
    bounce = await bob_in.expect(lambda s: s["type"] == "error", "the bounce")
    assert bounce["error"]["condition"] == "service-unavailable"
    assert bounce["error"]["text"] == "The recipient is not logged in"
    assert bounce.xml.find(f".//{NO_ALERT}") is None
    await sync(carol)
    assert errors(carol_in) == []


async def test_a_caller_on_the_priority_list_gets_the_usual_device(users: Harness) -> None:
    alice, alice_in = await bot(users, "alice")
    pbx, _ = await bot(users, "pbx")
    carol, _ = await bot(users, "carol")
    chorus = alice.plugin["chorus"]
    await chorus.set_routing(
        Routing(
            enabled=True,
            default="Mobile",
            devices=[
                Device("Desk", "desk-phone"),
                Device("Mobile", "mobile"),
                Device("Voicemail", "voicemail"),
            ],
            mapping={"available": "Desk", "away": "Mobile", "dnd": "Voicemail"},
        )
    )
    await chorus.add_priority(BOB)
    await users.ctx.call_routing.set_permission("pbx", True)

    async def rings(asker: Any, caller: str | None) -> tuple[str, str | None]:
        route = await asker.plugin["chorus"].route(ALICE, caller=caller)
        return route.state, route.device.name if route.device else None

    assert await rings(alice, BOB) == ("available", "Desk")
    await set_state(alice, alice_in, "dnd")
    assert await rings(alice, None) == ("dnd", "Voicemail")
    assert await rings(alice, CAROL) == ("dnd", "Voicemail")
    assert await rings(alice, BOB) == ("dnd", "Desk")
    assert await rings(pbx, f"{BOB}/phone") == ("dnd", "Desk")
    # busy is not mapped: the default, unless the caller has priority.
    await set_state(alice, alice_in, "busy")
    assert await rings(pbx, CAROL) == ("busy", "Mobile")
    assert await rings(pbx, BOB) == ("busy", "Desk")
    # Only the DND states bend: in Away the priority caller gets Away's device.
    await set_state(alice, alice_in, "away")
    assert await rings(pbx, BOB) == ("away", "Mobile")

    # Who may ask is unchanged by a caller, and a bad caller is refused.
    assert await refusal(carol.plugin["chorus"].route(ALICE, caller=BOB)) == (
        "forbidden",
        f"You may not ask how {ALICE}'s calls are routed",
    )
    assert await refusal(chorus.route(ALICE, caller="bob@@x")) == (
        "jid-malformed",
        "'bob@@x' is not a valid JID",
    )
    # Switched off, the default rings whoever calls.
    await set_state(alice, alice_in, "dnd")
    await chorus.set_routing(dataclasses.replace(await chorus.routing(), enabled=False))
    assert await rings(pbx, BOB) == ("dnd", "Mobile")


async def test_only_users_of_the_server_go_on_the_list(users: Harness) -> None:
    alice, _ = await bot(users, "alice")
    chorus = alice.plugin["chorus"]
    for jid, expected in (
        ("bob@@x", ("jid-malformed", "'bob@@x' is not a valid JID")),
        (DOMAIN, ("bad-request", f"{DOMAIN} is a domain, not a user")),
        (f"{ALICE}/phone", ("not-allowed", "You always reach yourself")),
        (
            "bob@example.org",
            (
                "item-not-found",
                f"bob@example.org is not a user of {DOMAIN}, and only its users can reach you",
            ),
        ),
        (f"nobody@{DOMAIN}", ("item-not-found", f"No such user nobody@{DOMAIN}")),
    ):
        assert await refusal(chorus.add_priority(jid)) == expected, jid
    assert await chorus.priority_list() == []
    assert await refusal(chorus.remove_priority(BOB)) == (
        "item-not-found",
        f"{BOB} is not on your priority list",
    )
    await chorus.add_priority(f"{BOB}/desk")
    await chorus.add_priority(BOB)
    await chorus.add_priority(CAROL)
    assert await chorus.priority_list() == [BOB, CAROL]
    await chorus.remove_priority(CAROL)
    assert await chorus.priority_list() == [BOB]

    # Nobody reads or changes another user's list.
    for payload in (
        ET.Element(f"{{{DND}}}priority-list"),
        ET.Element(f"{{{DND}}}add", {"jid": CAROL}),
    ):
        iq = alice.make_iq_get(ito=BOB) if payload.tag.endswith("list") else alice.make_iq_set()
        iq["to"] = BOB
        iq.append(payload)
        condition, _ = await refusal(iq.send(timeout=TIMEOUT))
        assert condition == "forbidden"
    iq = alice.make_iq_set()
    iq.append(ET.Element(f"{{{DND}}}add"))
    assert await refusal(iq.send(timeout=TIMEOUT)) == (
        "bad-request",
        "<add/> needs a 'jid' attribute",
    )


async def test_a_removed_account_leaves_every_list(users: Harness) -> None:
    priority = users.ctx.priority_access
    await priority.add("alice", BOB)
    await priority.add("alice", CAROL)
    await priority.add("bob", ALICE)
    assert await users.ctx.accounts.remove("bob")
    assert await priority.contacts("alice") == [CAROL]
    await users.add_user("bob")
    assert await priority.contacts("alice") == [CAROL]
    assert await priority.contacts("bob") == []

    alice, alice_in = await bot(users, "alice")
    bob, _ = await online(users, "bob")
    await set_state(alice, alice_in, "dnd")
    bob.send_message(mto=ALICE, mbody="new bob", mtype="chat")
    assert alice.plugin["chorus"].is_silent(
        await alice_in.expect(message_from(BOB, "new bob"), "the new bob's message")
    )


async def test_a_restart_keeps_the_list(users: Harness) -> None:
    alice, _ = await bot(users, "alice")
    await alice.plugin["chorus"].add_priority(BOB)
    await users.restart()
    alice, alice_in = await bot(users, "alice")
    bob, _ = await online(users, "bob")
    assert await alice.plugin["chorus"].priority_list() == [BOB]
    await set_state(alice, alice_in, "in-meeting")
    bob.send_message(mto=ALICE, mbody="after", mtype="chat")
    message = await alice_in.expect(message_from(BOB, "after"), "bob's message")
    assert not alice.plugin["chorus"].is_silent(message)


async def test_the_server_advertises_priority_access(users: Harness) -> None:
    alice = await users.login("alice", plugins=("xep_0030",))
    info = await alice.plugin["xep_0030"].get_info(jid=DOMAIN, timeout=TIMEOUT)
    assert DND in info["disco_info"]["features"]


async def test_the_priority_command_adds_and_removes(users: Harness) -> None:
    alice, _ = await online(users, "alice", plugins=ADHOC)
    items = await alice.plugin["xep_0030"].get_items(jid=DOMAIN, node=ADHOC_NODE, timeout=TIMEOUT)
    names = {item[1]: item[2] for item in items["disco_items"]["items"]}
    assert names[COMMAND] == "People who reach me in Do Not Disturb (0)"

    command = await execute(alice, COMMAND)
    assert command["form"]["title"] == "People who reach me in Do Not Disturb (0)"
    assert "remove" not in fields(command)
    assert await complete(alice, command, {"add": [BOB, CAROL]}) == f"Added: {BOB}, {CAROL}."

    command = await execute(alice, COMMAND)
    assert command["form"]["title"] == "People who reach me in Do Not Disturb (2)"
    assert options(fields(command)["remove"]) == {BOB: BOB, CAROL: CAROL}
    assert await complete(alice, command, {"remove": [CAROL], "add": [DAVE]}) == (
        f"Removed: {CAROL}.\nAdded: {DAVE}."
    )
    assert await users.ctx.priority_access.contacts("alice") == [BOB, DAVE]

    command = await execute(alice, COMMAND)
    form = command["form"]
    form.set_values({"add": [CAROL, f"nobody@{DOMAIN}"]})
    form["type"] = "submit"
    with pytest.raises(IqError) as refused:
        await alice.plugin["xep_0050"].send_command(
            DOMAIN,
            COMMAND,
            action="complete",
            payload=form,
            sessionid=command["sessionid"],
            timeout=TIMEOUT,
        )
    error = refused.value.iq["error"]
    assert error["condition"] == "item-not-found"
    assert error["text"] == f"Add people, one address per line: No such user nobody@{DOMAIN}"
    # Refused as a whole: carol was not added either.
    assert await users.ctx.priority_access.contacts("alice") == [BOB, DAVE]


async def test_the_admin_command_line_keeps_the_list(users: Harness) -> None:
    config = config_of(users)
    run = await ok(config, "priority", "add", "alice", "bob", "--json")
    assert run.json() == {"user": ALICE, "contacts": [BOB]}
    await ok(config, "priority", "add", "alice", CAROL)
    run = await ok(config, "priority", "show", "alice")
    assert run.out.split() == [f"{ALICE}:", "priority", "list", "(2)", BOB, CAROL]
    run = await ok(config, "priority", "remove", "alice", "carol", "--json")
    assert run.json()["contacts"] == [BOB]
    await fails(config, 1, "priority", "add", "alice", "nobody", needle="No such user nobody@")
    await fails(config, 1, "priority", "add", "alice", "alice", needle="You always reach yourself")
    await fails(
        config, 1, "priority", "remove", "alice", "dave", needle=f"{DAVE} is not on your priority"
    )
    await fails(config, 1, "priority", "show", "nobody", needle=f"No such user nobody@{DOMAIN}")

    await users.ctx.call_routing.replace(
        "alice",
        RoutingConfig(
            True,
            "Desk",
            (ServerDevice("Desk", "desk-phone"), ServerDevice("Voicemail", "voicemail")),
            {"available": "Desk", "dnd": "Voicemail"},
        ),
    )
    alice, alice_in = await bot(users, "alice")
    await set_state(alice, alice_in, "dnd")
    run = await ok(config, "routing", "route", "alice", "--caller", "bob", "--json")
    assert run.json() == {"user": ALICE, "state": "dnd", "device": "Desk", "kind": "desk-phone"}
    run = await ok(config, "routing", "route", "alice", "--caller", CAROL, "--json")
    assert run.json()["device"] == "Voicemail"
    run = await ok(config, "routing", "route", "alice")
    assert "Voicemail (voicemail) rings" in run.out
    await fails(
        config, 1, "routing", "route", "alice", "--caller", "bob@@x", needle="not a valid JID"
    )
    assert (await cli(config, "priority", "add", "alice")).code != 0


async def test_a_priority_list_holds_at_most_a_hundred(users: Harness) -> None:
    names = [f"user{number:03}" for number in range(100)]
    for name in names:
        await users.add_user(name)
    await users.ctx.priority_access.add_all("alice", [f"{name}@{DOMAIN}" for name in names])
    alice, _ = await bot(users, "alice")
    chorus = alice.plugin["chorus"]
    assert len(await chorus.priority_list()) == 100
    assert await refusal(chorus.add_priority(BOB)) == (
        "not-acceptable",
        "At most 100 people are on a priority list",
    )
    # Someone already on it is no 101st.
    await chorus.add_priority(f"user000@{DOMAIN}")
    await chorus.remove_priority(f"user000@{DOMAIN}")
    await chorus.add_priority(BOB)
    assert len(await chorus.priority_list()) == 100
