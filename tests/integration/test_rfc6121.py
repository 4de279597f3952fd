"""RFC 6121 with real clients: subscriptions, presence, rosters and messages between users."""

from __future__ import annotations

import pytest
from slixmpp.exceptions import IqError

from tests.integration.harness import (
    DOMAIN,
    Harness,
    Inbox,
    befriend,
    online,
    presence_of,
    roster_of,
    sync,
)

ALICE, BOB, CAROL = f"alice@{DOMAIN}", f"bob@{DOMAIN}", f"carol@{DOMAIN}"


@pytest.fixture
async def users(harness: Harness) -> Harness:
    for name in ("alice", "bob", "carol"):
        await harness.add_user(name)
    return harness


async def test_request_approval_and_presence_flow(users: Harness) -> None:
    alice, alice_in = await online(users, "alice")
    bob, bob_in = await online(users, "bob")
    alice.send_presence(pto=BOB, ptype="subscribe", pstatus="hello, it's alice")
    request = await bob_in.get(presence_of(bob, "subscribe", ALICE))
    assert str(request["from"]) == ALICE
    assert request["status"] == "hello, it's alice"
    assert (await roster_of(alice))[BOB]["ask"] == "subscribe"
    assert ALICE not in await roster_of(bob)

    bob.send_presence(pto=ALICE, ptype="subscribed")
    await alice_in.get(presence_of(alice, "subscribed", BOB))
    # Approval makes bob's presence visible to alice at once.
    await alice_in.get(presence_of(alice, "available", f"{BOB}/test"))
    assert (await roster_of(alice))[BOB] == {
        "subscription": "to",
        "ask": None,
        "approved": None,
        "name": None,
        "groups": [],
    }
    assert (await roster_of(bob))[ALICE]["subscription"] == "from"

    # Presence goes to subscribers only: alice sees bob's update, bob does not see alice's.
    bob.send_presence(pstatus="lunch")
    update = await alice_in.get(presence_of(alice, "available", f"{BOB}/test"))
    assert update["status"] == "lunch"
    alice.send_presence(pstatus="busy here")
    await sync(alice, bob)
    assert not [p for p in bob_in.drain() if p["from"].bare == ALICE]


async def test_pending_request_is_delivered_at_each_login(users: Harness) -> None:
    alice, _ = await online(users, "alice")
    alice.send_presence(pto=BOB, ptype="subscribe")
    await sync(alice)
    for resource in ("first", "second"):
        bob = await users.login("bob", resource=resource)
        bob.auto_authorize = None
        inbox = Inbox(bob)
        bob.send_presence()
        await inbox.get(presence_of(bob, "subscribe", ALICE))
        bob.abort()


async def test_pre_approval(users: Harness) -> None:
    alice, alice_in = await online(users, "alice")
    bob, bob_in = await online(users, "bob")
    bob.send_presence(pto=ALICE, ptype="subscribed")
    await sync(bob)
    assert (await roster_of(bob))[ALICE] == {
        "subscription": "none",
        "ask": None,
        "approved": "true",
        "name": None,
        "groups": [],
    }
    alice.send_presence(pto=BOB, ptype="subscribe")
    await alice_in.get(presence_of(alice, "subscribed", BOB))
    await sync(alice, bob)
    assert not [p for p in bob_in.drain() if p["type"] == "subscribe"]
    assert (await roster_of(alice))[BOB]["subscription"] == "to"
    assert (await roster_of(bob))[ALICE]["subscription"] == "from"
    assert (await roster_of(bob))[ALICE]["approved"] is None


async def test_three_resources_see_each_other_and_their_contacts(users: Harness) -> None:
    alice, alice_in = await online(users, "alice", "one")
    bob, bob_in = await online(users, "bob")
    await befriend(alice, alice_in, bob, bob_in)
    second, second_in = await online(users, "alice", "two")
    third, third_in = await online(users, "alice", "three")
    for jid in (f"{ALICE}/one", f"{ALICE}/two", f"{BOB}/test"):
        await third_in.get(presence_of(third, "available", jid))
    for jid in (f"{ALICE}/one", f"{BOB}/test"):
        await second_in.get(presence_of(second, "available", jid))
    for jid in (f"{ALICE}/two", f"{ALICE}/three"):
        await alice_in.get(presence_of(alice, "available", jid))
        await bob_in.get(presence_of(bob, "available", jid))
    third.abort()
    await bob_in.get(presence_of(bob, "unavailable", f"{ALICE}/three"))
    await alice_in.get(presence_of(alice, "unavailable", f"{ALICE}/three"))


async def test_no_presence_without_subscription(users: Harness) -> None:
    alice, alice_in = await online(users, "alice")
    carol, carol_in = await online(users, "carol")
    alice.send_presence(pstatus="not for carol")
    carol.send_presence(pto=ALICE, ptype="probe")
    await sync(alice, carol, alice)
    assert not [p for p in carol_in.drain() if p["from"].bare == ALICE]
    assert not [p for p in alice_in.drain() if p["from"].bare == CAROL]


async def test_directed_presence_and_its_unavailable(users: Harness) -> None:
    alice, _ = await online(users, "alice")
    carol, carol_in = await online(users, "carol")
    alice.send_presence(pto=CAROL, pstatus="just for you")
    directed = await carol_in.get(presence_of(carol, "available", f"{ALICE}/test"))
    assert directed["status"] == "just for you"
    alice.abort()
    await carol_in.get(presence_of(carol, "unavailable", f"{ALICE}/test"))


async def test_explicit_unavailable_reaches_contacts(users: Harness) -> None:
    alice, alice_in = await online(users, "alice")
    bob, bob_in = await online(users, "bob")
    await befriend(alice, alice_in, bob, bob_in)
    alice.send_presence(ptype="unavailable", pstatus="gone fishing")
    gone = await bob_in.get(presence_of(bob, "unavailable", f"{ALICE}/test"))
    assert gone["status"] == "gone fishing"


async def test_roster_versioning_and_pushes(users: Harness) -> None:
    alice, _ = await online(users, "alice")
    pushes = Inbox(alice, "roster_update")
    first = await alice.make_iq_get(queryxmlns="jabber:iq:roster").send(timeout=10)
    version = first.xml.find("{jabber:iq:roster}query").get("ver")
    assert version is not None

    current = alice.make_iq_get(queryxmlns="jabber:iq:roster")
    current["roster"]["ver"] = version
    unchanged = await current.send(timeout=10)
    assert unchanged.xml.find("{jabber:iq:roster}query") is None

    alice.update_roster(CAROL, name="Carol", groups=["Friends", "Work"])
    push = await pushes.get()
    new_version = push.xml.find("{jabber:iq:roster}query").get("ver")
    assert new_version != version
    item = (await roster_of(alice))[CAROL]
    assert item["name"] == "Carol" and item["groups"] == ["Friends", "Work"]

    stale = alice.make_iq_get(queryxmlns="jabber:iq:roster")
    stale["roster"]["ver"] = version
    full = await stale.send(timeout=10)
    assert full.xml.find("{jabber:iq:roster}query").get("ver") == new_version


@pytest.mark.parametrize(
    "items,condition",
    [
        (f"<item jid='{BOB}'/><item jid='{CAROL}'/>", "bad-request"),
        (f"<item jid='{BOB}' subscription='maybe'/>", "bad-request"),
        (f"<item jid='{BOB}' name='{'n' * 2000}'/>", "not-acceptable"),
        (f"<item jid='{BOB}'><group></group></item>", "not-acceptable"),
        ("<item jid='not a jid@@'/>", "jid-malformed"),
    ],
)
async def test_roster_set_errors(users: Harness, items: str, condition: str) -> None:
    alice = await users.login("alice")
    iq = alice.make_iq_set()
    iq.append(_xml(f"<query xmlns='jabber:iq:roster'>{items}</query>"))
    with pytest.raises(IqError) as caught:
        await iq.send(timeout=10)
    assert caught.value.condition == condition


async def test_someone_elses_roster_is_forbidden(users: Harness) -> None:
    alice = await users.login("alice")
    iq = alice.make_iq_get(queryxmlns="jabber:iq:roster", ito=BOB)
    with pytest.raises(IqError) as caught:
        await iq.send(timeout=10)
    assert caught.value.condition == "forbidden"


async def test_roster_remove_cancels_both_ways(users: Harness) -> None:
    alice, alice_in = await online(users, "alice")
    bob, bob_in = await online(users, "bob")
    await befriend(alice, alice_in, bob, bob_in)
    alice.del_roster_item(BOB)
    await bob_in.get(presence_of(bob, "unsubscribe", ALICE))
    await bob_in.get(presence_of(bob, "unsubscribed", ALICE))
    await bob_in.get(presence_of(bob, "unavailable", f"{ALICE}/test"))
    await sync(alice, bob)
    assert BOB not in await roster_of(alice)
    assert (await roster_of(bob))[ALICE]["subscription"] == "none"


async def test_messages_to_bare_jid_follow_priority(users: Harness) -> None:
    low, low_in = await online(users, "alice", "low", priority=1)
    _high, high_in = await online(users, "alice", "high", priority=5)
    hidden, hidden_in = await online(users, "alice", "hidden", priority=-1)
    bob, _ = await online(users, "bob")
    is_message = lambda s: s.name == "message"  # noqa: E731

    bob.send_message(mto=ALICE, mbody="normal one", mtype="normal")
    assert (await high_in.get(is_message))["body"] == "normal one"
    bob.send_message(mto=ALICE, mbody="chat one", mtype="chat")
    assert (await high_in.get(is_message))["body"] == "chat one"
    assert (await low_in.get(is_message))["body"] == "chat one"
    bob.send_message(mto=f"{ALICE}/hidden", mbody="direct", mtype="chat")
    assert (await hidden_in.get(is_message))["body"] == "direct"
    await sync(bob, low, hidden)
    assert not [m for m in low_in.drain() if m.name == "message"]
    assert not [m for m in hidden_in.drain() if m.name == "message"]


async def test_message_to_user_not_logged_in_bounces(users: Harness) -> None:
    # Only someone who may see alice's presence is told she is not logged in.
    alice, alice_in = await online(users, "alice")
    bob, bob_in = await online(users, "bob")
    await befriend(alice, alice_in, bob, bob_in)
    alice.disconnect()
    await bob_in.get(lambda s: s.name == "presence" and s["type"] == "unavailable")
    bob.send_message(mto=ALICE, mbody="are you there?", mtype="chat")
    error = await bob_in.get(lambda s: s.name == "message")
    assert error["type"] == "error"
    assert error["error"]["condition"] == "service-unavailable"
    assert str(error["from"]) == ALICE


@pytest.mark.server_config(messages={"offline": "store"})
async def test_offline_store_delivers_at_next_login(users: Harness) -> None:
    bob, bob_in = await online(users, "bob")
    bob.send_message(mto=ALICE, mbody="read me later", mtype="chat")
    await sync(bob)
    assert not [m for m in bob_in.drain() if m.name == "message"]
    alice = await users.login("alice")
    inbox = Inbox(alice)
    alice.send_presence()
    message = await inbox.get(lambda s: s.name == "message")
    assert message["body"] == "read me later"
    delay = message.xml.find("{urn:xmpp:delay}delay")
    assert delay is not None and delay.get("stamp").endswith("Z")


async def test_restart_keeps_subscriptions_and_pending_requests(users: Harness) -> None:
    alice, alice_in = await online(users, "alice")
    bob, bob_in = await online(users, "bob")
    await befriend(alice, alice_in, bob, bob_in)
    carol, _ = await online(users, "carol")
    carol.send_presence(pto=ALICE, ptype="subscribe")
    await sync(carol)
    await users.restart()
    assert users.ctx.sessions.all() == []

    alice = await users.login("alice")
    inbox = Inbox(alice)
    roster = await roster_of(alice)
    assert roster[BOB]["subscription"] == "both"
    alice.send_presence()
    await inbox.get(presence_of(alice, "subscribe", CAROL))


async def test_subscription_to_unknown_user_is_refused(users: Harness) -> None:
    alice, alice_in = await online(users, "alice")
    alice.send_presence(pto=f"nobody@{DOMAIN}", ptype="subscribe")
    await alice_in.get(presence_of(alice, "unsubscribed", f"nobody@{DOMAIN}"))
    assert (await roster_of(alice))[f"nobody@{DOMAIN}"]["ask"] is None


def _xml(text: str):
    from slixmpp.xmlstream import ET

    return ET.fromstring(text)


async def test_stream_features_after_login(users: Harness) -> None:
    alice = await users.login("alice")
    assert {"rosterver", "preapproval", "bind"} <= alice.features
