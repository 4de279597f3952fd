"""No ghosts: a user whose connection dies stops being shown online, whatever way it dies.

Small timeouts come from the test config; every wait is for an event."""

from __future__ import annotations

import asyncio
import re
import socket

import pytest

from tests.integration.harness import (
    DOMAIN,
    Harness,
    Inbox,
    link,
    presence_of,
    raw_login,
    sync,
)

ALICE, BOB, CAROL = f"alice@{DOMAIN}", f"bob@{DOMAIN}", f"carol@{DOMAIN}"
SM = "urn:xmpp:sm:3"
PLAINTEXT = {"tls": {"required": False}}


@pytest.fixture
async def users(harness: Harness) -> Harness:
    for name in ("alice", "bob", "carol"):
        await harness.add_user(name)
    await link(harness, "alice", "bob")
    await link(harness, "bob", "carol")
    await link(harness, "alice", "carol")
    return harness


async def watcher(harness: Harness, user: str):
    client = await harness.login(user)
    inbox = Inbox(client)
    client.send_presence()
    await inbox.get(presence_of(client, "available", f"{user}@{DOMAIN}/test"))
    return client, inbox


async def raw_available(harness: Harness, user: str):
    raw = await raw_login(harness, user)
    raw.send("<presence/>")
    await raw.expect(rf"<presence[^>]*from=\"{user}@{DOMAIN}/")
    jid = re.search(rb"from=\"([^\"]+)\"", raw.received)[1].decode()
    return raw, jid


@pytest.mark.server_config(**PLAINTEXT)
async def test_abrupt_close_is_seen_at_once(users: Harness) -> None:
    bob, bob_in = await watcher(users, "bob")
    raw, jid = await raw_available(users, "alice")
    await bob_in.get(presence_of(bob, "available", jid))
    raw.writer.transport.abort()
    await bob_in.get(presence_of(bob, "unavailable", jid))


@pytest.mark.server_config(**PLAINTEXT, liveness={"ping_after": 0.3, "ping_timeout": 0.3})
async def test_silent_client_is_pinged_then_ended(users: Harness) -> None:
    bob, bob_in = await watcher(users, "bob")
    raw, jid = await raw_available(users, "alice")
    await bob_in.get(presence_of(bob, "available", jid))
    # alice's machine goes silent: the socket stays open but nothing comes from it.
    await raw.expect(rb"<ping xmlns=\"urn:xmpp:ping\"/>")
    await bob_in.get(presence_of(bob, "unavailable", jid))
    await raw.expect_stream_error("connection-timeout")


@pytest.mark.server_config(**PLAINTEXT, liveness={"ping_after": 0.3, "ping_timeout": 0.3})
async def test_a_client_that_answers_pings_stays(users: Harness) -> None:
    bob, bob_in = await watcher(users, "bob")
    raw, jid = await raw_available(users, "alice")
    await bob_in.get(presence_of(bob, "available", jid))
    for _ in range(3):
        match = await raw.expect(rb"<iq [^>]*id=\"(chorus-ping-\d+)\"[^>]*>")
        raw.received = raw.received[match.end() :]
        raw.send(f"<iq type='result' id='{match[1].decode()}' to='{DOMAIN}'/>")
    assert users.ctx.presence.available(users.ctx.sessions.all()[0].jid.bare)


@pytest.mark.server_config(
    **PLAINTEXT,
    liveness={"send_buffer": 65536},
    # The flooder must not be slowed by its own inbound rate limit here.
    limits={"bytes_per_second": 2**30, "burst_bytes": 2**30},
)
async def test_a_client_that_stops_reading_is_dropped(users: Harness) -> None:
    carol, carol_in = await watcher(users, "carol")
    bob, _bob_in = await watcher(users, "bob")
    raw, jid = await raw_available(users, "alice")
    await carol_in.get(presence_of(carol, "available", jid))
    raw.writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    # alice stops reading; bob floods her with messages until the server lets her go.
    body = "x" * 8000

    async def flood() -> None:
        for _ in range(3000):
            bob.send_message(mto=ALICE, mbody=body, mtype="chat")
            await asyncio.sleep(0)

    flooding = asyncio.create_task(flood())
    try:
        await carol_in.get(presence_of(carol, "unavailable", jid))
    finally:
        flooding.cancel()
    # The flooder's other contacts are unaffected.
    bob.send_presence(pstatus="still here")
    seen = await carol_in.get(lambda p: p["status"] == "still here")
    assert seen["from"].bare == BOB


async def sm_login(harness: Harness, user: str):
    raw, jid = await raw_available(harness, user)
    raw.received = b""
    raw.send(f"<enable xmlns='{SM}' resume='true'/>")
    enabled = await raw.expect(rb"<enabled [^>]*id='([^']+)'")
    return raw, jid, enabled[1].decode()


@pytest.mark.server_config(**PLAINTEXT, liveness={"resume_grace": 0.3})
async def test_stream_management_ack_and_resume(users: Harness) -> None:
    bob, bob_in = await watcher(users, "bob")
    raw, jid, sm_id = await sm_login(users, "alice")
    await bob_in.get(presence_of(bob, "available", jid))
    raw.send(f"<presence><status>one</status></presence><r xmlns='{SM}'/>")
    await raw.expect(rf"<a xmlns='{SM}' h='1'/>")
    bob.send_message(mto=jid, mbody="while you were away", mtype="chat")
    await raw.expect(b"while you were away")
    raw.writer.transport.abort()
    # Contacts see no ghost while the session may still resume.
    await bob_in.get(presence_of(bob, "unavailable", jid))
    bob.send_message(mto=jid, mbody="queued for you", mtype="chat")
    await sync(bob)

    again = await raw_login(users, "alice", bind=False)
    again.send(f"<resume xmlns='{SM}' previd='{sm_id}' h='0'/>")
    await again.expect(rf"<resumed xmlns='{SM}' h='1' previd='{sm_id}'/>")
    # Unacknowledged stanzas are sent again, and contacts see alice back.
    await again.expect(b"while you were away.*queued for you")
    back = await bob_in.get(presence_of(bob, "available", jid))
    assert back["status"] == "one"


@pytest.mark.server_config(**PLAINTEXT, liveness={"resume_grace": 5, "resume_timeout": 0.3})
async def test_resume_after_timeout_fails(users: Harness) -> None:
    bob, bob_in = await watcher(users, "bob")
    raw, jid, sm_id = await sm_login(users, "alice")
    await bob_in.get(presence_of(bob, "available", jid))
    raw.writer.transport.abort()
    await bob_in.get(presence_of(bob, "unavailable", jid))
    again = await raw_login(users, "alice", bind=False)
    again.send(f"<resume xmlns='{SM}' previd='{sm_id}' h='0'/>")
    await again.expect(rf"<failed xmlns='{SM}'><item-not-found")


async def test_inactive_client_gets_presence_condensed(users: Harness) -> None:
    alice, _ = await watcher(users, "alice")
    bob, bob_in = await watcher(users, "bob")
    await bob_in.get(presence_of(bob, "available", f"{ALICE}/test"))
    bob_in.drain()
    bob.send_raw("<inactive xmlns='urn:xmpp:csi:0'/>")
    await sync(bob)
    for number in range(1, 11):
        alice.send_presence(pstatus=f"update {number}")
    # Had the updates gone out one by one, all ten would arrive before the message.
    alice.send_message(mto=BOB, mbody="look", mtype="chat")
    await bob_in.get(lambda s: s.name == "message")
    await bob_in.get(lambda p: p.name == "presence" and p["status"] == "update 10")
    await sync(alice, bob)
    assert not [p for p in bob_in.drain() if p.name == "presence"]
    # Back to active: updates flow one by one again.
    bob.send_raw("<active xmlns='urn:xmpp:csi:0'/>")
    await sync(bob)
    alice.send_presence(pstatus="live")
    await bob_in.get(lambda p: p["status"] == "live")


async def test_last_activity(users: Harness) -> None:
    await users.add_user("dave")
    alice, _ = await watcher(users, "alice")
    alice.send_presence(ptype="unavailable", pstatus="see you tomorrow")
    await sync(alice)
    bob = await users.login("bob", plugins=("xep_0012",))
    answer = await bob.plugin["xep_0012"].get_last_activity(ALICE, timeout=10)
    assert int(answer["last_activity"]["seconds"]) >= 0
    assert answer["last_activity"]["status"] == "see you tomorrow"
    _carol, _ = await watcher(users, "carol")
    online = await bob.plugin["xep_0012"].get_last_activity(CAROL, timeout=10)
    assert online["last_activity"]["seconds"] == 0
    dave = await users.login("dave", plugins=("xep_0012",))
    from slixmpp.exceptions import IqError

    with pytest.raises(IqError) as caught:
        await dave.plugin["xep_0012"].get_last_activity(ALICE, timeout=10)
    assert caught.value.condition == "forbidden"


async def test_last_activity_survives_a_restart(users: Harness) -> None:
    alice, _ = await watcher(users, "alice")
    alice.abort()
    bob, _bob_in = await watcher(users, "bob")
    await users.restart()
    bob = await users.login("bob", plugins=("xep_0012",))
    answer = await bob.plugin["xep_0012"].get_last_activity(ALICE, timeout=10)
    assert int(answer["last_activity"]["seconds"]) >= 0
