"""Appear offline, through the wire with real clients: contacts see a logout (with the "Away
while not logged in" automation when it is on) while the user goes on chatting; probes, last
activity, IQs to the full JID, messages and call routing answer as for a user who is not logged
in; directed presence the user sends still reaches its target; the setting survives logging out
and a restart; the extension, the bot plugin, the ad-hoc command and the command line set it.

Each path is checked against a twin who really is logged out (carol, set up as alice is), so a
test fails on any difference a contact could see, not only on the ones it names.
"""

from __future__ import annotations

from typing import Any

import pytest
from slixmpp.exceptions import IqError
from slixmpp.xmlstream import ET

from chorus_presence.services.call_routing import Device, RoutingConfig
from chorus_presence.xmpp.jid import JID
from tests.integration.harness import (
    ADHOC,
    DOMAIN,
    TIMEOUT,
    Harness,
    Inbox,
    complete,
    config_of,
    execute,
    fields,
    link,
    ok,
    online,
    presence_of,
    sync,
    visibility,
)

ALICE, BOB, CAROL, DAVE = (f"{name}@{DOMAIN}" for name in ("alice", "bob", "carol", "dave"))
SETTINGS_COMMAND = "urn:chorus:cmd:presence-settings"
FEATURE = "urn:chorus:visibility:0#appear-offline"
ROUTING = "urn:chorus:routing:0"
LAST = "jabber:iq:last"
DISCO_INFO = "http://jabber.org/protocol/disco#info"
PING = "urn:xmpp:ping"
VERSION = "jabber:iq:version"


async def hide(client: Any, hidden: bool = True) -> ET.Element:
    return await visibility(client, **{"appear-offline": "true" if hidden else "false"})


async def answer(client: Any, iq_type: str, to: str, payload: str) -> tuple[str, ...]:
    """What `client` is answered to an IQ, with the asked user made neutral: ('result', child
    name, attributes) or ('error', condition, text)."""
    name = to.partition("@")[0]
    iq = client.make_iq_set(ito=to) if iq_type == "set" else client.make_iq_get(ito=to)
    iq.append(ET.fromstring(payload))
    try:
        result = await iq.send(timeout=TIMEOUT)
    except IqError as error:
        text = error.iq["error"]["text"].replace(name, "someone")
        return ("error", error.iq["error"]["condition"], text)
    children = list(result.xml)
    if not children:
        return ("result",)
    node = children[0]
    attributes = {k: v.replace(name, "someone") for k, v in node.attrib.items()}
    return ("result", node.tag, repr(sorted(attributes.items())), node.text or "")


def renamed(stanza: Any, name: str) -> str:
    """A received stanza as text with `name` (a user's localpart), ids and XEP-0319 idle times
    made neutral: the twins go a moment apart on the wall clock, not always in one second."""
    xml = stanza.xml
    copy = ET.fromstring(ET.tostring(xml))
    copy.attrib.pop("id", None)
    for idle in copy.iter("{urn:xmpp:idle:1}idle"):
        if idle.get("since"):
            idle.set("since", "SINCE")
    return ET.tostring(copy, encoding="unicode").replace(name, "someone")


def from_user(inbox: Inbox, jid: str) -> list[Any]:
    return [s for s in inbox.drain() if s["from"].bare == jid]


async def world(harness: Harness) -> tuple[Any, Inbox, Any, Inbox]:
    """alice and carol, each a contact of bob's both ways and of dave's one way (dave sees them
    but they do not see dave); alice online and hidden, carol logged out after a login."""
    for name in ("alice", "bob", "carol", "dave"):
        await harness.add_user(name)
    for user in ("alice", "carol"):
        await link(harness, user, "bob")
        owner, watcher = JID(user, DOMAIN), JID("dave", DOMAIN)
        await harness.ctx.subscriptions.exchange(watcher, owner, "subscribe")
        await harness.ctx.subscriptions.exchange(owner, watcher, "subscribed")
    carol, _ = await online(harness, "carol")
    carol.send_presence(ptype="unavailable", pstatus="In a meeting")
    await sync(carol)
    carol.disconnect()
    bob, bob_in = await online(harness, "bob")
    alice, alice_in = await online(harness, "alice")
    alice.send_presence(pstatus="In a meeting")
    await bob_in.get(lambda p: str(p["from"]) == f"{ALICE}/test" and p["status"] == "In a meeting")
    await hide(alice)
    await sync(alice, bob)
    return alice, alice_in, bob, bob_in


async def test_contacts_see_a_logout_while_the_user_goes_on(harness: Harness) -> None:
    alice, alice_in, bob, bob_in = await world(harness)
    gone = await bob_in.get(presence_of(bob, "unavailable", f"{ALICE}/test"))
    assert gone["status"] == "In a meeting"
    bob_in.drain()

    # Updates reach the user's own resources only.
    alice.send_presence(pshow="dnd", pstatus="Focus")
    await alice_in.get(lambda p: str(p["from"]) == f"{ALICE}/test" and p["show"] == "dnd")
    second, second_in = await online(harness, "alice", "phone")
    await second_in.get(lambda p: str(p["from"]) == f"{ALICE}/test" and p["show"] == "dnd")
    await sync(alice, second, bob)
    assert from_user(bob_in, ALICE) == []

    # Probes are answered as for carol, who is logged out.
    for user in (ALICE, CAROL):
        bob.send_presence(pto=user, ptype="probe")
    await sync(bob)
    answers = [s for s in bob_in.drain() if s["from"].bare in (ALICE, CAROL)]
    assert [renamed(s, s["from"].user) for s in answers if s["from"].bare == ALICE] == [
        renamed(s, s["from"].user) for s in answers if s["from"].bare == CAROL
    ]
    assert all(s["type"] == "unavailable" for s in answers)

    # The user still sees contacts, chats, reads the roster.
    bob.send_presence(pstatus="Here")
    await alice_in.get(lambda p: str(p["from"]) == f"{BOB}/test" and p["status"] == "Here")
    alice.send_message(mto=BOB, mbody="hello from nowhere", mtype="chat")
    await bob_in.get(lambda m: m.name == "message" and m["body"] == "hello from nowhere")
    roster = await alice.get_roster()
    assert BOB in roster["roster"]["items"]

    # Coming back: contacts see the resources' presence again.
    await hide(alice, False)
    await bob_in.expect(
        lambda p: str(p["from"]) == f"{ALICE}/test" and p["show"] == "dnd", "alice back"
    )
    await bob_in.expect(lambda p: str(p["from"]) == f"{ALICE}/phone", "alice's phone back")


async def test_the_away_automation_shows_as_for_a_logout(harness: Harness) -> None:
    alice, _alice_in, bob, bob_in = await world(harness)
    bob_in.drain()
    await visibility(alice, **{"away-when-offline": "true"})
    carol, _ = await online(harness, "carol")
    await visibility(carol, **{"away-when-offline": "true"})
    carol.send_presence(ptype="unavailable")
    await sync(carol, alice, bob)
    carol.disconnect()
    automated = [
        s for s in bob_in.drain() if s["from"].bare in (ALICE, CAROL) and s["from"].resource == ""
    ]
    by_user = {s["from"].bare: renamed(s, s["from"].user) for s in automated}
    assert by_user[ALICE] == by_user[CAROL]
    assert "Not logged in" in by_user[ALICE]

    # A contact logging in later sees the same of both.
    bob.disconnect()
    bob, bob_in = await online(harness, "bob", "later")
    await sync(bob)
    shown = {
        s["from"].bare: renamed(s, s["from"].user)
        for s in bob_in.drain()
        if s["from"].bare in (ALICE, CAROL)
    }
    assert shown[ALICE] == shown[CAROL] and "Not logged in" in shown[ALICE]


async def test_last_activity_answers_as_offline_since_going(harness: Harness) -> None:
    alice, _alice_in, bob, _bob_in = await world(harness)
    query = f"<query xmlns='{LAST}'/>"
    mine, theirs = await answer(bob, "get", ALICE, query), await answer(bob, "get", CAROL, query)
    assert mine[:3] == theirs[:3] and mine[3] == theirs[3] == "In a meeting"
    # A logout while hidden records nothing new: the user has been offline since going.
    alice.send_presence(ptype="unavailable", pstatus="Bye")
    await sync(alice)
    alice.disconnect()
    again = await answer(bob, "get", ALICE, query)
    assert again[3] == "In a meeting"
    # The user still reads their own as online.
    alice, _ = await online(harness, "alice")
    assert "'seconds', '0'" in (await answer(alice, "get", ALICE, query))[2]


async def test_iqs_to_the_full_jid_are_answered_as_for_a_resource_not_online(
    harness: Harness,
) -> None:
    alice, _alice_in, bob, _bob_in = await world(harness)
    alice.register_plugin("xep_0030")
    bob.register_plugin("xep_0030")
    for payload in (
        f"<query xmlns='{DISCO_INFO}'/>",
        f"<ping xmlns='{PING}'/>",
        f"<query xmlns='{VERSION}'/>",
    ):
        online_resource = await answer(bob, "get", f"{ALICE}/test", payload)
        assert online_resource == await answer(bob, "get", f"{CAROL}/test", payload)
        assert online_resource == ("error", "service-unavailable", "")
    # What the user asks others is answered to them.
    info = await alice.plugin["xep_0030"].get_info(f"{BOB}/test", timeout=TIMEOUT)
    assert info["disco_info"]["identities"]
    # Their own resources reach each other.
    phone, _ = await online(harness, "alice", "phone")
    own = await answer(phone, "get", f"{ALICE}/test", f"<query xmlns='{DISCO_INFO}'/>")
    assert own[0] == "result"


async def test_directed_presence_reaches_only_its_target(harness: Harness) -> None:
    alice, _alice_in, bob, bob_in = await world(harness)
    dave, dave_in = await online(harness, "dave")
    await sync(dave)
    dave_in.drain()
    bob_in.drain()
    alice.send_presence(pto=DAVE, pstatus="Only for you")
    await dave_in.expect(
        lambda p: str(p["from"]) == f"{ALICE}/test" and p["status"] == "Only for you",
        "the directed presence",
    )
    alice.disconnect()
    await dave_in.expect(presence_of(dave, "unavailable", f"{ALICE}/test"), "its unavailable")
    await sync(bob)
    assert from_user(bob_in, ALICE) == []


@pytest.mark.server_config(messages={"offline": "bounce"})
async def test_a_bounced_message_is_delivered_and_bounced_as_for_a_logout(
    harness: Harness,
) -> None:
    _alice, alice_in, bob, bob_in = await world(harness)
    bob_in.drain()
    for user in (ALICE, CAROL, f"{ALICE}/test"):
        bob.send_message(mto=user, mbody=f"to {user}", mtype="chat")
        await sync(bob)
    errors = [renamed(s, s["from"].user) for s in bob_in.drain() if s["type"] == "error"]
    full = errors[2].replace("someone@chorus.test/test", "someone@chorus.test")
    assert len(errors) == 3 and errors[0] == errors[1] == full
    assert "The recipient is not logged in" in errors[0]
    for user in (ALICE, f"{ALICE}/test"):
        await alice_in.expect(
            lambda m, u=user: m.name == "message" and m["body"] == f"to {u}", user
        )


@pytest.mark.server_config(messages={"offline": "store", "max_offline": 2})
async def test_stored_messages_fill_the_quota_as_for_a_logout(harness: Harness) -> None:
    _alice, alice_in, bob, bob_in = await world(harness)
    bob_in.drain()
    for count in range(3):
        for user in (ALICE, CAROL):
            bob.send_message(mto=user, mbody=f"{count}", mtype="chat")
        await sync(bob)
    errors = [s for s in bob_in.drain() if s["type"] == "error"]
    assert sorted(renamed(s, s["from"].user) for s in errors if s["from"].bare == ALICE) == sorted(
        renamed(s, s["from"].user) for s in errors if s["from"].bare == CAROL
    )
    assert len(errors) == 2 and "offline storage is full" in str(errors[0])
    for count in range(3):
        await alice_in.expect(
            lambda m, c=count: m.name == "message" and m["body"] == f"{c}", "live"
        )
    # Nothing was stored for alice: a login delivers nothing twice.
    assert await harness.ctx.repositories.offline.pending("alice") == []


async def test_call_routing_answers_as_for_a_logout(harness: Harness) -> None:
    alice, _alice_in, bob, _bob_in = await world(harness)
    await harness.add_user("pbx")
    await harness.ctx.call_routing.set_permission("pbx", True)
    pbx, _ = await online(harness, "pbx")
    config = RoutingConfig(
        enabled=True,
        default_device="Desk",
        devices=(Device("Desk", "desk-phone"), Device("Voicemail", "voicemail")),
        mapping={"offline": "Voicemail", "dnd": "Voicemail"},
    )
    for user in ("alice", "carol"):
        await harness.ctx.call_routing.replace(user, config)
    route = f"<route xmlns='{ROUTING}'/>"
    # bob may not ask and the PBX may: each hears the same of both.
    for asker in (bob, pbx):
        mine = await answer(asker, "get", ALICE, route)
        assert mine == await answer(asker, "get", CAROL, route)
    assert "('device', 'Voicemail')" in mine[2] and "('state', 'offline')" in mine[2]
    # alice's own query says how her calls reach her now.
    assert await answer(alice, "get", ALICE, route) == mine


async def test_the_setting_survives_a_logout_and_a_restart(harness: Harness) -> None:
    alice, _alice_in, _bob, _bob_in = await world(harness)
    alice.disconnect()
    await harness.restart()
    bob, bob_in = await online(harness, "bob")
    await sync(bob)
    bob_in.drain()
    alice, _alice_in = await online(harness, "alice")
    assert (await visibility(alice)).get("appear-offline") == "true"
    await sync(alice, bob)
    assert [s for s in from_user(bob_in, ALICE) if s["type"] != "unavailable"] == []
    bob.send_presence(pto=ALICE, ptype="probe")
    await sync(bob)
    assert [s["type"] for s in from_user(bob_in, ALICE)] == ["unavailable"]


async def test_the_server_advertises_it_and_not_the_per_session_xep(harness: Harness) -> None:
    await harness.add_user("alice")
    alice, _ = await online(harness, "alice", plugins=("xep_0030",))
    features = (await alice.plugin["xep_0030"].get_info(DOMAIN, timeout=TIMEOUT))["disco_info"][
        "features"
    ]
    assert FEATURE in features
    assert not any(feature.startswith("urn:xmpp:invisible") for feature in features)


async def test_the_plugin_command_and_command_line_set_it(harness: Harness) -> None:
    for name in ("alice", "bob"):
        await harness.add_user(name)
    await link(harness, "alice", "bob")
    bob, bob_in = await online(harness, "bob")
    alice, _ = await online(harness, "alice", plugins=ADHOC)
    alice.register_plugin("chorus", module="chorus_presence.client.plugin")
    await bob_in.get(presence_of(bob, "available", f"{ALICE}/test"))

    chorus = alice.plugin["chorus"]
    assert (await chorus.set_appear_offline(True)).appear_offline
    await bob_in.expect(presence_of(bob, "unavailable", f"{ALICE}/test"), "hidden by the plugin")
    assert not (await chorus.set_appear_offline(False)).appear_offline
    await bob_in.expect(presence_of(bob, "available", f"{ALICE}/test"), "shown by the plugin")

    command = await execute(alice, SETTINGS_COMMAND)
    field = fields(command)["appear-offline"]
    assert field["type"] == "boolean" and field.get_value() is False
    note = await complete(alice, command, {"appear-offline": True})
    assert "Appear offline: on." in note
    await bob_in.expect(presence_of(bob, "unavailable", f"{ALICE}/test"), "hidden by the command")

    config = config_of(harness)
    shown = await ok(config, "visibility", "appear-offline", "alice", "off", "--json")
    assert shown.json()["appear_offline"] is False
    await bob_in.expect(presence_of(bob, "available", f"{ALICE}/test"), "shown by the admin")
    table = await ok(config, "visibility", "show", "alice")
    assert "appears offline: no" in table.out


async def test_a_bad_value_is_refused_and_changes_nothing(harness: Harness) -> None:
    await harness.add_user("alice")
    alice, _ = await online(harness, "alice")
    iq = alice.make_iq_set()
    iq.append(ET.Element("{urn:chorus:visibility:0}visibility", {"appear-offline": "maybe"}))
    with pytest.raises(IqError) as refused:
        await iq.send(timeout=TIMEOUT)
    assert refused.value.iq["error"]["condition"] == "bad-request"
    assert "'appear-offline' is true or false" in refused.value.iq["error"]["text"]
    assert (await visibility(alice)).get("appear-offline") == "false"
