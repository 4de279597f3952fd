"""Raw sockets: a client speaking bytes, the stream negotiation steps done by hand (STARTTLS,
PLAIN, bind), reading stanzas back out of what the server wrote, and `Peer`, a bound raw client
that parses its stanzas as they arrive.

These are for what no well-behaved client would send, and for tests that need to see the exact
bytes or to run many clients cheaply.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from lxml import etree

from tests.integration.harness.constants import DOMAIN, PASSWORD, TIMEOUT

if TYPE_CHECKING:
    from tests.integration.harness.server import Harness

SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
STANZA_ERRORS = "urn:ietf:params:xml:ns:xmpp-stanzas"
CLIENT = "jabber:client"
PING = "<iq type='get' id='{id}'><ping xmlns='urn:xmpp:ping'/></iq>"


# The client


class RawClient:
    """A plain TCP client speaking bytes, for what no well-behaved client would send."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.received = b""

    def send(self, data: bytes | str) -> None:
        self.writer.write(data.encode() if isinstance(data, str) else data)

    def open_stream(self, to: str = DOMAIN, *, extra: str = "") -> None:
        self.send(
            "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
            f"xmlns:stream='http://etherx.jabber.org/streams' to='{to}' version='1.0'{extra}>"
        )

    async def expect(self, pattern: str | bytes, timeout: float = TIMEOUT) -> re.Match[bytes]:
        """Read until `pattern` (a regex) matches what arrived so far; return the match."""
        regex = re.compile(pattern.encode() if isinstance(pattern, str) else pattern, re.S)
        async with asyncio.timeout(timeout):
            while True:
                match = regex.search(self.received)
                if match:
                    return match
                chunk = await self.reader.read(65536)
                if not chunk:
                    raise AssertionError(
                        f"connection closed before {pattern!r}; got {self.received!r}"
                    )
                self.received += chunk

    async def read_to_close(self, timeout: float = TIMEOUT) -> bytes:
        """Everything the server sends until it closes the connection."""
        async with asyncio.timeout(timeout):
            while True:
                try:
                    chunk = await self.reader.read(65536)
                except ConnectionResetError:
                    break
                if not chunk:
                    break
                self.received += chunk
        return self.received

    async def expect_stream_error(self, condition: str) -> bytes:
        """The server ends the stream with `condition` and closes the socket."""
        data = await self.read_to_close()
        assert f"<{condition} xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>".encode() in data, (
            f"expected stream error {condition}, got {data!r}"
        )
        assert data.rstrip().endswith(b"</stream:stream>"), data
        return data

    def close(self) -> None:
        self.writer.close()


# Negotiation by hand


async def raw_login(
    harness: Harness, username: str, password: str = PASSWORD, *, bind: bool = True
) -> RawClient:
    """A raw client authenticated with PLAIN and, unless told not to, bound (needs
    `[tls] required = false`)."""
    raw = await harness.raw()
    raw.open_stream()
    await raw.expect(b"</stream:features>")
    token = base64.b64encode(f"\0{username}\0{password}".encode()).decode()
    raw.send(f"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{token}</auth>")
    await raw.expect(b"<success")
    raw.received = b""
    raw.open_stream()
    await raw.expect(b"</stream:features>")
    if not bind:
        return raw
    raw.send("<iq type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>")
    await raw.expect(b"</jid>")
    raw.received = b""
    return raw


def plain_token(username: str, password: str = PASSWORD) -> str:
    return base64.b64encode(f"\0{username}\0{password}".encode()).decode()


async def features(raw: RawClient) -> None:
    """Open a stream and wait for its features; what came before is dropped."""
    raw.open_stream()
    await raw.expect(b"</stream:features>")
    raw.received = b""


async def starttls(harness: Harness, raw: RawClient) -> None:
    """STARTTLS on a fresh connection, up to the features of the encrypted stream."""
    await features(raw)
    raw.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
    await raw.expect(b"<proceed")
    await raw.writer.start_tls(harness.client_ssl_context(), server_hostname=DOMAIN)
    raw.received = b""
    await features(raw)


async def authenticate(raw: RawClient, username: str) -> None:
    raw.send(f"<auth xmlns='{SASL}' mechanism='PLAIN'>{plain_token(username)}</auth>")
    await raw.expect(b"<success")
    raw.received = b""
    await features(raw)


async def bind(raw: RawClient, resource: str) -> str:
    """Bind `resource`; the full JID. Bytes after the bind result stay in `received`."""
    raw.send(
        "<iq type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
        f"<resource>{resource}</resource></bind></iq>"
    )
    match = await raw.expect(rb"<jid>([^<]+)</jid>\s*</bind>\s*</iq>")
    raw.received = raw.received[match.end() :]
    return match[1].decode()


async def raw_session(
    harness: Harness, username: str, resource: str = "raw", *, tls: bool = False
) -> tuple[RawClient, str]:
    """A raw client, authenticated with PLAIN (inside TLS when `tls`) and bound to `resource`;
    the client and its full JID."""
    raw = await harness.raw()
    if tls:
        await starttls(harness, raw)
    else:
        await features(raw)
    await authenticate(raw, username)
    return raw, await bind(raw, resource)


async def ping(raw: RawClient, stanza_id: str = "alive") -> None:
    """A ping round trip: everything sent before it has been handled."""
    raw.send(PING.format(id=stanza_id))
    await raw.expect(
        rf"<iq [^>]*id=\"{stanza_id}\"[^>]*type=\"result\"|"
        rf"<iq [^>]*type=\"result\"[^>]*id=\"{stanza_id}\""
    )


async def still_serving(harness: Harness, *, tls: bool = False) -> None:
    """Another client logs in from scratch and gets a ping answered."""
    raw, _jid = await raw_session(harness, "witness", "check", tls=tls)
    await ping(raw, "witness-ping")
    raw.close()


# Reading what the server wrote


def stanzas(data: bytes, kind: str) -> list[etree._Element]:
    """The top-level `kind` elements in a run of server output (the server declares the
    jabber:client namespace on every stanza it writes)."""
    # An empty element first, so that it never swallows the stanza after it.
    found = re.findall(rb"<%s [^>]*/>|<%s[ >].*?</%s>" % ((kind.encode(),) * 3), data, re.S)
    return [etree.fromstring(item) for item in found]


def error_condition(stanza: etree._Element) -> tuple[str | None, str | None]:
    """(error type, defined condition) of an error stanza."""
    error = stanza.find("{jabber:client}error")
    assert error is not None, etree.tostring(stanza)
    conditions = [
        etree.QName(c).localname for c in error if etree.QName(c).namespace == STANZA_ERRORS
    ]
    return error.get("type"), next((c for c in conditions if c != "text"), None)


# A parsing raw client

STREAM_OPENING = (
    b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"
)


class TopLevel:
    """Splits a server's stream into its top-level elements as the bytes arrive, whatever
    the read boundaries: a stanza, a nonza or a stream error each come out whole."""

    def __init__(self, opening: bytes = STREAM_OPENING) -> None:
        self._parser = etree.XMLPullParser(events=("start", "end"))
        self._parser.feed(opening)
        self._depth = 0
        self._root: etree._Element | None = None

    def feed(self, data: bytes) -> list[etree._Element]:
        complete = []
        self._parser.feed(data)
        for event, node in self._parser.read_events():
            if event == "start":
                self._depth += 1
                if self._root is None:
                    self._root = node
                continue
            self._depth -= 1
            if self._depth == 1:
                assert self._root is not None
                self._root.remove(node)
                complete.append(node)
        return complete


class Peer:
    """A bound raw client whose incoming stanzas are parsed as they arrive.

    IQ results and errors answer the requests made with `iq`; everything else waits in
    `inbox` until taken. `listener`, when set, is shown every stanza as it arrives.
    """

    def __init__(self, raw: RawClient, jid: str) -> None:
        self.raw = raw
        self.jid = jid
        self.bare = jid.partition("/")[0]
        self.inbox: list[etree._Element] = []
        self._stream = TopLevel()
        self._waiting: dict[str, asyncio.Future[etree._Element]] = {}
        self.listener: Callable[[etree._Element], None] | None = None
        self._ids = itertools.count()
        # Bytes that arrived with the bind result belong to the stanzas after it.
        self._feed(raw.received)
        self._reading = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        try:
            while data := await self.raw.reader.read(65536):
                self._feed(data)
        except ConnectionError:
            pass
        for waiter in self._waiting.values():
            if not waiter.done():
                waiter.set_exception(ConnectionError(f"{self.jid}: connection closed"))

    def _feed(self, data: bytes) -> None:
        for node in self._stream.feed(data):
            self._received(node)

    def _received(self, stanza: etree._Element) -> None:
        if self.listener is not None:
            self.listener(stanza)
        waiter = self._waiting.pop(stanza.get("id", ""), None)
        if stanza.tag == f"{{{CLIENT}}}iq" and stanza.get("type") in ("result", "error"):
            if waiter is not None and not waiter.done():
                waiter.set_result(stanza)
            return
        self.inbox.append(stanza)

    def send(self, xml: str) -> None:
        self.raw.send(xml)

    async def iq(self, iq_type: str, payload: str, to: str | None = None) -> etree._Element:
        """The result or error answering an IQ with `payload`."""
        stanza_id = f"q{next(self._ids)}"
        waiter = asyncio.get_running_loop().create_future()
        self._waiting[stanza_id] = waiter
        address = f" to='{to}'" if to else ""
        self.send(f"<iq type='{iq_type}' id='{stanza_id}'{address}>{payload}</iq>")
        return await asyncio.wait_for(waiter, TIMEOUT)

    async def sync(self) -> None:
        """A ping round trip: what was sent to this client before it has arrived."""
        answer = await self.iq("get", "<ping xmlns='urn:xmpp:ping'/>")
        assert answer.get("type") == "result", etree.tostring(answer)

    def take(self) -> list[etree._Element]:
        items, self.inbox = self.inbox, []
        return items

    async def close(self) -> None:
        self.send("</stream:stream>")
        try:
            await asyncio.wait_for(self._reading, TIMEOUT)
        finally:
            self.raw.close()
