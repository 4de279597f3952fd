"""XEP-0191 Blocking Command with real clients: the block list and its pushes, and what a block
does to presence, messages and subscription requests, before and after a restart."""

from __future__ import annotations

import pytest
from slixmpp.exceptions import IqError
from slixmpp.xmlstream import ET

from chorus_presence.services import block_list as block_list_service
from tests.integration.harness import (
    DOMAIN,
    Harness,
    Inbox,
    befriend,
    block_list,
    online,
    presence_of,
    roster_of,
    sync,
)

ALICE, BOB, CAROL = f"alice@{DOMAIN}", f"bob@{DOMAIN}", f"carol@{DOMAIN}"
SPAM = "spam.example"


@pytest.fixture
async def users(harness: Harness) -> Harness:
    for name in ("alice", "bob", "carol"):
        await harness.add_user(name)
    return harness


async def blocker(harness: Harness, user: str, resource: str = "test"):
    """An online client (as `online` makes them) that also speaks XEP-0191."""
    client, inbox = await online(harness, user, resource)
    client.register_plugin("xep_0191")
    return client, inbox


async def unblock_all(client) -> None:
    iq = client.make_iq_set()
    iq.enable("unblock")
    await iq.send(timeout=10)


def pushed(push) -> tuple[str, list[str]]:
    """A push as (kind, items)."""
    kind = "block" if push.xml.find("{urn:xmpp:blocking}block") is not None else "unblock"
    return kind, [item["jid"] for item in push[kind]["items"]]


def from_(jid: str):
    return lambda stanza: stanza["from"].bare == jid


async def test_block_list_changes_are_pushed_to_resources_that_asked(users: Harness) -> None:
    first, _ = await blocker(users, "alice", "first")
    second, _ = await blocker(users, "alice", "second")
    silent, _ = await blocker(users, "alice", "silent")
    pushes = Inbox(second, "blocked", "unblocked")
    unasked = Inbox(silent, "blocked", "unblocked")
    assert await block_list(second) == []

    await first.plugin["xep_0191"].block([BOB, SPAM, BOB], timeout=10)
    assert pushed(await pushes.get()) == ("block", [BOB, SPAM])
    assert await block_list(first) == [BOB, SPAM]
    # Blocking what is blocked already changes nothing and pushes nothing.
    await first.plugin["xep_0191"].block([SPAM], timeout=10)

    await first.plugin["xep_0191"].unblock([BOB, CAROL], timeout=10)
    assert pushed(await pushes.get()) == ("unblock", [BOB])
    assert await block_list(first) == [SPAM]

    await first.plugin["xep_0191"].block([CAROL], timeout=10)
    assert pushed(await pushes.get()) == ("block", [CAROL])
    await unblock_all(first)
    assert pushed(await pushes.get()) == ("unblock", [])
    assert await block_list(second) == []

    await sync(first, second, silent)
    assert pushes.drain() == []
    assert unasked.drain() == []


@pytest.mark.parametrize(
    "payload,condition",
    [
        ("<block xmlns='urn:xmpp:blocking'/>", "bad-request"),
        ("<block xmlns='urn:xmpp:blocking'><item jid='not a jid@@'/></block>", "jid-malformed"),
        ("<block xmlns='urn:xmpp:blocking'><item/></block>", "jid-malformed"),
        ("<unblock xmlns='urn:xmpp:blocking'><item jid='@@'/></unblock>", "jid-malformed"),
        (f"<block xmlns='urn:xmpp:blocking'><item jid='{ALICE}'/></block>", "not-allowed"),
        (
            f"<block xmlns='urn:xmpp:blocking'><item jid='{BOB}/phone'/></block>",
            "feature-not-implemented",
        ),
    ],
)
async def test_block_errors(users: Harness, payload: str, condition: str) -> None:
    alice, _ = await blocker(users, "alice")
    iq = alice.make_iq_set()
    iq.append(ET.fromstring(payload))
    with pytest.raises(IqError) as caught:
        await iq.send(timeout=10)
    assert caught.value.condition == condition
    assert await block_list(alice) == []


async def test_someone_elses_block_list_is_forbidden(users: Harness) -> None:
    alice, _ = await blocker(users, "alice")
    iq = alice.make_iq_get(ito=BOB)
    iq.enable("blocklist")
    with pytest.raises(IqError) as caught:
        await iq.send(timeout=10)
    assert caught.value.condition == "forbidden"


async def test_block_list_size_is_capped(users: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(block_list_service, "MAX_ITEMS", 2)
    alice, _ = await blocker(users, "alice")
    await alice.plugin["xep_0191"].block([BOB, CAROL], timeout=10)
    with pytest.raises(IqError) as caught:
        await alice.plugin["xep_0191"].block([SPAM], timeout=10)
    assert caught.value.condition == "not-acceptable"
    assert await block_list(alice) == [BOB, CAROL]


async def test_block_hides_presence_both_ways_and_unblock_restores_it(users: Harness) -> None:
    alice, alice_in = await blocker(users, "alice")
    bob, bob_in = await online(users, "bob")
    await befriend(alice, alice_in, bob, bob_in)
    alice_in.drain()
    bob_in.drain()

    await alice.plugin["xep_0191"].block([BOB], timeout=10)
    await bob_in.get(presence_of(bob, "unavailable", f"{ALICE}/test"))
    await alice_in.get(presence_of(alice, "unavailable", f"{BOB}/test"))
    assert (await roster_of(bob))[ALICE]["subscription"] == "both"

    alice.send_presence(pstatus="hidden from bob")
    bob.send_presence(pstatus="hidden from alice")
    bob.send_presence(pto=ALICE, ptype="probe")
    late = await users.login("bob", resource="late")
    late_in = Inbox(late)
    late.send_presence()
    await late_in.get(presence_of(late, "available", f"{BOB}/test"))
    await sync(alice, bob, late, alice)
    assert not [p for p in bob_in.drain() + late_in.drain() if p["from"].bare == ALICE]
    assert not [p for p in alice_in.drain() if p["from"].bare == BOB]

    await alice.plugin["xep_0191"].unblock([BOB], timeout=10)
    shown = await bob_in.get(presence_of(bob, "available", f"{ALICE}/test"))
    assert shown["status"] == "hidden from bob"
    await alice_in.get(presence_of(alice, "available", f"{BOB}/test"))
    await alice_in.get(presence_of(alice, "available", f"{BOB}/late"))
    alice.send_presence(pstatus="back")
    assert (await bob_in.get(from_(ALICE)))["status"] == "back"


async def test_block_hides_directed_presence(users: Harness) -> None:
    alice, _ = await blocker(users, "alice")
    carol, carol_in = await online(users, "carol")
    alice.send_presence(pto=CAROL, pstatus="just for you")
    await carol_in.get(presence_of(carol, "available", f"{ALICE}/test"))
    await alice.plugin["xep_0191"].block([CAROL], timeout=10)
    await carol_in.get(presence_of(carol, "unavailable", f"{ALICE}/test"))

    # Logging out would send carol the directed presence's unavailable, were she not blocked;
    # alice's other resource hears of the logout in the same step.
    _, witness_in = await online(users, "alice", "witness")
    alice.abort()
    await witness_in.get(presence_of(carol, "unavailable", f"{ALICE}/test"))
    await sync(carol)
    assert carol_in.drain() == []


async def test_unblock_does_not_reveal_presence_without_subscription(users: Harness) -> None:
    alice, alice_in = await blocker(users, "alice")
    carol, carol_in = await online(users, "carol")
    await alice.plugin["xep_0191"].block([CAROL], timeout=10)
    await alice.plugin["xep_0191"].unblock([CAROL], timeout=10)
    await sync(alice, carol)
    assert not [p for p in carol_in.drain() if p["from"].bare == ALICE]
    assert not [p for p in alice_in.drain() if p["from"].bare == CAROL]


async def test_messages_across_a_block_are_refused(users: Harness) -> None:
    alice, alice_in = await blocker(users, "alice")
    bob, bob_in = await online(users, "bob")
    await alice.plugin["xep_0191"].block([BOB], timeout=10)

    alice.send_message(mto=BOB, mbody="you will not read this", mtype="chat")
    refused = await alice_in.get(lambda s: s.name == "message")
    assert refused["type"] == "error"
    assert refused["error"]["condition"] == "not-acceptable"
    assert refused.xml.find(".//{urn:xmpp:blocking:errors}blocked") is not None

    bob.send_message(mto=f"{ALICE}/test", mbody="nor this", mtype="chat")
    bounced = await bob_in.get(lambda s: s.name == "message")
    assert bounced["type"] == "error"
    assert bounced["error"]["condition"] == "service-unavailable"
    assert bounced.xml.find(".//{urn:xmpp:blocking:errors}blocked") is None

    await sync(alice, bob, alice)
    assert not [m for m in bob_in.drain() + alice_in.drain() if m.name == "message"]


async def test_blocking_a_domain_leaves_own_resources_alone(users: Harness) -> None:
    alice, alice_in = await blocker(users, "alice")
    other, _ = await online(users, "alice", "other")
    bob, bob_in = await online(users, "bob")
    await alice.plugin["xep_0191"].block([DOMAIN], timeout=10)

    bob.send_message(mto=ALICE, mbody="anyone home?", mtype="chat")
    bounced = await bob_in.get(lambda s: s.name == "message")
    assert bounced["error"]["condition"] == "service-unavailable"
    alice.send_message(mto=BOB, mbody="hello?", mtype="chat")
    refused = await alice_in.get(lambda s: s.name == "message")
    assert refused["error"]["condition"] == "not-acceptable"

    other.send_message(mto=f"{ALICE}/test", mbody="note to self", mtype="chat")
    assert (await alice_in.get(lambda s: s.name == "message"))["body"] == "note to self"


async def test_subscription_requests_across_a_block_are_dropped(users: Harness) -> None:
    alice, alice_in = await blocker(users, "alice")
    carol, carol_in = await online(users, "carol")
    await alice.plugin["xep_0191"].block([CAROL], timeout=10)

    carol.send_presence(pto=ALICE, ptype="subscribe")
    alice.send_presence(pto=CAROL, ptype="subscribe")
    await sync(carol, alice, carol)
    assert not [p for p in alice_in.drain() if p["from"].bare == CAROL]
    assert not [p for p in carol_in.drain() if p["from"].bare == ALICE]
    # Neither side changes, so the two rosters stay in step.
    assert ALICE not in await roster_of(carol)
    assert CAROL not in await roster_of(alice)

    # Dropped, not kept pending: alice is not asked at her next login either.
    again = await users.login("alice", resource="again")
    again_in = Inbox(again)
    again.send_presence()
    await again_in.get(presence_of(again, "available", f"{ALICE}/again"))
    await sync(again)
    assert not [p for p in again_in.drain() if p["type"] == "subscribe"]


async def test_a_block_outranks_the_everyone_policy(users: Harness) -> None:
    alice, alice_in = await blocker(users, "alice")
    carol, carol_in = await online(users, "carol")
    policy = alice.make_iq_set()
    policy.append(ET.Element("{urn:chorus:visibility:0}visibility", {"policy": "everyone"}))
    await policy.send(timeout=10)
    await alice.plugin["xep_0191"].block([CAROL], timeout=10)

    carol.send_presence(pto=ALICE, ptype="subscribe")
    await sync(carol, alice, carol)
    assert not [p for p in carol_in.drain() if p["from"].bare == ALICE]
    assert not [p for p in alice_in.drain() if p["from"].bare == CAROL]
    assert ALICE not in await roster_of(carol)


async def test_blocks_survive_a_restart(users: Harness) -> None:
    alice, _ = await blocker(users, "alice")
    await alice.plugin["xep_0191"].block([BOB, SPAM], timeout=10)
    await users.restart()

    # Enforced from the start, before alice even asks for her list.
    alice, _ = await online(users, "alice")
    bob, bob_in = await online(users, "bob")
    bob.send_message(mto=ALICE, mbody="after the restart", mtype="chat")
    bounced = await bob_in.get(lambda s: s.name == "message")
    assert bounced["error"]["condition"] == "service-unavailable"
    alice.register_plugin("xep_0191")
    assert await block_list(alice) == [BOB, SPAM]


async def test_disco_advertises_blocking(users: Harness) -> None:
    alice = await users.login("alice", plugins=("xep_0030",))
    info = await alice.plugin["xep_0030"].get_info(jid=DOMAIN, timeout=10)
    assert "urn:xmpp:blocking" in info["disco_info"]["features"]
