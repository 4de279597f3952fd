"""Hostile input over raw sockets, beyond the cases of `test_stream_errors.py`: bad bytes at every
stage of stream negotiation, bad addresses, spoofing, stanzas out of order, error loops, unknown
payloads, oversized content, and garbage in place of a TLS handshake.

Each test checks the exact stream or stanza error, then that the server still serves another
client from login to a ping round trip.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Awaitable, Callable

import pytest
from lxml import etree

from chorus_presence.xmpp.jid import JID, JIDError
from tests.integration.harness import (
    DOMAIN,
    Harness,
    RawClient,
    authenticate,
    bind,
    error_condition,
    features,
    link,
    ping,
    raw_session,
    stanzas,
    starttls,
    still_serving,
)

PLAINTEXT = {"tls": {"required": False}}
SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
STANZA_ERRORS = "urn:ietf:params:xml:ns:xmpp-stanzas"
HEADER_START = (
    "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'"
    f" to='{DOMAIN}"
)
HEADER_END = "' version='1.0'>"


@pytest.fixture
async def users(harness: Harness) -> Harness:
    for name in ("alice", "bob", "carol", "witness"):
        await harness.add_user(name)
    return harness


# Bad bytes at every negotiation stage

Stage = Callable[[Harness], Awaitable[RawClient]]


async def before_header(harness: Harness) -> RawClient:
    return await harness.raw()


async def inside_header(harness: Harness) -> RawClient:
    raw = await harness.raw()
    raw.send(HEADER_START)
    return raw


async def after_tls(harness: Harness) -> RawClient:
    raw = await harness.raw()
    await starttls(harness, raw)
    return raw


async def during_sasl(harness: Harness) -> RawClient:
    raw = await after_tls(harness)
    first = base64.b64encode(b"n,,n=alice,r=hostile-nonce").decode()
    raw.send(f"<auth xmlns='{SASL}' mechanism='SCRAM-SHA-256'>{first}</auth>")
    await raw.expect(b"</challenge>")
    raw.received = b""
    return raw


async def before_bind(harness: Harness) -> RawClient:
    raw = await after_tls(harness)
    await authenticate(raw, "alice")
    return raw


async def after_bind(harness: Harness) -> RawClient:
    raw, _jid = await raw_session(harness, "alice", tls=True)
    return raw


BAD_STANZA = {
    "malformed": b"<message><body>unclosed</message>",
    "invalid-utf8": b"<message><body>\xc3\x28</body></message>",
    "nul": b"<message><body>a\x00b</body></message>",
}
STAGES: dict[str, tuple[Stage, dict[str, tuple[bytes, str]]]] = {
    "before-header": (
        before_header,
        {
            "malformed": (b"hello <stream:stream>", "not-well-formed"),
            "invalid-utf8": (b"\xc3\x28<stream:stream>", "not-well-formed"),
            # A leading NUL is how UTF-16 and UTF-32 streams begin (RFC 6120 section 11.6).
            "nul": (b"\x00<\x00s", "unsupported-encoding"),
        },
    ),
    "inside-header": (
        inside_header,
        {
            "malformed": (b"' version=1.0>", "not-well-formed"),
            "invalid-utf8": (b"\xff" + HEADER_END.encode(), "not-well-formed"),
            "nul": (b"\x00" + HEADER_END.encode(), "not-well-formed"),
        },
    ),
    **{
        name: (stage, {bad: (payload, "not-well-formed") for bad, payload in BAD_STANZA.items()})
        for name, stage in (
            ("after-tls", after_tls),
            ("during-sasl", during_sasl),
            ("before-bind", before_bind),
            ("after-bind", after_bind),
        )
    },
}
MATRIX = [pytest.param(stage, bad, id=f"{stage}-{bad}") for stage in STAGES for bad in BAD_STANZA]


@pytest.mark.parametrize("stage,bad", MATRIX)
async def test_bad_bytes_at_every_stage_end_the_stream(
    users: Harness, stage: str, bad: str
) -> None:
    negotiate, payloads = STAGES[stage]
    payload, condition = payloads[bad]
    raw = await negotiate(users)
    raw.send(payload)
    data = await raw.expect_stream_error(condition)
    if stage in ("before-header", "inside-header"):
        # RFC 6120 section 4.9.1.2: the server opens its own stream before the error.
        assert data.startswith(b"<?xml version='1.0'?><stream:stream"), data
    # The failed stream left nothing behind: no session, and another client is served.
    assert users.ctx.sessions.all() == []
    await still_serving(users, tls=True)


# Addresses


INVALID_JIDS = [
    "@chorus.test",
    "alice@",
    "a@b@chorus.test",
    "alice@chorus.test/",
    "x" * 1024 + "@chorus.test",
    "al ice@chorus.test",
    "alice@chorus..test",
]
TO_STANZAS = {
    "message": "<message id='{id}' to='{to}' type='chat'><body>hi</body></message>",
    "presence": "<presence id='{id}' to='{to}'/>",
    "subscribe": "<presence id='{id}' to='{to}' type='subscribe'/>",
    "iq": "<iq id='{id}' to='{to}' type='get'><ping xmlns='urn:xmpp:ping'/></iq>",
}


@pytest.mark.server_config(**PLAINTEXT)
@pytest.mark.parametrize("kind", list(TO_STANZAS))
async def test_invalid_to_gets_jid_malformed_and_the_stream_goes_on(
    users: Harness, kind: str
) -> None:
    raw, _jid = await raw_session(users, "alice")
    for number, to in enumerate(INVALID_JIDS):
        raw.send(TO_STANZAS[kind].format(id=f"bad{number}", to=to))
    await ping(raw)
    replies = {s.get("id"): s for s in stanzas(raw.received, TO_STANZAS[kind].split()[0][1:])}
    for number in range(len(INVALID_JIDS)):
        reply = replies.get(f"bad{number}")
        assert reply is not None, f"no answer to {INVALID_JIDS[number]!r}: {raw.received!r}"
        assert reply.get("type") == "error"
        assert error_condition(reply) == ("modify", "jid-malformed")
    await still_serving(users)


@pytest.mark.server_config(**PLAINTEXT)
async def test_an_error_never_carries_the_malformed_address(users: Harness) -> None:
    raw, _jid = await raw_session(users, "alice")
    for number, to in enumerate(INVALID_JIDS):
        raw.send(TO_STANZAS["message"].format(id=f"bad{number}", to=to))
    await ping(raw)
    for reply in stanzas(raw.received, "message"):
        sender = reply.get("from")
        if sender is not None:
            try:
                JID.parse(sender)
            except JIDError:
                pytest.fail(f"error stanza from a malformed JID: {sender!r}")


@pytest.mark.server_config(**PLAINTEXT)
async def test_a_spoofed_from_is_stamped_over(users: Harness) -> None:
    await link(users, "alice", "carol")
    carol, carol_jid = await raw_session(users, "carol", "phone")
    carol.send("<presence/>")
    await ping(carol, "carol-ready")
    alice, alice_jid = await raw_session(users, "alice", "laptop")
    carol.received = b""
    forged = ("bob@chorus.test/forged", DOMAIN, carol_jid, "nobody@elsewhere.example")
    for number, sender in enumerate(forged):
        alice.send(
            f"<message from='{sender}' to='{carol_jid}' id='m{number}' type='chat'>"
            f"<body>{number}</body></message>"
        )
    alice.send(
        f"<iq from='bob@chorus.test/x' to='{carol_jid}' type='get' id='q1'>"
        "<ping xmlns='urn:xmpp:ping'/></iq>"
    )
    alice.send("<presence from='bob@chorus.test/forged'><status>forged</status></presence>")
    await ping(alice)
    await carol.expect(rb"forged</status>")
    received = stanzas(carol.received, "message") + stanzas(carol.received, "iq")
    received += stanzas(carol.received, "presence")
    assert len(received) == len(forged) + 2, carol.received
    assert {s.get("from") for s in received} == {alice_jid}
    await still_serving(users)


# Order


@pytest.mark.server_config(**PLAINTEXT)
async def test_stanzas_before_binding_are_refused_and_binding_still_works(
    users: Harness,
) -> None:
    raw = await users.raw()
    await features(raw)
    await authenticate(raw, "alice")
    raw.send("<presence id='p1'/>")
    raw.send("<iq type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>")
    raw.send("<iq type='set' id='b1'><bind xmlns='urn:xmpp:unknown-bind'/></iq>")
    # Answers to nothing: never answered.
    raw.send("<iq type='result' id='x1'/>")
    await raw.expect(rb'<iq [^>]*id="b1".*?</iq>')
    for kind, stanza_id in (("presence", "p1"), ("iq", "r1"), ("iq", "b1")):
        [reply] = [s for s in stanzas(raw.received, kind) if s.get("id") == stanza_id]
        assert error_condition(reply) == ("auth", "not-authorized")
    assert b'id="x1"' not in raw.received
    assert users.ctx.sessions.all() == []
    jid = await bind(raw, "late")
    assert jid == f"alice@{DOMAIN}/late"
    await ping(raw)
    await still_serving(users)


@pytest.mark.server_config(**PLAINTEXT)
async def test_an_error_is_never_answered_with_an_error(users: Harness) -> None:
    await link(users, "alice", "bob")
    raw, _jid = await raw_session(users, "alice")
    error = f"<error type='cancel'><item-not-found xmlns='{STANZA_ERRORS}'/></error>"
    raw.send(f"<message type='error' id='e1' to='nobody@{DOMAIN}'>{error}</message>")
    raw.send(f"<message type='error' id='e2' to='bob@{DOMAIN}'>{error}</message>")
    raw.send(f"<message type='error' id='e3' to='bob@{DOMAIN}/gone'>{error}</message>")
    raw.send(f"<iq type='error' id='e4' to='{DOMAIN}'>{error}</iq>")
    raw.send(f"<iq type='error' id='e5' to='bob@{DOMAIN}/gone'>{error}</iq>")
    raw.send(f"<iq type='error' id='e6'>{error}</iq>")
    raw.send(f"<presence type='error' id='e7' to='bob@{DOMAIN}'>{error}</presence>")
    # Errors whose answer would be an error of its own: a bad address, an unknown payload.
    raw.send(f"<presence type='error' id='e8' to='@@'>{error}</presence>")
    raw.send(f"<message type='error' id='e9' to='elsewhere.example'>{error}</message>")
    raw.send("<iq type='error' id='e10'><unknown xmlns='urn:example:unknown'/></iq>")
    raw.send("<iq type='error' id='e11'/>")
    await ping(raw)
    # In order: the ping's answer is the first and only thing to come back.
    assert re.fullmatch(rb"<iq [^>]*/>", raw.received), raw.received
    await still_serving(users)


@pytest.mark.server_config(**PLAINTEXT)
async def test_an_iq_without_an_id_gets_bad_request(users: Harness) -> None:
    raw, _jid = await raw_session(users, "alice")
    raw.send("<iq type='get'><ping xmlns='urn:xmpp:ping'/></iq>")
    raw.send("<iq type='set' id=''><query xmlns='jabber:iq:roster'/></iq>")
    await ping(raw)
    replies = stanzas(raw.received, "iq")
    assert len(replies) == 3, raw.received
    for reply in replies[:2]:
        assert reply.get("type") == "error"
        assert error_condition(reply) == ("modify", "bad-request")
    await still_serving(users)


# Unknown namespaces and elements


@pytest.mark.server_config(**PLAINTEXT)
async def test_an_unknown_child_of_a_message_is_delivered_untouched(users: Harness) -> None:
    bob, bob_jid = await raw_session(users, "bob")
    bob.send("<presence/>")
    await ping(bob, "bob-ready")
    bob.received = b""
    alice, _jid = await raw_session(users, "alice")
    extension = (
        "<x xmlns='urn:example:unknown' a='1' b='&lt;&amp;&gt;'>"
        "<y>text &amp; more</y><z:q xmlns:z='urn:example:other' z:c='2'/>"
        "<![CDATA[raw <markup>]]><empty/></x>"
    )
    alice.send(
        f"<message to='{bob_jid}' id='u1' type='chat'><body>hi</body>{extension}"
        "<thread>t1</thread></message>"
    )
    await ping(alice)
    await bob.expect(b"</message>")
    [message] = stanzas(bob.received, "message")
    [delivered] = message.findall("{urn:example:unknown}x")
    sent = etree.fromstring(extension)
    assert _canonical(delivered) == _canonical(sent)
    assert message.findtext("{jabber:client}thread") == "t1"
    await still_serving(users)


def _canonical(node: etree._Element) -> bytes:
    return etree.tostring(node, method="c14n", exclusive=True)


@pytest.mark.server_config(**PLAINTEXT)
async def test_an_iq_with_an_unknown_payload_gets_service_unavailable(users: Harness) -> None:
    raw, _jid = await raw_session(users, "alice")
    payload = "<query xmlns='urn:example:unknown'><deep/></query>"
    targets = {"u1": DOMAIN, "u2": f"alice@{DOMAIN}", "u3": f"bob@{DOMAIN}", "u4": None}
    for stanza_id, to in targets.items():
        for iq_type in ("get", "set"):
            address = f" to='{to}'" if to else ""
            raw.send(f"<iq type='{iq_type}' id='{stanza_id}-{iq_type}'{address}>{payload}</iq>")
    await ping(raw)
    replies = {s.get("id"): s for s in stanzas(raw.received, "iq")}
    for stanza_id in targets:
        for iq_type in ("get", "set"):
            reply = replies[f"{stanza_id}-{iq_type}"]
            assert reply.get("type") == "error"
            assert error_condition(reply) == ("cancel", "service-unavailable")
    await still_serving(users)


@pytest.mark.server_config(**PLAINTEXT)
async def test_an_unknown_top_level_element_after_binding(users: Harness) -> None:
    raw, _jid = await raw_session(users, "alice")
    raw.send("<foo xmlns='urn:example:unknown'/>")
    await raw.expect_stream_error("unsupported-stanza-type")
    await still_serving(users)


# Oversized content


@pytest.mark.server_config(**PLAINTEXT)
async def test_a_roster_item_with_ten_thousand_groups(users: Harness) -> None:
    raw, _jid = await raw_session(users, "alice")
    groups = "".join(f"<group>g{number:05}</group>" for number in range(10_000))
    stanza = (
        "<iq type='set' id='huge'><query xmlns='jabber:iq:roster'>"
        f"<item jid='bob@{DOMAIN}'>{groups}</item></query></iq>"
    )
    # Under the stanza cap, so it is the roster service that refuses it, not the parser.
    assert len(stanza.encode()) < users.ctx.config.limits.max_stanza_bytes
    raw.send(stanza)
    await ping(raw)
    [reply] = [s for s in stanzas(raw.received, "iq") if s.get("id") == "huge"]
    assert error_condition(reply) == ("modify", "not-acceptable")
    raw.received = b""
    raw.send("<iq type='get' id='roster'><query xmlns='jabber:iq:roster'/></iq>")
    await ping(raw)
    [roster] = [s for s in stanzas(raw.received, "iq") if s.get("id") == "roster"]
    assert roster.get("type") == "result"
    assert roster.findall(".//{jabber:iq:roster}item") == []
    await still_serving(users)


@pytest.mark.server_config(**PLAINTEXT)
async def test_a_one_mebibyte_status_ends_the_stream(users: Harness) -> None:
    await link(users, "alice", "bob")
    bob, _bob_jid = await raw_session(users, "bob")
    bob.send("<presence/>")
    alice, alice_jid = await raw_session(users, "alice")
    alice.send("<presence/>")
    await bob.expect(rf"<presence [^>]*from=\"{alice_jid}\"")
    alice.send("<presence><status>" + "x" * 2**20 + "</status></presence>")
    await alice.expect_stream_error("policy-violation")
    # bob sees alice leave, and not a byte of the status.
    await bob.expect(
        rf"<presence [^>]*from=\"{alice_jid}\"[^>]*type=\"unavailable\"|"
        rf"<presence [^>]*type=\"unavailable\"[^>]*from=\"{alice_jid}\""
    )
    await ping(bob)
    assert b"xxxxxxxx" not in bob.received
    await still_serving(users)


# TLS


@pytest.mark.parametrize(
    "garbage",
    [
        b"GET / HTTP/1.1\r\nHost: chorus.test\r\n\r\n" + bytes(range(256)) * 4,
        # A TLS record header announcing a handshake, followed by nonsense.
        b"\x16\x03\x01\x00\x40" + b"\xee" * 64,
    ],
    ids=["http", "bogus-record"],
)
async def test_garbage_instead_of_a_tls_handshake(users: Harness, garbage: bytes) -> None:
    raw = await users.raw()
    await features(raw)
    raw.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
    await raw.expect(b"<proceed[^>]*/>")
    raw.received = b""
    raw.send(garbage)
    # Nothing can be said in the clear after <proceed/>: the connection just closes.
    assert await raw.read_to_close() == b""
    await still_serving(users, tls=True)
