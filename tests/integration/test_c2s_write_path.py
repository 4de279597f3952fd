"""What a client is sent in one loop turn goes out as one write: real clients still get all of
it, in order, over TCP and over WebSocket, with stream management counting it and a stream
error arriving whole before the close."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable

import aiohttp
import pytest
from lxml import etree

from tests.integration.harness import DOMAIN, TIMEOUT, Harness
from tests.integration.harness.raw import RawClient, ping, raw_session
from tests.integration.test_websocket import WEB, connect

SM = "urn:xmpp:sm:3"
PLAINTEXT = {"tls": {"required": False}}
SENDERS = ("bob", "carol", "dave", "erin")
EACH = 10
# The top-level elements the server writes once a session is bound: stanzas, and stream
# management's acknowledgement requests.
REQUEST = f"<r xmlns='{SM}'/>".encode()
TOP_LEVEL = re.compile(
    rb"<(message|presence|iq)\b[^>]*/>|<(message|presence|iq)\b.*?</\2>|<r xmlns='"
    + SM.encode()
    + rb"'/>",
    re.S,
)


async def online_senders(harness: Harness) -> list[RawClient]:
    """Each sender bound, with a ping answered: ready to write its burst."""
    for name in ("alice", *SENDERS):
        await harness.add_user(name)
    raws = []
    for name in SENDERS:
        raw, _jid = await raw_session(harness, name, "out")
        await ping(raw, f"{name}-ready")
        raws.append(raw)
    return raws


def burst(target: str, sender: str) -> bytes:
    """EACH messages to `target`, numbered in the order sent, for one TCP write."""
    return b"".join(
        f"<message to='{target}' type='chat' id='{sender}-{n}'><body>{sender} {n}</body>"
        "</message>".encode()
        for n in range(EACH)
    )


def numbers(stanzas: list[bytes]) -> dict[str, list[int]]:
    """Per sender, the numbers of its messages in the order they arrived."""
    order: dict[str, list[int]] = {name: [] for name in SENDERS}
    for stanza in stanzas:
        found = re.search(rb"<body>(\w+) (\d+)</body>", stanza)
        if found:
            order[found[1].decode()].append(int(found[2]))
    return order


async def read_until(raw: RawClient, done: Callable[[bytes], bool]) -> None:
    """Read until `done` holds for everything received since the last reset."""
    async with asyncio.timeout(TIMEOUT):
        while not done(raw.received):
            chunk = await raw.reader.read(65536)
            assert chunk, f"connection closed; got {raw.received!r}"
            raw.received += chunk


def send_bursts(raws: list[RawClient], target: str) -> None:
    """Every sender's burst at once, so that several land on the target in one loop turn."""
    for name, raw in zip(SENDERS, raws, strict=True):
        raw.send(burst(target, name))


@pytest.mark.server_config(**PLAINTEXT, liveness={"max_unacked": 40})
async def test_bursts_from_many_senders_arrive_in_order_and_are_counted(
    harness: Harness,
) -> None:
    raws = await online_senders(harness)
    alice, jid = await raw_session(harness, "alice", "desk")
    alice.send(f"<enable xmlns='{SM}'/>")
    enabled = await alice.expect(rb"<enabled [^>]*/>")
    alice.received = alice.received[enabled.end() :]
    send_bursts(raws, jid)
    total = len(SENDERS) * EACH
    # The last request follows the last stanza.
    await read_until(
        alice, lambda data: data.count(b"</message>") == total and data.endswith(REQUEST)
    )
    elements = [match[0] for match in TOP_LEVEL.finditer(alice.received)]
    stanzas = [element for element in elements if not element.startswith(b"<r ")]
    assert numbers(stanzas) == {name: list(range(EACH)) for name in SENDERS}
    # max_unacked 40: asked after every 10th stanza sent, right after it, whatever was
    # written with it in the same turn.
    counted = 0
    for element in elements:
        if element.startswith(b"<r "):
            assert counted % 10 == 0 and counted, elements
        else:
            counted += 1
    assert sum(1 for element in elements if element.startswith(b"<r ")) == counted // 10
    # The client acknowledges all it got; an acknowledgement of more than was sent would
    # have the server end the stream.
    alice.send(f"<a xmlns='{SM}' h='{counted}'/><r xmlns='{SM}'/>")
    await alice.expect(rf"<a xmlns='{SM}' h='\d+'/>")
    await ping(alice, "after-ack")


@pytest.mark.server_config(**PLAINTEXT)
async def test_a_stream_error_follows_the_answers_before_it_and_closes(
    harness: Harness,
) -> None:
    await harness.add_user("alice")
    alice, _jid = await raw_session(harness, "alice", "desk")
    # In one write: two pings, then an element no stream may carry.
    alice.send(
        "<iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>"
        "<iq type='get' id='p2'><ping xmlns='urn:xmpp:ping'/></iq>"
        "<nonsense xmlns='urn:example:nothing'/>"
    )
    data = await alice.expect_stream_error("unsupported-stanza-type")
    first, second = data.index(b'id="p1"'), data.index(b'id="p2"')
    assert first < second < data.index(b"<stream:error>") < data.rindex(b"</stream:stream>")


@pytest.mark.server_config(**WEB, **PLAINTEXT)
async def test_over_websocket_each_element_is_a_message_of_its_own(harness: Harness) -> None:
    raws = await online_senders(harness)
    async with aiohttp.ClientSession() as http:
        alice = await connect(harness, http)
        await alice.login("alice", "browser")
        send_bursts(raws, f"alice@{DOMAIN}/browser")
        total = len(SENDERS) * EACH
        messages: list[str] = list(alice.received)
        while sum(1 for text in messages if text.startswith("<message")) < total:
            message = await alice.socket.receive(timeout=10)
            assert message.type == aiohttp.WSMsgType.TEXT, message
            messages.append(message.data)
    stanzas = []
    for text in messages:
        # RFC 7395 section 3.3.3: every message is one complete XML element.
        element = etree.fromstring(text.encode())
        if etree.QName(element).localname == "message":
            stanzas.append(text.encode())
    assert numbers(stanzas) == {name: list(range(EACH)) for name in SENDERS}
    await asyncio.gather(*(ping(raw, "done") for raw in raws))
