"""The ad-hoc commands as stock clients meet them: forms every client can show, the exact
presence states for clients that only know `<show>`, devices set in one submission, and the
counts carried by the commands' names."""

from __future__ import annotations

import re
import xml.etree.ElementTree as StdET
from pathlib import Path
from typing import Any

import pytest
import slixmpp
from slixmpp.exceptions import IqError
from slixmpp.plugins.xep_0004 import Form as SlixForm

from chorus_presence.services import rich_states
from chorus_presence.services.call_routing import Device, RoutingConfig
from chorus_presence.xmpp.jid import JID
from tests.integration.harness import (
    ADHOC,
    DOMAIN,
    TIMEOUT,
    Harness,
    complete,
    execute,
    fields,
    link,
    online,
    options,
    presence_of,
    sync,
)

ALICE, BOB, CAROL, DAVE = (f"{name}@{DOMAIN}" for name in ("alice", "bob", "carol", "dave"))
XD = "{jabber:x:data}"
SETTINGS = "urn:chorus:cmd:presence-settings"
PENDING = "urn:chorus:cmd:pending"
ALLOWED = "urn:chorus:cmd:allowed"
BLOCKED = "urn:chorus:cmd:blocked"
DEVICES = "urn:chorus:cmd:devices"
STATE = "urn:chorus:cmd:state"
PROTOCOL_DOC = Path(__file__).parents[2] / "docs" / "protocol.md"
STATE_LABELS = {
    "available": "Available",
    "away": "Away",
    "brb": "Be Right Back",
    "dnd": "Do Not Disturb",
    "busy": "Busy",
    "in-meeting": "In Meeting",
}


@pytest.fixture
async def users(harness: Harness) -> Harness:
    for name in ("alice", "bob", "carol", "dave"):
        await harness.add_user(name)
    return harness


async def command_names(client: slixmpp.ClientXMPP) -> dict[str, str]:
    result = await client.plugin["xep_0050"].get_commands(DOMAIN, timeout=TIMEOUT)
    return {node: name for _jid, node, name in result["disco_items"]["items"]}


async def refused(request: Any) -> tuple[str, str]:
    with pytest.raises(IqError) as raised:
        await request
    error = raised.value.iq["error"]
    return error["condition"], error["text"]


# Forms every client can show


async def test_every_form_offers_labelled_choices_with_values(users: Harness) -> None:
    """An option with an empty <value/> crashes profanity; one without a label shows nothing.
    A list-single also carries a value among its options, or profanity shows no choices."""
    await users.ctx.call_routing.replace(
        "alice",
        RoutingConfig(True, "Desk", (Device("Desk", "desk-phone"),), {"dnd": "Desk"}),
    )
    await link(users, "alice", "carol")
    alice, _ = await online(users, "alice", plugins=ADHOC)
    bob, _ = await online(users, "bob")
    bob.send_presence(pto=ALICE, ptype="subscribe")
    await sync(bob, alice)
    nodes = await command_names(alice)
    assert {DEVICES, SETTINGS, PENDING, ALLOWED, BLOCKED} <= set(nodes)
    for node in nodes:
        command = await execute(alice, node)
        for field in command.xml.iter(f"{XD}field"):
            choices = field.findall(f"{XD}option")
            for option in choices:
                assert option.get("label"), (node, field.get("var"))
                assert option.findtext(f"{XD}value"), (node, field.get("var"))
            if field.get("type") == "list-single":
                [value] = field.findall(f"{XD}value")
                assert value.text in {o.findtext(f"{XD}value") for o in choices}, (
                    node,
                    field.get("var"),
                )


# The exact state for clients that only know <show>


def state_of(stanza: Any) -> str | None:
    return stanza.xml.findtext(rich_states.STATE)


def shows(resource: str, state: str) -> Any:
    """A predicate: alice's presence from one resource, carrying this exact state."""
    return lambda p: str(p["from"]) == f"{ALICE}/{resource}" and state_of(p) == state


async def set_state(client: slixmpp.ClientXMPP, state: str, text: str = "") -> str:
    command = await execute(client, STATE)
    return await complete(client, command, {"state": state, "text": text})


async def test_state_command_sets_every_state_for_every_resource(users: Harness) -> None:
    await link(users, "alice", "bob")
    await link(users, "alice", "carol")
    alice, _ = await online(users, "alice", plugins=(*ADHOC, "xep_0191"))
    other, other_in = await online(users, "alice", "other")
    bob, bob_in = await online(users, "bob")
    carol, carol_in = await online(users, "carol")
    # Carol is on alice's XEP-0191 block list: the broadcast's filters keep her out.
    await alice.plugin["xep_0191"].block([CAROL], timeout=TIMEOUT)
    await sync(alice, bob, carol, other)
    for inbox in (bob_in, carol_in, other_in):
        inbox.drain()

    assert (await command_names(alice))[STATE] == "Set my status"
    command = await execute(alice, STATE)
    assert command["form"]["title"] == "Set my status"
    form = fields(command)
    assert form["state"]["type"] == "list-single"
    assert form["state"]["required"]
    assert options(form["state"]) == STATE_LABELS
    assert form["state"].get_value() == "available"
    assert form["text"]["type"] == "text-single"
    assert form["text"]["label"] == "Custom status text"

    cases = [
        ("available", ""),
        ("away", "Back at 3"),
        ("brb", ""),
        ("dnd", "Focus time"),
        ("busy", ""),
        ("in-meeting", "Weekly sync"),
    ]
    for state, text in cases:
        note = await set_state(alice, state, text)
        label = STATE_LABELS[state]
        assert note == (
            f"Your status is now {label}: {text}." if text else f"Your status is now {label}."
        )
        info = rich_states.STATES[state]
        for resource in ("test", "other"):
            presence = await bob_in.expect(shows(resource, state), f"{state} from {resource}")
            assert presence["show"] == (info.show or "")
            assert presence["status"] == (text or info.default_status or "")
        # The user's own other resource hears it too (RFC 6121 4.2.2).
        await other_in.expect(shows("test", state), f"{state} echoed to alice/other")
        assert users.ctx.presence.effective_state(JID("alice", DOMAIN)) == state
        await sync(alice, bob)
        assert not [p for p in bob_in.drain() if p["from"].bare == ALICE]
        other_in.drain()

    await sync(alice, carol)
    assert not [p for p in carol_in.drain() if p["from"].bare == ALICE]


async def test_state_form_shows_the_current_state_and_text(users: Harness) -> None:
    alice, _ = await online(users, "alice", plugins=ADHOC)
    await set_state(alice, "brb", "Back at 3")
    form = fields(await execute(alice, STATE))
    assert form["state"].get_value() == "brb"
    assert form["text"].get_value() == "Back at 3"
    # The state's own default text is not custom text: it would stick to the next state.
    await set_state(alice, "busy")
    form = fields(await execute(alice, STATE))
    assert form["state"].get_value() == "busy"
    assert form["text"].get_value() is None


async def test_the_clients_own_presence_wins(users: Harness) -> None:
    await link(users, "alice", "bob")
    alice, _ = await online(users, "alice", plugins=ADHOC)
    other, _ = await online(users, "alice", "other")
    bob, bob_in = await online(users, "bob")
    await sync(alice, other, bob)
    bob_in.drain()
    await set_state(alice, "in-meeting", "Board")
    await bob_in.expect(shows("test", "in-meeting"), "in-meeting from alice/test")
    await bob_in.expect(shows("other", "in-meeting"), "in-meeting from alice/other")

    # A stock client sends its own presence later (a user's choice, auto-away): it replaces
    # the state on that resource only.
    alice.send_presence(pshow="away")
    presence = await bob_in.expect(shows("test", "away"), "the client's own away")
    assert (presence["show"], presence["status"]) == ("away", "")
    assert users.ctx.presence.effective_state(JID("alice", DOMAIN)) == "away"
    await sync(alice, bob)
    assert not [p for p in bob_in.drain() if str(p["from"]) == f"{ALICE}/other"]
    assert fields(await execute(alice, STATE))["state"].get_value() == "away"


async def test_state_command_refusals(users: Harness) -> None:
    alice, _ = await online(users, "alice", plugins=ADHOC)
    command = await execute(alice, STATE)
    assert await refused(complete(alice, command, {"state": "offline"})) == (
        "bad-request",
        "Status: 'offline' is not one of the choices",
    )
    assert await refused(complete(alice, command, {"state": "away", "text": "x" * 1025})) == (
        "not-acceptable",
        "Custom status text is 1025 characters; at most 1024 are allowed",
    )

    # Logged in but never available: there is no presence to change.
    quiet = await users.login("dave", resource="quiet", plugins=ADHOC)
    form = quiet.plugin["xep_0004"].make_form(ftype="submit")
    form.add_field(var="state", value="busy")
    assert await refused(
        quiet.plugin["xep_0050"].send_command(
            DOMAIN, STATE, action="complete", payload=form, timeout=TIMEOUT
        )
    ) == (
        "unexpected-request",
        f"None of {DAVE}'s resources is available: send your presence first",
    )


# Devices in one submission


def documented_devices_submission() -> tuple[StdET.Element, str]:
    """The devices example of docs/protocol.md: its submitted form and the note it answers."""
    blocks = re.findall(r"```xml\n(.*?)```", PROTOCOL_DOC.read_text(), re.DOTALL)
    [block] = [b for b in blocks if f"node='{DEVICES}'" in b and "type='submit'" in b]
    root = StdET.fromstring(f"<root xmlns='jabber:client'>{block}</root>")
    request, answer = root.findall("{jabber:client}iq")
    command = "{http://jabber.org/protocol/commands}command"
    form = request.find(f"{command}/{XD}x")
    note = answer.findtext(f"{command}/{{http://jabber.org/protocol/commands}}note")
    assert form is not None and note is not None
    return form, note


async def test_documented_devices_example_works_in_one_submission(users: Harness) -> None:
    alice, _ = await online(users, "alice", plugins=ADHOC)
    command = await execute(alice, DEVICES)
    form, documented_note = documented_devices_submission()
    result = await alice.plugin["xep_0050"].send_command(
        DOMAIN,
        DEVICES,
        action="complete",
        payload=SlixForm(xml=form),
        sessionid=command["sessionid"],
        timeout=TIMEOUT,
    )
    assert result["command"]["status"] == "completed"
    assert result["command"]["notes"] == [("info", documented_note)]
    config = await users.ctx.call_routing.config("alice")
    assert config == RoutingConfig(
        True,
        "Desk",
        (Device("Desk", "desk-phone"), Device("Voicemail", "voicemail")),
        {"dnd": "Voicemail"},
    )


async def test_devices_form_speaks_kind_name(users: Harness) -> None:
    await users.ctx.call_routing.replace(
        "alice",
        RoutingConfig(
            True,
            "My phone",
            (Device("My phone", "mobile"), Device("Voicemail", "voicemail")),
            {"dnd": "Voicemail", "busy": "Voicemail"},
        ),
    )
    alice, _ = await online(users, "alice", plugins=ADHOC)
    command = await execute(alice, DEVICES)
    form = fields(command)
    assert form["devices"].get_value() == ["mobile:My phone", "voicemail:Voicemail"]
    assert "KIND:NAME" in form["devices"]["label"]
    assert "desk-phone:Desk" in form["devices"]["desc"]
    assert form["map-dnd"].get_value() == "Voicemail"
    assert form["map-away"].get_value() == "-"
    assert options(form["map-away"])["-"] == "Default device"
    assert options(form["default"])["-"] == "None"

    # Each bad line is named, with the one syntax.
    for values, error in (
        (
            {"devices": "mobile:My phone\ndesk-phone Desk"},
            "Devices, line 2: Write a device as KIND:NAME, such as desk-phone:Desk,"
            " not 'desk-phone Desk'",
        ),
        (
            {"devices": "phone:Desk"},
            "Devices, line 1: Device kind 'phone' is not one of desk-phone, mobile, softphone,"
            " voicemail, other",
        ),
        # A choice must name a device of this same submission.
        (
            {"devices": "desk-phone:Desk", "default": "Phone"},
            "Default device: 'Phone' is not one of the devices",
        ),
        ({"map-away": "Desk"}, "When my presence is Away: 'Desk' is not one of the devices"),
    ):
        shown = await execute(alice, DEVICES)
        assert await refused(complete(alice, shown, values)) == ("bad-request", error)
    assert await refused(complete(alice, command, {"devices": "other:-"})) == (
        "not-acceptable",
        "'-' cannot be a device name: the forms use it to choose no device",
    )

    # Removing a device takes the unchanged choices of it along; '-' clears a choice.
    note = await complete(
        alice, command, {"devices": "mobile: My phone\n\nsoftphone:Laptop", "map-busy": "-"}
    )
    assert note == "Saved 2 device(s); presence decides calls: on."
    config = await users.ctx.call_routing.config("alice")
    assert config == RoutingConfig(
        True, "My phone", (Device("My phone", "mobile"), Device("Laptop", "softphone")), {}
    )
    command = await execute(alice, DEVICES)
    assert await complete(alice, command, {"default": "-", "map-away": "Laptop"})
    config = await users.ctx.call_routing.config("alice")
    assert (config.default_device, config.mapping) == (None, {"away": "Laptop"})


# Counts in the commands' names


async def test_command_names_carry_the_counts(users: Harness) -> None:
    alice, _ = await online(users, "alice", plugins=ADHOC)
    bob, bob_in = await online(users, "bob")
    carol, _ = await online(users, "carol")
    dave, _ = await online(users, "dave")
    assert await command_names(alice) == {
        SETTINGS: "Presence settings",
        PENDING: "Pending presence status requests (0)",
        ALLOWED: "Users allowed to see your presence status (0)",
        BLOCKED: "Users blocked from seeing your presence status (0)",
        DEVICES: "Devices and call routing",
        "urn:chorus:cmd:priority": "People who reach me in Do Not Disturb (0)",
        STATE: "Set my status",
        "urn:chorus:cmd:quiet-hours": "Quiet hours",
        "urn:chorus:cmd:last-seen": "Last seen",
    }

    for requester in (bob, carol, dave):
        requester.send_presence(pto=ALICE, ptype="subscribe")
    await sync(bob, carol, dave, alice)
    names = await command_names(alice)
    assert names[SETTINGS] == "Presence settings (3 pending requests)"
    assert names[PENDING] == "Pending presence status requests (3)"
    assert (await execute(alice, SETTINGS))["form"]["title"] == names[SETTINGS]
    node_info = await alice.plugin["xep_0030"].get_info(DOMAIN, node=SETTINGS, timeout=TIMEOUT)
    [(_category, _type, _lang, name)] = node_info["disco_info"]["identities"]
    assert name == "Presence settings (3 pending requests)"

    await complete(alice, await execute(alice, PENDING), {"accept": [BOB], "block": [CAROL]})
    await bob_in.get(presence_of(bob, "subscribed", ALICE))
    names = await command_names(alice)
    assert names[SETTINGS] == "Presence settings (1 pending request)"
    assert names[PENDING] == "Pending presence status requests (1)"
    assert names[ALLOWED] == "Users allowed to see your presence status (1)"
    assert names[BLOCKED] == "Users blocked from seeing your presence status (1)"

    await complete(alice, await execute(alice, PENDING), {"block": [DAVE]})
    await complete(alice, await execute(alice, ALLOWED), {"block": [BOB]})
    names = await command_names(alice)
    assert names[SETTINGS] == "Presence settings"
    assert names[PENDING] == "Pending presence status requests (0)"
    assert names[ALLOWED] == "Users allowed to see your presence status (0)"
    assert names[BLOCKED] == "Users blocked from seeing your presence status (3)"
    # Each user's counts are their own.
    bob_names = await command_names(await users.login("bob", resource="adhoc", plugins=ADHOC))
    assert bob_names[BLOCKED] == "Users blocked from seeing your presence status (0)"
