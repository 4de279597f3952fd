"""The slixmpp plugin bots use, against the real server."""

from __future__ import annotations

from chorus_presence.client.plugin import Device, Routing
from tests.integration.harness import DOMAIN, Harness, Inbox, presence_of, sync

ALICE, BOB = f"alice@{DOMAIN}", f"bob@{DOMAIN}"


async def bot(harness: Harness, user: str):
    client = harness.make_client(user)
    client.register_plugin("chorus", module="chorus_presence.client.plugin")
    client.auto_authorize = None
    client.auto_subscribe = False
    assert await harness.connect(client) == "session_start"
    inbox = Inbox(client)
    client.send_presence()
    await inbox.get(presence_of(client, "available", f"{user}@{DOMAIN}/test"))
    return client, inbox


async def test_bot_answers_requests_and_sets_states(harness: Harness) -> None:
    await harness.add_user("alice")
    await harness.add_user("bob")
    alice, _ = await bot(harness, "alice")
    bob, bob_in = await bot(harness, "bob")
    chorus = alice.plugin["chorus"]

    bob.send_presence(pto=ALICE, ptype="subscribe", pstatus="let me see")
    await sync(bob, alice)
    pending = await chorus.pending()
    assert [(r.jid, r.status) for r in pending] == [(BOB, "let me see")]
    await chorus.accept(BOB)
    await bob_in.get(presence_of(bob, "available", f"{ALICE}/test"))
    assert (await chorus.visibility()).allowed == [BOB]

    chorus.send_state("in-meeting")
    seen = await bob_in.get(lambda p: bob.plugin["chorus"].state_of(p) == "in-meeting")
    assert seen["status"] == "In a meeting"

    assert (await chorus.set_policy("nobody")).policy == "nobody"
    assert (await chorus.set_away_when_offline(True)).away_when_offline is True
    await chorus.block(BOB)
    assert (await chorus.visibility()).blocked == [BOB]
    await chorus.allow(BOB)
    assert (await chorus.visibility()).blocked == []


async def test_bot_configures_and_asks_routing(harness: Harness) -> None:
    await harness.add_user("alice")
    alice, _ = await bot(harness, "alice")
    chorus = alice.plugin["chorus"]
    routing = Routing(
        enabled=True,
        default="Desk",
        devices=[Device("Desk", "desk-phone"), Device("Voicemail", "voicemail")],
        mapping={"dnd": "Voicemail"},
    )
    await chorus.set_routing(routing)
    assert await chorus.routing() == routing
    assert (await chorus.route()).device == Device("Desk", "desk-phone")
    chorus.send_state("dnd")
    await sync(alice)
    answer = await chorus.route(ALICE)
    assert (answer.state, answer.device) == ("dnd", Device("Voicemail", "voicemail"))
