"""Ping, version, disco, in-band registration and the IQ rules of RFC 6120 section 8.2.3."""

from __future__ import annotations

import pytest
from slixmpp.exceptions import IqError

from tests.integration.harness import DOMAIN, PASSWORD, Harness, raw_login, wait_first


async def test_ping_version_and_disco(harness: Harness) -> None:
    await harness.add_user("alice")
    client = await harness.login("alice", plugins=("xep_0030", "xep_0092", "xep_0199"))
    rtt = await client.plugin["xep_0199"].ping(DOMAIN, timeout=10)
    assert rtt >= 0
    version = await client.plugin["xep_0092"].get_version(DOMAIN, timeout=10)
    assert version["software_version"]["name"] == "chorus-presence"
    info = await client.plugin["xep_0030"].get_info(DOMAIN, timeout=10)
    features = set(info["disco_info"]["features"])
    assert {
        "http://jabber.org/protocol/disco#info",
        "http://jabber.org/protocol/disco#items",
        "urn:xmpp:ping",
        "jabber:iq:version",
        "jabber:iq:register",
    } <= features
    assert ("server", "im", None, "chorus-presence") in info["disco_info"]["identities"]
    items = await client.plugin["xep_0030"].get_items(DOMAIN, timeout=10)
    assert items["disco_items"]["items"] == set()


async def test_unknown_iq_gets_service_unavailable(harness: Harness) -> None:
    await harness.add_user("alice")
    client = await harness.login("alice")
    iq = client.make_iq_get(queryxmlns="urn:example:nothing", ito=DOMAIN)
    with pytest.raises(IqError) as caught:
        await iq.send(timeout=10)
    assert caught.value.condition == "service-unavailable"


@pytest.mark.server_config(tls={"required": False})
@pytest.mark.parametrize(
    "iq,condition",
    [
        ("<iq type='get'><ping xmlns='urn:xmpp:ping'/></iq>", "bad-request"),
        ("<iq type='fetch' id='t1'><ping xmlns='urn:xmpp:ping'/></iq>", "bad-request"),
        ("<iq type='get' id='t2'/>", "bad-request"),
        ("<iq type='get' id='t3'><a xmlns='urn:x'/><b xmlns='urn:x'/></iq>", "bad-request"),
        (
            "<iq type='get' id='t4' to='someone@elsewhere.example'>"
            "<ping xmlns='urn:xmpp:ping'/></iq>",
            "remote-server-not-found",
        ),
        (
            "<iq type='get' id='t5' to='bob@chorus.test/gone'><ping xmlns='urn:xmpp:ping'/></iq>",
            "service-unavailable",
        ),
    ],
)
async def test_malformed_iqs_get_stanza_errors(harness: Harness, iq: str, condition: str) -> None:
    await harness.add_user("alice")
    raw = await raw_login(harness, "alice")
    raw.send(iq)
    await raw.expect(f'type="error".*<{condition} xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/>')
    # An error is never answered with an error, and the stream goes on.
    raw.received = b""
    raw.send("<iq type='error' id='e1' to='chorus.test'><error type='cancel'/></iq>")
    raw.send("<iq type='get' id='after'><ping xmlns='urn:xmpp:ping'/></iq>")
    match = await raw.expect(b"<iq [^>]*>")
    assert b'id="after"' in match[0] and b'type="result"' in match[0]


@pytest.mark.server_config(registration={"open": True})
async def test_in_band_registration_when_open(harness: Harness) -> None:
    client = harness.make_client("newbie", plugins=("xep_0077",))
    client.plugin["feature_mechanisms"].unencrypted_plain = False
    registered = []

    async def register(_form) -> None:
        iq = client.make_iq_set()
        iq["register"]["username"] = "newbie"
        iq["register"]["password"] = PASSWORD
        await iq.send(timeout=10)
        registered.append(True)

    client.add_event_handler("register", register)
    assert await harness.connect(client) == "session_start"
    assert registered == [True]
    assert await harness.ctx.accounts.exists("newbie")

    await client.plugin["xep_0077"].change_password("a new password", timeout=10)
    again = await harness.login("newbie", "a new password", resource="second")
    assert again.boundjid.user == "newbie"


@pytest.mark.server_config(registration={"open": True})
async def test_registration_conflict_and_cancel(harness: Harness) -> None:
    await harness.add_user("alice")
    client = await harness.login("alice", plugins=("xep_0077",))
    ended = []
    client.add_event_handler("stream_error", lambda error: ended.append(error["condition"]))
    outcome = await wait_first(
        client,
        ("disconnected",),
        lambda: client.plugin["xep_0077"].cancel_registration(timeout=10),
    )
    assert outcome == "disconnected"
    assert ended == ["not-authorized"]
    assert not await harness.ctx.accounts.exists("alice")


async def test_registration_is_refused_when_closed(harness: Harness) -> None:
    raw = await harness.raw()
    raw.open_stream()
    features = (await raw.expect(b"<stream:features.*</stream:features>"))[0]
    assert b"iq-register" not in features
    raw.send("<iq type='get' id='r1'><query xmlns='jabber:iq:register'/></iq>")
    await raw.expect(b'id="r1".*<service-unavailable')


@pytest.mark.server_config(tls={"required": False})
async def test_registration_form_refused_when_closed(harness: Harness) -> None:
    raw = await harness.raw()
    raw.open_stream()
    await raw.expect(b"</stream:features>")
    raw.send(
        "<iq type='set' id='r2'><query xmlns='jabber:iq:register'>"
        "<username>mallory</username><password>secret</password></query></iq>"
    )
    await raw.expect(b"<service-unavailable")
    assert not await harness.ctx.accounts.exists("mallory")
