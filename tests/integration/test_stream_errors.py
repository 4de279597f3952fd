"""RFC 6120 section 4.9 stream errors, provoked over raw sockets, and the stream's life cycle."""

from __future__ import annotations

import pytest

from tests.integration.harness import DOMAIN, Harness, raw_login

STREAM_OPEN = (
    "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'"
    f" to='{DOMAIN}' version='1.0'>"
)

BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
]>
<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'
 to='chorus.test' version='1.0'>&lol5;"""

XXE = (
    """<?xml version="1.0"?>
<!DOCTYPE stream [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>"""
    + STREAM_OPEN
    + "&xxe;"
)


@pytest.mark.parametrize(
    "payload,condition",
    [
        (BILLION_LAUGHS, "restricted-xml"),
        (XXE, "restricted-xml"),
        ("<!DOCTYPE stream>" + STREAM_OPEN, "restricted-xml"),
        (STREAM_OPEN + "<!-- a comment -->", "restricted-xml"),
        (STREAM_OPEN + "<?php echo 1; ?>", "restricted-xml"),
        (STREAM_OPEN + "<message>&custom;</message>", "restricted-xml"),
        (STREAM_OPEN + "<message><body></message>", "not-well-formed"),
        (STREAM_OPEN + "<message \x00/>", "not-well-formed"),
        (STREAM_OPEN.encode() + b"<message><body>\xff\xfe</body></message>", "not-well-formed"),
        (
            "<stream:stream xmlns='jabber:client' xmlns:stream='urn:wrong'"
            f" to='{DOMAIN}' version='1.0'>",
            "invalid-namespace",
        ),
        (
            "<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams'"
            f" to='{DOMAIN}' version='1.0'>",
            "invalid-namespace",
        ),
        (
            f"<stream xmlns='http://etherx.jabber.org/streams' to='{DOMAIN}' version='1.0'>",
            "bad-namespace-prefix",
        ),
        (STREAM_OPEN.replace(DOMAIN, "elsewhere.example"), "host-unknown"),
        (STREAM_OPEN.replace(f" to='{DOMAIN}'", ""), "improper-addressing"),
        (STREAM_OPEN.replace("version='1.0'", "version='2.0'"), "unsupported-version"),
        (STREAM_OPEN.replace(" version='1.0'", ""), "unsupported-version"),
        (STREAM_OPEN + "<message to='bob@chorus.test'><body>hi</body></message>", "not-authorized"),
        (STREAM_OPEN + "<presence/>", "not-authorized"),
        (
            STREAM_OPEN + "<iq type='get' id='1'><query xmlns='jabber:iq:roster'/></iq>",
            "not-authorized",
        ),
        (STREAM_OPEN + "<foo xmlns='urn:example:unknown'/>", "unsupported-stanza-type"),
        (STREAM_OPEN + "<message xmlns='jabber:server'/>", "invalid-namespace"),
        (STREAM_OPEN + "<message><body>" + "x" * 40000 + "</body></message>", "policy-violation"),
        (STREAM_OPEN + "<a>" * 10000, "policy-violation"),
        (
            STREAM_OPEN + "<message " + " ".join(f"a{i}='1'" for i in range(10000)) + "/>",
            "policy-violation",
        ),
    ],
    ids=lambda value: value if isinstance(value, str) and len(value) < 30 else None,
)
async def test_bad_input_ends_the_stream_with_the_right_error(
    harness: Harness, payload: str | bytes, condition: str
) -> None:
    raw = await harness.raw()
    raw.send(payload)
    data = await raw.expect_stream_error(condition)
    assert data.startswith(b"<?xml version='1.0'?><stream:stream")
    assert b"root:" not in data
    # The server keeps serving everyone else.
    other = await harness.raw()
    other.open_stream()
    await other.expect(b"</stream:features>")


async def test_whitespace_keepalives_and_closing_the_stream(harness: Harness) -> None:
    raw = await harness.raw()
    raw.open_stream()
    await raw.expect(b"</stream:features>")
    raw.send(" \n \t ")
    raw.send("</stream:stream>")
    data = await raw.read_to_close()
    assert data.endswith(b"</stream:stream>")
    assert b"stream:error" not in data


@pytest.mark.server_config(limits={"header_timeout": 0.3})
async def test_a_stream_that_never_sends_its_header_times_out(harness: Harness) -> None:
    raw = await harness.raw()
    await raw.expect_stream_error("connection-timeout")


@pytest.mark.server_config(limits={"auth_timeout": 0.5})
async def test_a_stream_that_never_authenticates_times_out(harness: Harness) -> None:
    raw = await harness.raw()
    raw.open_stream()
    await raw.expect(b"</stream:features>")
    raw.send(" ")
    await raw.expect_stream_error("connection-timeout")


@pytest.mark.server_config(tls={"required": False})
async def test_oversized_stanza_after_authentication(harness: Harness) -> None:
    await harness.add_user("alice")
    raw = await raw_login(harness, "alice")
    # Well within the post-authentication cap: answered normally.
    raw.send("<iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>")
    await raw.expect(b"id='p1'|id=\"p1\"")
    raw.send("<message to='alice@chorus.test'><body>" + "x" * 300_000 + "</body></message>")
    await raw.expect_stream_error("policy-violation")


@pytest.mark.server_config(tls={"required": False})
async def test_stanzas_before_binding_get_not_authorized(harness: Harness) -> None:
    await harness.add_user("alice")
    raw = await raw_login(harness, "alice", bind=False)
    raw.send("<message id='m1' to='bob@chorus.test'><body>hi</body></message>")
    await raw.expect(b'type="error".*<not-authorized')


@pytest.mark.server_config(tls={"required": False})
async def test_from_is_stamped_and_bad_to_is_refused(harness: Harness) -> None:
    await harness.add_user("alice")
    raw = await raw_login(harness, "alice")
    raw.send("<iq type='get' id='x1' to='not a jid@@'><ping xmlns='urn:xmpp:ping'/></iq>")
    await raw.expect(b'id="x1".*<jid-malformed')
