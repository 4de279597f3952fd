"""Clients that push the server hard on purpose: a user with a big roster who floods roster gets,
a reader that takes the answers a little at a time and records the order they came in, and a
bare WebSocket client (RFC 7395) for the same flood over the web listener.

Nothing here waits on a clock: every read is bounded by a timeout and ends on what arrived.
"""

from __future__ import annotations

import asyncio
import base64
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

import aiohttp

from chorus_presence.storage.rosters import RosterChanges, RosterItem
from tests.integration.harness.constants import DOMAIN, PASSWORD, TIMEOUT

if TYPE_CHECKING:
    from tests.integration.harness.raw import RawClient
    from tests.integration.harness.server import Harness

ROSTER_GET = "<iq type='get' id='r{number}'><query xmlns='jabber:iq:roster'/></iq>"
FRAMING = "urn:ietf:params:xml:ns:xmpp-framing"
# The start tag of a top-level stanza the server wrote (it quotes attributes with '"').
_STANZA_START = re.compile(rb"<(iq|message)[ >][^>]*>")
_ID = re.compile(rb' id="([^"]*)"')
_ROSTER_RESULT = re.compile(r"r\d+")


async def big_roster(harness: Harness, owner: str, size: int) -> None:
    """Give `owner` `size` roster items in one commit, through the server's own roster service
    (thousands of subscription exchanges would take far longer and test nothing more)."""
    items = [(owner, RosterItem(f"contact{number:05}@{DOMAIN}")) for number in range(size)]
    await harness.ctx.rosters.commit(RosterChanges(upserts=items))


def roster_gets(count: int) -> str:
    """`count` roster gets, ids r0, r1, ..., to be sent in one write."""
    return "".join(ROSTER_GET.format(number=number) for number in range(count))


class AnswerLog:
    """What a flooded client has received so far, in order: ("iq", id) and ("message", id) for
    each top-level IQ and message start tag. Bytes are fed as they arrive, in any pieces."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []
        self._tail = b""

    def feed(self, data: bytes) -> None:
        data = self._tail + data
        end = 0
        for match in _STANZA_START.finditer(data):
            found = _ID.search(match[0])
            self.seen.append((match[1].decode(), found[1].decode() if found else ""))
            end = match.end()
        # Only a start tag cut off at the end of this piece has to wait for the next one.
        cut = data.rfind(b"<", end)
        self._tail = data[cut:] if cut >= 0 else b""

    @property
    def results(self) -> int:
        """How many answers to the roster gets have arrived."""
        return sum(1 for kind, stanza_id in self.seen if _is_roster_answer(kind, stanza_id))

    def results_before(self, kind: str, stanza_id: str) -> int:
        """How many answers to the roster gets arrived before that stanza."""
        position = self.seen.index((kind, stanza_id))
        return sum(1 for seen in self.seen[:position] if _is_roster_answer(*seen))


def _is_roster_answer(kind: str, stanza_id: str) -> bool:
    return kind == "iq" and _ROSTER_RESULT.fullmatch(stanza_id) is not None


class SlowReader:
    """Reads a raw client's socket a few kilobytes at a time, and only while told to."""

    def __init__(self, raw: RawClient, chunk: int = 4096) -> None:
        self.raw = raw
        self.chunk = chunk
        self.log = AnswerLog()
        self.log.feed(raw.received)

    async def until(self, done: Callable[[AnswerLog], bool], timeout: float = TIMEOUT) -> None:
        """Read until `done(log)`; fail if the server closes the connection first."""
        async with asyncio.timeout(timeout):
            while not done(self.log):
                try:
                    data = await self.raw.reader.read(self.chunk)
                except ConnectionError as exc:
                    raise AssertionError(
                        f"connection lost after {self.log.results} answers: {exc!r}"
                    ) from None
                if not data:
                    raise AssertionError(f"connection closed after {self.log.results} answers")
                self.log.feed(data)


class WebSocketFlooder:
    """A bare RFC 7395 client: one message at a time, read only when asked."""

    def __init__(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        self.socket = socket
        self.log = AnswerLog()

    @classmethod
    async def connect(cls, harness: Harness, http: aiohttp.ClientSession) -> WebSocketFlooder:
        url = f"http://127.0.0.1:{harness.server.web.port}/xmpp-websocket"
        return cls(await http.ws_connect(url, protocols=("xmpp",)))

    async def send(self, text: str) -> None:
        await self.socket.send_str(text)

    async def expect(self, pattern: str) -> str:
        """Read messages until one matches `pattern`; that message."""
        regex = re.compile(pattern, re.S)
        async with asyncio.timeout(TIMEOUT):
            while True:
                data = await self._receive()
                if regex.search(data):
                    return data

    async def login(self, user: str, resource: str = "browser") -> None:
        await self._open()
        token = base64.b64encode(f"\0{user}\0{PASSWORD}".encode()).decode()
        await self.send(
            f"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{token}</auth>"
        )
        await self.expect("<success")
        await self._open()
        await self.send(
            "<iq xmlns='jabber:client' type='set' id='bind'>"
            f"<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>{resource}</resource>"
            "</bind></iq>"
        )
        await self.expect("</jid>")

    async def until(self, done: Callable[[AnswerLog], bool], timeout: float = TIMEOUT) -> None:
        """Read messages until `done(log)`; fail if the server closes the socket first."""
        async with asyncio.timeout(timeout):
            while not done(self.log):
                self.log.feed((await self._receive()).encode())

    async def _open(self) -> None:
        await self.send(f"<open xmlns='{FRAMING}' to='{DOMAIN}' version='1.0'/>")
        await self.expect("</stream:features>")

    async def _receive(self) -> str:
        message = await self.socket.receive()
        if message.type != aiohttp.WSMsgType.TEXT:
            ended = f"socket ended ({message.type!r}) after {self.log.results} answers"
            raise AssertionError(ended)
        return str(message.data)
