"""Stream hardening: fair turns and back-pressure for a client that floods while reading slowly,
no plaintext carried across STARTTLS (CVE-2011-0411), and the reserved `xml` and `xmlns`
namespace bindings refused as XML Namespaces requires.

Every assertion is about order or counts (which answer came before which, how many arrived);
every wait is for an event, bounded by a timeout.
"""

from __future__ import annotations

import asyncio
import re

import aiohttp
import pytest

from chorus_presence.core import topics
from chorus_presence.core.events import SessionEvent
from chorus_presence.services.rosters import QUERY
from tests.integration.harness import (
    DOMAIN,
    TIMEOUT,
    Harness,
    features,
    ping,
    plain_token,
    raw_session,
    still_serving,
)
from tests.integration.harness.hostile import (
    AnswerLog,
    SlowReader,
    WebSocketFlooder,
    big_roster,
    roster_gets,
)

PLAINTEXT = {"tls": {"required": False}}
SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
STARTTLS = "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"
HEADER = (
    "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'"
    f" to='{DOMAIN}' version='1.0'>"
)
ROSTER_SIZE = 2000
FLOOD = 200
# Large enough that a server without back-pressure keeps the flooder connected with all its
# answers queued, so what the test sees is the order in which clients were served.
NO_CAP = {"send_buffer": 2**26}


@pytest.fixture
async def users(harness: Harness) -> Harness:
    for name in ("alice", "flood", "bystander", "witness"):
        await harness.add_user(name)
    await big_roster(harness, "flood", ROSTER_SIZE)
    return harness


def all_answers(log: AnswerLog) -> bool:
    return log.results == FLOOD


# One client must not freeze the others


@pytest.mark.server_config(**PLAINTEXT, liveness=NO_CAP)
async def test_a_flooding_slow_reader_does_not_starve_other_connections(users: Harness) -> None:
    flooder, flood_jid = await raw_session(users, "flood")
    bystander, _jid = await raw_session(users, "bystander")
    # Warm the roster cache, so no storage read lets the server breathe during the flood.
    flooder.send("<iq type='get' id='warm'><query xmlns='jabber:iq:roster'/></iq>")
    await flooder.expect(rb'id="warm".*?</iq>')
    flooder.received = b""
    flooder.send(roster_gets(FLOOD))
    reader = SlowReader(flooder)
    await reader.until(lambda log: log.results >= 1)
    # The server is busy with the flood; the bystander asks for something of its own, and
    # sends the flooder a message that lands in the flooder's stream when it is handled.
    bystander.send(f"<message to='{flood_jid}' id='marker' type='chat'><body>here</body></message>")
    await ping(bystander)
    answered_at_pong = reader.log.results
    await reader.until(lambda log: log.results == FLOOD and ("message", "marker") in log.seen)
    assert answered_at_pong < FLOOD
    served_before_bystander = reader.log.results_before("message", "marker")
    assert served_before_bystander < FLOOD, (
        f"the bystander was served only after all {FLOOD} of the flooder's roster gets"
    )


@pytest.mark.server_config(**PLAINTEXT)
async def test_a_slow_reader_gets_every_answer_within_the_send_buffer(users: Harness) -> None:
    # 200 answers of 2,000 items are about 20 MB, twenty times the default send buffer cap:
    # only a server that stops reading the requests while the answers wait keeps this client.
    flooder, _jid = await raw_session(users, "flood")
    flooder.send(roster_gets(FLOOD))
    reader = SlowReader(flooder)
    await reader.until(all_answers, timeout=3 * TIMEOUT)
    await ping(flooder)
    await still_serving(users)


@pytest.mark.server_config(**PLAINTEXT, liveness={**NO_CAP, "ping_after": 1.0, "ping_timeout": 1.0})
async def test_a_flooder_that_never_reads_is_paused_then_dropped(users: Harness) -> None:
    handled: list[str] = []
    ended: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def count(request: object) -> None:
        # Above the roster IQ handler, and answering nothing, so it only counts.
        handled.append("get")

    def session_ended(event: SessionEvent) -> None:
        if event.session.jid.local == "flood" and not ended.done():
            ended.set_result(None)

    users.ctx.bus.on(topics.iq("get", "bare", QUERY), count, priority=10)
    users.ctx.bus.on(topics.SESSION_ENDED, session_ended)
    flooder, _jid = await raw_session(users, "flood")
    flooder.send(roster_gets(FLOOD))
    # The flooder reads nothing, ever; others are served meanwhile, and the liveness deadline
    # still ends its session.
    await still_serving(users)
    await asyncio.wait_for(ended, TIMEOUT)
    assert 0 < len(handled) < FLOOD, (
        f"{len(handled)} roster gets handled for a client that read none of the answers"
    )


@pytest.mark.server_config(web={"enabled": True, "port": 0})
async def test_a_websocket_flooder_is_paused_not_dropped(users: Harness) -> None:
    async with aiohttp.ClientSession() as http:
        flooder = await WebSocketFlooder.connect(users, http)
        await flooder.login("flood")
        # One message, as one big write: the server parses every request in it at once.
        await flooder.send(roster_gets(FLOOD).replace("<iq ", "<iq xmlns='jabber:client' "))
        await flooder.until(lambda log: log.results >= 1)
        # While the flooder reads nothing more, another client is served.
        await still_serving(users, tls=True)
        await flooder.until(all_answers, timeout=3 * TIMEOUT)


# STARTTLS: nothing sent in the clear survives the handshake


@pytest.mark.parametrize(
    "padding",
    [
        pytest.param("", id="same-read"),
        # More than one read's worth, with an inbound rate limit that makes the server pause
        # after its first read: the rest of the write reaches the connection's buffer while the
        # server has not yet seen the <starttls/> (a busy server does the same).
        pytest.param(
            " " * 70_000,
            id="beyond-the-first-read",
            marks=pytest.mark.server_config(
                limits={"burst_bytes": 16384, "bytes_per_second": 1_000_000}
            ),
        ),
    ],
)
async def test_plaintext_sent_after_starttls_is_discarded(users: Harness, padding: str) -> None:
    raw = await users.raw()
    await features(raw)
    injected = HEADER + f"<auth xmlns='{SASL}' mechanism='PLAIN'>{plain_token('alice')}</auth>"
    raw.send(STARTTLS + padding + injected)
    await raw.expect(b"<proceed[^>]*/>")
    raw.received = b""
    await raw.writer.start_tls(users.client_ssl_context(), server_hostname=DOMAIN)
    # Over TLS the server has seen nothing yet: the client's own header gets the features of
    # an unauthenticated stream, and only the client's own <auth/> gets an answer. (No XML
    # declaration: a stream restart may not have one after the start, which would end a stream
    # wrongly carried over before anything else could show.)
    raw.send(HEADER)
    await raw.expect(b"</stream:features>")
    assert re.search(rb"<mechanisms[ >]", raw.received), raw.received.decode()
    assert b"<bind" not in raw.received, raw.received.decode()
    assert b"<success" not in raw.received, raw.received.decode()
    raw.send(f"<auth xmlns='{SASL}' mechanism='PLAIN'>{plain_token('alice')}</auth>")
    await raw.expect(b"<success|</stream:stream>")
    assert raw.received.count(b"<success") == 1, raw.received.decode()
    assert b"<stream:error" not in raw.received, raw.received.decode()
    raw.received = b""
    await features(raw)
    await still_serving(users, tls=True)


# The reserved namespace bindings


RESERVED = [
    pytest.param("xmlns:xml='urn:example:not-xml'", id="xml-prefix-rebound"),
    pytest.param("xmlns:x='http://www.w3.org/XML/1998/namespace'", id="xml-namespace-other-prefix"),
    pytest.param("xmlns:xmlns='urn:example:x'", id="xmlns-prefix-declared"),
    pytest.param("xmlns:x='http://www.w3.org/2000/xmlns/'", id="xmlns-namespace-bound"),
]


@pytest.mark.server_config(**PLAINTEXT)
@pytest.mark.parametrize("declaration", RESERVED)
async def test_a_reserved_binding_in_the_stream_header(users: Harness, declaration: str) -> None:
    raw = await users.raw()
    # The closing tag ends the stream at once on a server that accepts the header.
    raw.open_stream(extra=f" {declaration}")
    raw.send("</stream:stream>")
    await raw.expect_stream_error("not-well-formed")
    await still_serving(users)


@pytest.mark.server_config(**PLAINTEXT)
@pytest.mark.parametrize("declaration", RESERVED)
async def test_a_reserved_binding_in_a_stanza(users: Harness, declaration: str) -> None:
    raw, _jid = await raw_session(users, "alice")
    # Binding the xml prefix to its own namespace is allowed, and stays allowed.
    raw.send(
        "<presence xmlns:xml='http://www.w3.org/XML/1998/namespace' xml:lang='en'>"
        "<status>ok</status></presence>"
    )
    await ping(raw)
    raw.send(f"<presence {declaration}/></stream:stream>")
    await raw.expect_stream_error("not-well-formed")
    assert users.ctx.sessions.all() == []
    await still_serving(users)
