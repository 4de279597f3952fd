"""Logging in with real clients: STARTTLS, every SASL mechanism, binding, failures."""

from __future__ import annotations

import asyncio
import base64

import pytest

from chorus_presence.xmpp.jid import JID
from chorus_presence.xmpp.namespaces import SASL
from tests.integration.harness import DOMAIN, PASSWORD, Harness


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"])
async def test_login_over_starttls(harness: Harness, mechanism: str) -> None:
    await harness.add_user("alice")
    client = await harness.login("alice", mechanism=mechanism, resource="laptop")
    assert client.transport.get_extra_info("ssl_object") is not None
    assert str(client.boundjid) == f"alice@{DOMAIN}/laptop"
    assert harness.ctx.sessions.get(JID.parse(str(client.boundjid))) is not None


async def test_scram_sha_256_is_preferred(harness: Harness) -> None:
    await harness.add_user("alice")
    client = harness.make_client("alice")
    chosen: list[str] = []
    client.add_event_handler(
        "auth_success", lambda _: chosen.append(client.plugin["feature_mechanisms"].mech.name)
    )
    assert await harness.connect(client) == "session_start"
    assert chosen == ["SCRAM-SHA-256"]


@pytest.mark.parametrize("user,password", [("alice", "wrong password"), ("nobody", PASSWORD)])
async def test_wrong_password_and_unknown_user_fail_alike(
    harness: Harness, user: str, password: str
) -> None:
    await harness.add_user("alice")
    client = harness.make_client(user, password)
    assert await harness.connect(client) == "failed_auth"
    assert harness.ctx.sessions.all() == []


async def test_unknown_user_gets_a_stable_fake_salt(harness: Harness) -> None:
    """The SCRAM challenge for a missing account looks like one for a real account."""
    salts = []
    # From two addresses: a probe abandoned after the salt counts as a failure, and the
    # second from the same address would wait out the back-off.
    for source in ("127.0.0.2", "127.0.0.3"):
        raw = await harness.raw(source=source)
        raw.open_stream()
        await raw.expect(b"</stream:features>")
        await _starttls(harness, raw)
        first = base64.b64encode(b"n,,n=ghost,r=abcdefgh").decode()
        raw.send(f"<auth xmlns='{SASL}' mechanism='SCRAM-SHA-256'>{first}</auth>")
        match = await raw.expect(rb"<challenge[^>]*>([^<]+)</challenge>")
        fields = dict(part.split("=", 1) for part in base64.b64decode(match[1]).decode().split(","))
        assert fields["i"] == "4096"
        salts.append(fields["s"])
        raw.close()
    assert salts[0] == salts[1]


async def _starttls(harness: Harness, raw) -> None:
    raw.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
    await raw.expect(b"<proceed")
    await raw.writer.start_tls(harness.client_ssl_context(), server_hostname=DOMAIN)
    raw.received = b""
    raw.open_stream()
    await raw.expect(b"</stream:features>")


async def test_failed_attempts_are_capped_per_stream(harness: Harness) -> None:
    raw = await harness.raw()
    raw.open_stream()
    await raw.expect(b"</stream:features>")
    await _starttls(harness, raw)
    bad = base64.b64encode(b"\0alice\0nope").decode()
    for _ in range(3):
        raw.send(f"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{bad}</auth>")
    data = await raw.expect_stream_error("not-authorized")
    assert data.count(b"<failure") == 3


async def test_plain_is_not_offered_before_tls(harness: Harness) -> None:
    raw = await harness.raw()
    raw.open_stream()
    features = (await raw.expect(b"<stream:features.*</stream:features>"))[0]
    assert b"<required/>" in features
    assert b"mechanisms" not in features
    plain = base64.b64encode(f"\0alice\0{PASSWORD}".encode()).decode()
    raw.send(f"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{plain}</auth>")
    await raw.expect(b"<encryption-required/>")


@pytest.mark.server_config(tls={"required": False})
async def test_plaintext_plain_when_tls_is_not_required(harness: Harness) -> None:
    await harness.add_user("alice")
    raw = await harness.raw()
    raw.open_stream()
    features = (await raw.expect(b"<stream:features.*</stream:features>"))[0]
    assert b"<mechanism>PLAIN</mechanism>" in features
    plain = base64.b64encode(f"\0alice\0{PASSWORD}".encode()).decode()
    raw.send(f"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{plain}</auth>")
    await raw.expect(b"<success")
    raw.open_stream()
    await raw.expect(b"<bind xmlns=.urn:ietf:params:xml:ns:xmpp-bind.")
    raw.send("<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>")
    match = await raw.expect(rb"<jid>alice@chorus\.test/([^<]+)</jid>")
    assert match[1]


async def test_second_session_with_same_resource_replaces_the_first(harness: Harness) -> None:
    await harness.add_user("alice")
    first = await harness.login("alice", resource="phone")
    ended = asyncio.get_running_loop().create_future()
    first.add_event_handler("stream_error", lambda error: ended.set_result(error["condition"]))
    await harness.login("alice", resource="phone")
    assert await asyncio.wait_for(ended, 10) == "conflict"
    online = harness.ctx.sessions.of_account(JID.parse(f"alice@{DOMAIN}"))
    assert [str(session.jid) for session in online] == [f"alice@{DOMAIN}/phone"]
