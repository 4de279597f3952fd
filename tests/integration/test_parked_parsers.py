"""A quiet stream parks its XML parser (`xmpp/parser.py`, `server/connections.py`): what the
client sends afterwards is read exactly as before, in the namespaces its stream header
declared, each time it falls quiet again.

The server parks on a timer every few seconds; these tests ask for a round at once instead.
"""

from __future__ import annotations

import re

import pytest

from tests.integration.harness import Harness, RawClient, bind, plain_token, stanzas

PLAINTEXT = {"tls": {"required": False}}
SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
# A prefix the client declares on its stream header and uses in later stanzas only.
EXTRA = " xmlns:p='urn:xmpp:ping' xmlns:r='jabber:iq:roster'"


def park(harness: Harness) -> None:
    # The first round only finds that the client sent something since the last one.
    harness.ctx.streams.connections.park_quiet()
    harness.ctx.streams.connections.park_quiet()


async def login_declaring_prefixes(harness: Harness, username: str) -> tuple[RawClient, str]:
    """A raw session whose stream headers, before and after SASL, declare EXTRA."""
    raw = await harness.raw()
    raw.open_stream(extra=EXTRA)
    await raw.expect(b"</stream:features>")
    raw.send(f"<auth xmlns='{SASL}' mechanism='PLAIN'>{plain_token(username)}</auth>")
    await raw.expect(b"<success")
    raw.received = b""
    raw.open_stream(extra=EXTRA)
    await raw.expect(b"</stream:features>")
    raw.received = b""
    return raw, await bind(raw, "parked")


async def answer(raw: RawClient, stanza_id: str) -> str:
    """The IQ answering `stanza_id`, serialised; what came before it is dropped."""
    match = await raw.expect(
        rb"<iq [^>]*id=\"%s\"[^>]*/>|<iq [^>]*id=\"%s\".*?</iq>" % ((stanza_id.encode(),) * 2)
    )
    raw.received = raw.received[match.end() :]
    (iq,) = stanzas(match[0], "iq")
    return f"{iq.get('type')} {iq.get('to')} {len(iq)}"


@pytest.mark.server_config(**PLAINTEXT)
async def test_a_parked_stream_reads_stanzas_in_its_header_namespaces(harness: Harness) -> None:
    await harness.add_user("alice")
    raw, jid = await login_declaring_prefixes(harness, "alice")
    for round_number in range(3):
        park(harness)
        # Children named by prefixes only the stream header declares: the server must see
        # <ping xmlns='urn:xmpp:ping'/> and <query xmlns='jabber:iq:roster'/> in IQs of
        # jabber:client, after each new parser as before the first.
        raw.send(f"<iq type='get' id='ping{round_number}'><p:ping/></iq>")
        assert await answer(raw, f"ping{round_number}") == f"result {jid} 0"
        park(harness)
        raw.send(f"<iq type='get' id='roster{round_number}'><r:query/></iq>")
        assert await answer(raw, f"roster{round_number}") == f"result {jid} 1"


@pytest.mark.server_config(**PLAINTEXT)
async def test_a_stanza_split_across_a_parking_round_arrives_whole(harness: Harness) -> None:
    await harness.add_user("bob")
    raw, jid = await login_declaring_prefixes(harness, "bob")
    park(harness)
    raw.send("<iq type='get' id='split'><r:query")
    # Whether or not the server read the first half before the round, it must not park in
    # the middle of the element, and the stanza is whole once the rest arrives.
    park(harness)
    raw.send("/></iq>")
    assert await answer(raw, "split") == f"result {jid} 1"
    assert re.search(rb"<iq ", raw.received) is None
