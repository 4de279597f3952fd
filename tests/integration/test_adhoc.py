"""XEP-0050 ad-hoc commands as a stock client drives them: list, execute, fill in the form,
complete or cancel, with the effect checked on another user's real client."""

from __future__ import annotations

import time
from typing import Any

import pytest
import slixmpp
from slixmpp.exceptions import IqError

from chorus_presence.services.adhoc import MAX_SESSIONS_PER_RESOURCE, SESSION_LIFETIME
from chorus_presence.xmpp.forms import Field, FieldValue, Form
from chorus_presence.xmpp.stanza import Element
from tests.integration.harness import (
    ADHOC,
    COMMANDS,
    DOMAIN,
    TIMEOUT,
    Harness,
    complete,
    execute,
    fields,
    online,
    options,
    presence_of,
    sync,
)

ALICE, BOB, CAROL = f"alice@{DOMAIN}", f"bob@{DOMAIN}", f"carol@{DOMAIN}"
SETTINGS = "urn:chorus:cmd:presence-settings"
PENDING = "urn:chorus:cmd:pending"
ALLOWED = "urn:chorus:cmd:allowed"
BLOCKED = "urn:chorus:cmd:blocked"


@pytest.fixture
async def users(harness: Harness) -> Harness:
    for name in ("alice", "bob", "carol"):
        await harness.add_user(name)
    return harness


async def command_names(client: slixmpp.ClientXMPP) -> dict[str, str]:
    result = await client.plugin["xep_0050"].get_commands(DOMAIN, timeout=TIMEOUT)
    items = result["disco_items"]["items"]
    assert {jid for jid, _node, _name in items} == {DOMAIN}
    return {node: name for _jid, node, name in items}


async def command_error(request: Any) -> tuple[str, str | None, list[str]]:
    """The error a command request gets: condition, text and XEP-0050 conditions."""
    with pytest.raises(IqError) as raised:
        await request
    error = raised.value.iq["error"]
    specific = [child.tag for child in error.xml if child.tag.startswith(f"{{{COMMANDS}}}")]
    return error["condition"], error["text"] or None, specific


async def test_commands_are_listed_and_described(users: Harness) -> None:
    alice, _ = await online(users, "alice", plugins=ADHOC)
    bob, _ = await online(users, "bob", plugins=ADHOC)
    info = await alice.plugin["xep_0030"].get_info(DOMAIN, timeout=TIMEOUT)
    assert COMMANDS in info["disco_info"]["features"]
    bob.send_presence(pto=ALICE, ptype="subscribe")
    await sync(bob, alice)

    assert await command_names(alice) == {
        SETTINGS: "Presence settings (1 pending request)",
        PENDING: "Pending presence status requests (1)",
        ALLOWED: "Users allowed to see your presence status (0)",
        "urn:chorus:cmd:devices": "Devices and call routing",
        "urn:chorus:cmd:priority": "People who reach me in Do Not Disturb (0)",
        "urn:chorus:cmd:state": "Set my status",
        "urn:chorus:cmd:quiet-hours": "Quiet hours",
        "urn:chorus:cmd:last-seen": "Last seen",
        BLOCKED: "Users blocked from seeing your presence status (0)",
    }
    # The counts are each user's own.
    assert (await command_names(bob))[PENDING] == "Pending presence status requests (0)"

    node_info = await alice.plugin["xep_0030"].get_info(DOMAIN, node=PENDING, timeout=TIMEOUT)
    assert node_info["disco_info"]["node"] == PENDING
    assert node_info["disco_info"]["identities"] == {
        ("automation", "command-node", None, "Pending presence status requests (1)")
    }
    assert node_info["disco_info"]["features"] == {COMMANDS, "jabber:x:data"}
    for lookup in (alice.plugin["xep_0030"].get_info, alice.plugin["xep_0030"].get_items):
        with pytest.raises(IqError) as raised:
            await lookup(DOMAIN, node="urn:chorus:cmd:nothing", timeout=TIMEOUT)
        assert raised.value.iq["error"]["condition"] == "item-not-found"


async def test_policy_everyone_approves_requests_at_once(users: Harness) -> None:
    alice, alice_in = await online(users, "alice", plugins=ADHOC)
    bob, bob_in = await online(users, "bob", plugins=ADHOC)
    command = await execute(alice, SETTINGS)
    form = fields(command)
    assert command["form"]["title"] == "Presence settings"
    assert form["policy"]["type"] == "list-single"
    assert form["policy"]["required"]
    assert form["policy"].get_value() == "ask"
    assert options(form["policy"]) == {
        "ask": "Ask me on each request",
        "everyone": "Everyone can see my presence status (except explicitly blocked users)",
        "nobody": "Nobody can see my presence status (except explicitly allowed users)",
    }
    assert form["away-when-offline"]["type"] == "boolean"
    assert form["away-when-offline"]["label"] == "Show me as Away when I am not logged in"
    assert form["away-when-offline"].get_value() is False

    note = await complete(alice, command, {"policy": "everyone"})
    assert note == (
        "Who can see my presence status: "
        "Everyone can see my presence status (except explicitly blocked users)."
    )
    bob.send_presence(pto=ALICE, ptype="subscribe")
    await bob_in.get(presence_of(bob, "subscribed", ALICE))
    await bob_in.get(presence_of(bob, "available", f"{ALICE}/test"))
    await sync(bob, alice)
    assert not [p for p in alice_in.drain() if p["type"] == "subscribe"]
    assert fields(await execute(alice, SETTINGS))["policy"].get_value() == "everyone"
    assert (await command_names(alice))[ALLOWED].endswith("(1)")


async def test_policy_change_answers_waiting_requests(users: Harness) -> None:
    alice, _ = await online(users, "alice", plugins=ADHOC)
    bob, bob_in = await online(users, "bob", plugins=ADHOC)
    bob.send_presence(pto=ALICE, ptype="subscribe")
    await sync(bob, alice)
    note = await complete(alice, await execute(alice, SETTINGS), {"policy": "nobody"})
    assert note.splitlines() == [
        "Who can see my presence status: "
        "Nobody can see my presence status (except explicitly allowed users).",
        f"Blocked: {BOB}.",
    ]
    await bob_in.get(presence_of(bob, "unsubscribed", ALICE))


async def test_pending_requests_accept_and_block(users: Harness) -> None:
    alice, _ = await online(users, "alice", plugins=ADHOC)
    bob, bob_in = await online(users, "bob", plugins=ADHOC)
    carol, carol_in = await online(users, "carol", plugins=ADHOC)
    bob.send_presence(pto=ALICE, ptype="subscribe", pstatus="it's bob")
    carol.send_presence(pto=ALICE, ptype="subscribe")
    await sync(bob, carol, alice)
    assert (await command_names(alice))[PENDING] == "Pending presence status requests (2)"

    command = await execute(alice, PENDING)
    assert command["form"]["title"] == "Pending presence status requests (2)"
    form = fields(command)
    for var in ("accept", "block"):
        assert form[var]["type"] == "list-multi"
        assert options(form[var]) == {BOB: f"{BOB}: it's bob", CAROL: CAROL}
    note = await complete(alice, command, {"accept": [BOB], "block": [CAROL]})
    assert note.splitlines() == [f"Accepted: {BOB}.", f"Blocked: {CAROL}."]

    await bob_in.get(presence_of(bob, "subscribed", ALICE))
    await bob_in.get(presence_of(bob, "available", f"{ALICE}/test"))
    await carol_in.get(presence_of(carol, "unsubscribed", ALICE))
    names = await command_names(alice)
    assert names[PENDING].endswith("(0)")
    assert names[ALLOWED].endswith("(1)")
    assert names[BLOCKED].endswith("(1)")
    empty = await execute(alice, PENDING)
    [heading] = fields(empty).values()
    assert heading["type"] == "fixed"
    assert await complete(alice, empty, {}) == "Nothing changed."


async def test_move_between_allowed_and_blocked(users: Harness) -> None:
    alice, alice_in = await online(users, "alice", plugins=ADHOC)
    bob, bob_in = await online(users, "bob", plugins=ADHOC)
    bob.send_presence(pto=ALICE, ptype="subscribe")
    await alice_in.get(presence_of(alice, "subscribe", BOB))
    alice.send_presence(pto=BOB, ptype="subscribed")
    await bob_in.get(presence_of(bob, "available", f"{ALICE}/test"))

    command = await execute(alice, ALLOWED)
    assert options(fields(command)["block"]) == {BOB: BOB}
    assert await complete(alice, command, {"block": [BOB]}) == f"Blocked: {BOB}."
    await bob_in.get(presence_of(bob, "unsubscribed", ALICE))
    await bob_in.get(presence_of(bob, "unavailable", f"{ALICE}/test"))
    # Blocked, bob's next request is refused without alice being asked.
    bob.send_presence(pto=ALICE, ptype="subscribe")
    await bob_in.get(presence_of(bob, "unsubscribed", ALICE))
    await sync(bob, alice)
    assert not [p for p in alice_in.drain() if p["type"] == "subscribe"]

    command = await execute(alice, BLOCKED)
    assert command["form"]["title"] == "Users blocked from seeing your presence status (1)"
    assert await complete(alice, command, {"allow": [BOB]}) == f"Allowed: {BOB}."
    await bob_in.get(presence_of(bob, "available", f"{ALICE}/test"))
    assert (await command_names(alice))[BLOCKED].endswith("(0)")


async def test_away_when_offline_in_one_request(users: Harness) -> None:
    """A client that knows the form may submit it with the request that executes it."""
    alice, _ = await online(users, "alice", plugins=ADHOC)
    bob, bob_in = await online(users, "bob", plugins=ADHOC)
    bob.send_presence(pto=ALICE, ptype="subscribe")
    await sync(bob, alice)
    alice.send_presence(pto=BOB, ptype="subscribed")
    await bob_in.get(presence_of(bob, "available", f"{ALICE}/test"))

    form = alice.plugin["xep_0004"].make_form(ftype="submit")
    form.add_field(var="policy", value="ask")
    form.add_field(var="away-when-offline", ftype="boolean", value=True)
    result = await alice.plugin["xep_0050"].send_command(
        DOMAIN, SETTINGS, action="complete", payload=form, timeout=TIMEOUT
    )
    assert result["command"]["status"] == "completed"
    assert result["command"]["notes"] == [("info", "Show me as Away when I am not logged in: on.")]
    alice.abort()
    await bob_in.get(presence_of(bob, "unavailable", f"{ALICE}/test"))
    away = await bob_in.get(lambda p: str(p["from"]) == ALICE and p["type"] == "away")
    assert away["status"] == "Not logged in"


async def test_cancel(users: Harness) -> None:
    alice, _ = await online(users, "alice", plugins=ADHOC)
    command = await execute(alice, SETTINGS)
    result = await alice.plugin["xep_0050"].send_command(
        DOMAIN, SETTINGS, action="cancel", sessionid=command["sessionid"], timeout=TIMEOUT
    )
    assert result["command"]["status"] == "canceled"
    assert result["command"]["sessionid"] == command["sessionid"]
    # A canceled session is over, and nothing was applied.
    assert await command_error(complete(alice, command, {"policy": "nobody"})) == (
        "bad-request",
        "That command session is unknown or has expired",
        [f"{{{COMMANDS}}}bad-sessionid"],
    )
    assert fields(await execute(alice, SETTINGS))["policy"].get_value() == "ask"


async def test_sessions_belong_to_one_resource(users: Harness) -> None:
    alice, _ = await online(users, "alice", plugins=ADHOC)
    other, _ = await online(users, "alice", "other", plugins=ADHOC)
    bob, _ = await online(users, "bob", plugins=ADHOC)
    command = await execute(alice, SETTINGS)
    for client in (bob, other):
        condition, _text, specific = await command_error(
            client.plugin["xep_0050"].send_command(
                DOMAIN,
                SETTINGS,
                action="cancel",
                sessionid=command["sessionid"],
                timeout=TIMEOUT,
            )
        )
        assert (condition, specific) == ("bad-request", [f"{{{COMMANDS}}}bad-sessionid"])
    # The session is gone with the stream that opened it.
    alice.abort()
    await sync(other)
    again, _ = await online(users, "alice", plugins=ADHOC)
    condition, _text, specific = await command_error(
        again.plugin["xep_0050"].send_command(
            DOMAIN, SETTINGS, action="cancel", sessionid=command["sessionid"], timeout=TIMEOUT
        )
    )
    assert (condition, specific) == ("bad-request", [f"{{{COMMANDS}}}bad-sessionid"])


async def test_sessions_are_bounded_in_number_and_lifetime(users: Harness) -> None:
    alice, _ = await online(users, "alice", plugins=ADHOC)
    started = [await execute(alice, SETTINGS) for _ in range(MAX_SESSIONS_PER_RESOURCE + 1)]
    condition, _text, specific = await command_error(
        complete(alice, started[0], {"policy": "nobody"})
    )
    assert (condition, specific) == ("bad-request", [f"{{{COMMANDS}}}bad-sessionid"])
    await complete(alice, started[1], {"policy": "ask"})

    users.ctx.adhoc.clock = lambda: time.monotonic() + SESSION_LIFETIME
    condition, _text, specific = await command_error(
        complete(alice, started[2], {"policy": "nobody"})
    )
    assert (condition, specific) == ("bad-request", [f"{{{COMMANDS}}}bad-sessionid"])


async def test_bad_requests(users: Harness) -> None:
    alice, _ = await online(users, "alice", plugins=ADHOC)
    adhoc = alice.plugin["xep_0050"]
    assert await command_error(
        adhoc.send_command(DOMAIN, "urn:chorus:cmd:nothing", timeout=TIMEOUT)
    ) == ("item-not-found", "No such command", [])
    assert await command_error(
        adhoc.send_command(DOMAIN, SETTINGS, sessionid="made-up", timeout=TIMEOUT)
    ) == (
        "bad-request",
        "That command session is unknown or has expired",
        [f"{{{COMMANDS}}}bad-sessionid"],
    )
    command = await execute(alice, SETTINGS)
    for action in ("next", "prev"):
        condition, _text, specific = await command_error(
            adhoc.send_command(
                DOMAIN, SETTINGS, action=action, sessionid=command["sessionid"], timeout=TIMEOUT
            )
        )
        assert (condition, specific) == ("bad-request", [f"{{{COMMANDS}}}bad-action"])
    condition, _text, specific = await command_error(
        adhoc.send_command(
            DOMAIN, SETTINGS, action="complete", sessionid=command["sessionid"], timeout=TIMEOUT
        )
    )
    assert (condition, specific) == ("bad-request", [f"{{{COMMANDS}}}bad-payload"])

    # A value outside the choices is refused with the field named; the session stays open.
    assert await command_error(complete(alice, command, {"policy": "sometimes"})) == (
        "bad-request",
        "Who can see my presence status: 'sometimes' is not one of the choices",
        [],
    )
    assert await complete(alice, command, {"policy": "nobody"}) == (
        "Who can see my presence status: "
        "Nobody can see my presence status (except explicitly allowed users)."
    )


async def test_contact_selected_twice_or_gone(users: Harness) -> None:
    alice, _ = await online(users, "alice", plugins=ADHOC)
    bob, _ = await online(users, "bob", plugins=ADHOC)
    bob.send_presence(pto=ALICE, ptype="subscribe")
    await sync(bob, alice)
    command = await execute(alice, PENDING)
    condition, text, _ = await command_error(
        complete(alice, command, {"accept": [BOB], "block": [BOB]})
    )
    assert (condition, text) == (
        "bad-request",
        f"{BOB} is selected under both 'Accept: they can see your presence status'"
        " and 'Block: they cannot see your presence status'",
    )
    # Bob withdraws his request while alice's form still shows it.
    bob.send_presence(pto=ALICE, ptype="unsubscribe")
    await sync(bob, alice)
    assert await command_error(complete(alice, command, {"accept": [BOB], "block": []})) == (
        "bad-request",
        f"{BOB} is no longer on this list",
        [],
    )
    assert (await command_names(alice))[PENDING].endswith("(0)")


class PickSomeone:
    """A command registered by the test itself, for what the visibility commands leave out."""

    async def start(self, owner: str) -> Element:
        return Form((Field("jid-single", "who", "Who", required=True),), title="Pick").to_element()

    async def submit(self, owner: str, values: dict[str, FieldValue]) -> str:
        return f"{owner} picked {values['who']}"


async def test_commands_limited_to_some_users(users: Harness) -> None:
    users.ctx.adhoc.register(
        "urn:test:pick", "Pick someone", PickSomeone(), allowed=lambda jid: jid.local == "alice"
    )
    alice, _ = await online(users, "alice", plugins=ADHOC)
    bob, _ = await online(users, "bob", plugins=ADHOC)
    assert (await command_names(alice))["urn:test:pick"] == "Pick someone"
    command = await execute(alice, "urn:test:pick")
    assert await complete(alice, command, {"who": "Bob@Chorus.test"}) == f"alice picked {BOB}"

    assert "urn:test:pick" not in await command_names(bob)
    with pytest.raises(IqError) as raised:
        await bob.plugin["xep_0030"].get_info(DOMAIN, node="urn:test:pick", timeout=TIMEOUT)
    assert raised.value.iq["error"]["condition"] == "item-not-found"
    assert await command_error(
        bob.plugin["xep_0050"].send_command(DOMAIN, "urn:test:pick", timeout=TIMEOUT)
    ) == ("forbidden", "You may not run this command", [])
