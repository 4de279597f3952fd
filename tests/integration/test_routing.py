"""Call routing with real clients: the routing IQs, routes that follow presence, who may ask."""

from __future__ import annotations

import pytest
import slixmpp
from slixmpp.exceptions import IqError
from slixmpp.xmlstream import ET

from tests.integration.harness import DOMAIN, TIMEOUT, Harness, Inbox, presence_of

NS = "urn:chorus:routing:0"
ALICE, BOB, BOSS = f"alice@{DOMAIN}", f"bob@{DOMAIN}", f"boss@{DOMAIN}"
NOBODY = f"nobody@{DOMAIN}"
ADMIN_BOSS = pytest.mark.server_config(top_level={"admins": [BOSS]})

DEVICES = (
    "<device name='Desk phone' kind='desk-phone'/>"
    "<device name='Mobile' kind='mobile'/>"
    "<device name='Voicemail' kind='voicemail'/>"
)
MAP = (
    "<map state='available' device='Desk phone'/>"
    "<map state='away' device='Mobile'/>"
    "<map state='dnd' device='Voicemail'/>"
    "<map state='busy' device='Voicemail'/>"
    "<map state='offline' device='Mobile'/>"
)

# The device each state rings with the switch on; brb and in-meeting fall back to the default.
SWITCH_ON = {
    "available": "Desk phone",
    "away": "Mobile",
    "brb": "Desk phone",
    "dnd": "Voicemail",
    "busy": "Voicemail",
    "in-meeting": "Desk phone",
}
KIND = {"Desk phone": "desk-phone", "Mobile": "mobile", "Voicemail": "voicemail"}


def routing(enabled: str, body: str, default: str | None = "Desk phone") -> str:
    default_attr = f" default='{default}'" if default is not None else ""
    return f"<routing xmlns='{NS}' enabled='{enabled}'{default_attr}>{body}</routing>"


async def set_routing(client: slixmpp.ClientXMPP, xml: str, to: str | None = None) -> None:
    iq = client.make_iq_set(ito=to)
    iq.append(ET.fromstring(xml))
    await iq.send(timeout=TIMEOUT)


async def get_routing(client: slixmpp.ClientXMPP, to: str | None = None) -> ET.Element:
    iq = client.make_iq_get(ito=to)
    iq.append(ET.Element(f"{{{NS}}}routing"))
    result = await iq.send(timeout=TIMEOUT)
    node = result.xml.find(f"{{{NS}}}routing")
    assert node is not None
    return node


async def route(client: slixmpp.ClientXMPP, user: str | None = None) -> dict[str, str]:
    """The attributes of the route answer for `user` (no 'to' when None)."""
    iq = client.make_iq_get(ito=user)
    iq.append(ET.Element(f"{{{NS}}}route"))
    result = await iq.send(timeout=TIMEOUT)
    node = result.xml.find(f"{{{NS}}}route")
    assert node is not None
    return dict(node.attrib)


async def refusal(request) -> str:
    """The error condition a request coroutine ends with."""
    with pytest.raises(IqError) as caught:
        await request
    return caught.value.condition


def send_state(client: slixmpp.ClientXMPP, state: str) -> None:
    presence = client.make_presence()
    node = ET.Element("{urn:chorus:presence:0}state")
    node.text = state
    presence.append(node)
    presence.send()


def answer(state: str, device: str) -> dict[str, str]:
    return {"jid": ALICE, "state": state, "device": device, "kind": KIND[device]}


@pytest.fixture
async def users(harness: Harness) -> Harness:
    for name in ("alice", "bob", "boss"):
        await harness.add_user(name)
    return harness


async def test_configuration_round_trip(users: Harness) -> None:
    alice = await users.login("alice", plugins=("xep_0030",))
    info = await alice.plugin["xep_0030"].get_info(DOMAIN, timeout=TIMEOUT)
    assert NS in info["disco_info"]["features"]

    empty = await get_routing(alice)
    assert dict(empty.attrib) == {"enabled": "false"} and len(empty) == 0
    # Logged in without initial presence is not online yet, and nothing is set up to ring.
    assert await route(alice) == {"jid": ALICE, "state": "offline"}

    await set_routing(alice, routing("true", DEVICES + MAP))
    stored = await get_routing(alice, to=ALICE)
    assert dict(stored.attrib) == {"enabled": "true", "default": "Desk phone"}
    assert [(n.tag.removeprefix(f"{{{NS}}}"), dict(n.attrib)) for n in stored] == [
        ("device", {"name": "Desk phone", "kind": "desk-phone"}),
        ("device", {"name": "Mobile", "kind": "mobile"}),
        ("device", {"name": "Voicemail", "kind": "voicemail"}),
        ("map", {"state": "available", "device": "Desk phone"}),
        ("map", {"state": "away", "device": "Mobile"}),
        ("map", {"state": "dnd", "device": "Voicemail"}),
        ("map", {"state": "busy", "device": "Voicemail"}),
        ("map", {"state": "offline", "device": "Mobile"}),
    ]

    # A set replaces everything: devices and map entries left out are gone.
    await set_routing(alice, routing("false", "<device name='Mobile' kind='mobile'/>", None))
    stored = await get_routing(alice)
    assert dict(stored.attrib) == {"enabled": "false"}
    assert [dict(n.attrib) for n in stored] == [{"name": "Mobile", "kind": "mobile"}]


@pytest.mark.parametrize(
    "xml,condition",
    [
        (routing("maybe", DEVICES), "bad-request"),
        (routing("true", "<device name='Desk phone'/>"), "bad-request"),
        (routing("true", "<device name='Desk phone' kind='fax'/>"), "bad-request"),
        (routing("true", DEVICES + "<device name='Mobile' kind='other'/>"), "bad-request"),
        (
            routing("true", DEVICES + "<map state='dnd' device='Mobile'/>" * 2),
            "bad-request",
        ),
        (routing("true", DEVICES + "<map state='asleep' device='Mobile'/>"), "bad-request"),
        (routing("true", DEVICES + "<extra/>"), "bad-request"),
        (routing("true", DEVICES, "Pager"), "not-acceptable"),
        (routing("true", DEVICES + "<map state='dnd' device='Pager'/>"), "not-acceptable"),
        (routing("true", f"<device name='{'x' * 65}' kind='other'/>", None), "not-acceptable"),
    ],
)
async def test_invalid_configurations_are_refused(users: Harness, xml: str, condition: str) -> None:
    alice = await users.login("alice")
    await set_routing(alice, routing("true", DEVICES + MAP))
    assert await refusal(set_routing(alice, xml)) == condition
    stored = await get_routing(alice)
    assert stored.get("enabled") == "true" and len(stored) == 8


async def test_only_your_own_configuration(users: Harness) -> None:
    bob = await users.login("bob")
    assert await refusal(get_routing(bob, to=ALICE)) == "forbidden"
    assert await refusal(set_routing(bob, routing("true", DEVICES), to=ALICE)) == "forbidden"


@ADMIN_BOSS
async def test_routes_follow_presence_with_the_switch_on_and_off(users: Harness) -> None:
    alice = await users.login("alice")
    alice.auto_authorize = None
    alice_in = Inbox(alice)
    boss = await users.login("boss")
    boss_in = Inbox(boss)
    # Alice lets the admin see her presence, so that it sees her log out at the end.
    alice.send_presence()
    boss.send_presence()
    boss.send_presence(pto=ALICE, ptype="subscribe")
    await alice_in.get(presence_of(alice, "subscribe", BOSS))
    alice.send_presence(pto=BOSS, ptype="subscribed")
    await boss_in.get(presence_of(boss, "available", f"{ALICE}/test"))
    await set_routing(alice, routing("true", DEVICES + MAP))

    for state, device in SWITCH_ON.items():
        send_state(alice, state)
        # Her own stream handles the presence before the query; the admin asks after that.
        assert await route(alice) == answer(state, device)
        assert await route(boss, ALICE) == answer(state, device)

    await set_routing(alice, routing("false", DEVICES + MAP))
    for state in SWITCH_ON:
        send_state(alice, state)
        assert await route(alice) == answer(state, "Desk phone")
        assert await route(boss, ALICE) == answer(state, "Desk phone")

    await set_routing(alice, routing("true", DEVICES + MAP))
    alice.abort()
    await boss_in.get(presence_of(boss, "unavailable", f"{ALICE}/test"))
    assert await route(boss, ALICE) == answer("offline", "Mobile")


@ADMIN_BOSS
async def test_who_may_ask_the_route(users: Harness) -> None:
    alice = await users.login("alice")
    bob = await users.login("bob")
    boss = await users.login("boss")
    await set_routing(alice, routing("true", DEVICES + MAP))
    expected = answer("offline", "Mobile")

    assert await route(alice, ALICE) == expected
    assert await route(boss, ALICE) == expected
    assert await refusal(route(boss, NOBODY)) == "item-not-found"
    # A stranger learns nothing, not even whether the user exists.
    assert await refusal(route(bob, ALICE)) == "forbidden"
    assert await refusal(route(bob, NOBODY)) == "forbidden"

    await users.ctx.call_routing.set_permission("bob", True)
    assert await route(bob, ALICE) == expected
    assert await refusal(route(bob, NOBODY)) == "item-not-found"
    await users.ctx.call_routing.set_permission("bob", False)
    assert await refusal(route(bob, ALICE)) == "forbidden"


async def test_the_latest_choice_among_resources_decides(users: Harness) -> None:
    phone = await users.login("alice", resource="phone")
    phone_in = Inbox(phone)
    laptop = await users.login("alice", resource="laptop")
    await set_routing(phone, routing("true", DEVICES + MAP))
    send_state(phone, "away")
    assert await route(phone) == answer("away", "Mobile")
    send_state(laptop, "dnd")
    assert await route(laptop) == answer("dnd", "Voicemail")
    assert await route(phone) == answer("dnd", "Voicemail")
    laptop.abort()
    await phone_in.get(presence_of(phone, "unavailable", f"{ALICE}/laptop"))
    assert await route(phone) == answer("away", "Mobile")


async def test_a_block_forbids_even_a_permitted_account(users: Harness) -> None:
    alice = await users.login("alice", plugins=("xep_0191",))
    bob = await users.login("bob")
    await users.ctx.call_routing.set_permission("bob", True)
    assert await route(bob, ALICE) == {"jid": ALICE, "state": "offline"}
    await alice.plugin["xep_0191"].block(BOB, timeout=TIMEOUT)
    assert await refusal(route(bob, ALICE)) == "forbidden"
    await alice.plugin["xep_0191"].unblock(BOB, timeout=TIMEOUT)
    assert await route(bob, ALICE) == {"jid": ALICE, "state": "offline"}
