"""How the server ends a stream: the stream error reaches a client that still has data in flight
(the server half-closes and discards what comes, for a bounded while, before it closes, so the
kernel never answers unread input with a reset), and a shutdown ends every stream, TCP and
WebSocket, with system-shutdown, the process exiting whatever its clients do."""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
from pathlib import Path

import aiohttp
from lxml import etree
from playwright.async_api import expect

from tests.integration.harness import (
    DOMAIN,
    PASSWORD,
    TIMEOUT,
    Harness,
    RawClient,
    ServerProcess,
    ok,
    plain_token,
    starttls,
    write_config,
)
from tests.integration.harness.browser import chromium

STREAM_OPEN = (
    "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'"
    f" to='{DOMAIN}' version='1.0'>"
)
STREAM_ERRORS = "urn:ietf:params:xml:ns:xmpp-streams"
# Nested far past limits.max_depth, then more input that the server never reads as XMPP: the
# client is still sending when the server has already decided to end the stream.
TOO_DEEP = "<a>" * 10_000
MORE = "<b/>" * 150_000


async def read_until_closed(raw: RawClient) -> bytes:
    """Everything the server sends until end of file; a reset fails the test."""
    async with asyncio.timeout(TIMEOUT):
        while chunk := await raw.reader.read(65536):
            raw.received += chunk
    return raw.received


def assert_policy_violation(data: bytes) -> None:
    assert f"<stream:error><policy-violation xmlns='{STREAM_ERRORS}'/>".encode() in data, data
    assert data.rstrip().endswith(b"</stream:stream>"), data[-300:]


async def test_the_stream_error_reaches_a_client_still_sending(harness: Harness) -> None:
    raw = await harness.raw()
    raw.send(STREAM_OPEN + TOO_DEEP + MORE)
    data = await read_until_closed(raw)
    assert_policy_violation(data)


async def test_the_stream_error_reaches_a_client_still_sending_over_tls(
    harness: Harness,
) -> None:
    raw = await harness.raw()
    await starttls(harness, raw)
    raw.send(TOO_DEEP + MORE)
    data = await read_until_closed(raw)
    assert_policy_violation(data)


async def send_forever(raw: RawClient) -> None:
    """Write as fast as the connection takes it, until the server closes the connection."""
    chunk = b"<b/>" * 16384
    with contextlib.suppress(ConnectionError):
        while True:
            raw.writer.write(chunk)
            await raw.writer.drain()


async def test_a_client_that_never_stops_sending_is_closed_all_the_same(
    harness: Harness,
) -> None:
    raw = await harness.raw()
    raw.send(STREAM_OPEN + TOO_DEEP)
    sender = asyncio.ensure_future(send_forever(raw))
    try:
        assert_policy_violation(await read_until_closed(raw))
        # The server drops what comes for a bounded while only, then closes its end for good.
        await asyncio.wait_for(sender, TIMEOUT)
    finally:
        sender.cancel()


# Shutdown: the server process, SIGTERM, clients that do not cooperate

FRAMING = "urn:ietf:params:xml:ns:xmpp-framing"
STREAMS = "http://etherx.jabber.org/streams"
WEB = {"web": {"enabled": True, "port": 0}}
# How long the process may take to exit after SIGTERM, whatever its clients do.
EXIT_SECONDS = 5.0


async def start_with_portal(
    tmp_path: Path, tls_files: tuple[Path, Path]
) -> tuple[ServerProcess, int]:
    """The server process with the web listener on, alice registered; the web port."""
    config = write_config(tmp_path, tls_files, **WEB)
    await ok(config, "user", "add", "alice", "--password-stdin", stdin=PASSWORD + "\n")
    server = await ServerProcess.start(config)
    assert server.process.stdout is not None
    async with asyncio.timeout(TIMEOUT):
        line = (await server.process.stdout.readline()).decode()
    match = re.search(r"web portal on http://[\d.]+:(\d+)/", line)
    assert match, line
    return server, int(match[1])


async def exits_soon(server: ServerProcess, signalled: float) -> int:
    """The exit code, which must come within EXIT_SECONDS of SIGTERM."""
    async with asyncio.timeout_at(signalled + EXIT_SECONDS):
        return await server.process.wait()


class WebSocketClient:
    """An RFC 7395 client that answers nothing on its own: not even the server's close."""

    def __init__(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        self.socket = socket

    @classmethod
    async def connect(cls, http: aiohttp.ClientSession, port: int) -> WebSocketClient:
        socket = await http.ws_connect(
            f"http://127.0.0.1:{port}/xmpp-websocket", protocols=("xmpp",), autoclose=False
        )
        return cls(socket)

    async def send(self, text: str) -> None:
        await self.socket.send_str(text)

    async def next(self) -> aiohttp.WSMessage:
        return await self.socket.receive(timeout=TIMEOUT)

    async def element(self) -> etree._Element:
        message = await self.next()
        assert message.type == aiohttp.WSMsgType.TEXT, message
        return etree.fromstring(message.data.encode())

    async def until(self, tag: str) -> etree._Element:
        """The first element named `tag` (Clark notation); what comes before is dropped."""
        while (node := await self.element()).tag != tag:
            pass
        return node

    async def open(self) -> None:
        await self.send(f"<open xmlns='{FRAMING}' to='{DOMAIN}' version='1.0'/>")
        await self.until(f"{{{STREAMS}}}features")

    async def login(self, user: str, resource: str) -> None:
        await self.open()
        await self.send(
            f"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>"
            f"{plain_token(user)}</auth>"
        )
        await self.until("{urn:ietf:params:xml:ns:xmpp-sasl}success")
        await self.open()
        await self.send(
            "<iq xmlns='jabber:client' type='set' id='b'>"
            f"<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>{resource}</resource>"
            "</bind></iq>"
        )
        await self.until("{jabber:client}iq")

    async def expect_shutdown(self) -> None:
        """The stream error, then <close/>, then the WebSocket close frame, which this client
        never answers."""
        error = await self.until(f"{{{STREAMS}}}error")
        assert error[0].tag == f"{{{STREAM_ERRORS}}}system-shutdown", etree.tostring(error)
        closing = await self.element()
        assert closing.tag == f"{{{FRAMING}}}close", etree.tostring(closing)
        frame = await self.next()
        assert frame.type == aiohttp.WSMsgType.CLOSE, frame


async def keep_sending(client: WebSocketClient) -> None:
    """Pings, as fast as the connection takes them, never reading, until it is gone."""
    ping = "<iq xmlns='jabber:client' type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>"
    with contextlib.suppress(ConnectionError, RuntimeError):
        while not client.socket.closed:
            await client.send(ping)


async def test_sigterm_ends_websocket_and_tcp_streams_and_exits_whatever_clients_do(
    tmp_path: Path, tls_files: tuple[Path, Path]
) -> None:
    server, web_port = await start_with_portal(tmp_path, tls_files)
    try:
        async with aiohttp.ClientSession() as http:
            browser = await WebSocketClient.connect(http, web_port)
            await browser.login("alice", "browser")
            opened = await WebSocketClient.connect(http, web_port)
            await opened.open()
            flooding = await WebSocketClient.connect(http, web_port)
            await flooding.open()
            # A TCP client that opened its stream and then never reads again.
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(STREAM_OPEN.encode())
            await reader.readuntil(b"</stream:features>")
            sender = asyncio.ensure_future(keep_sending(flooding))

            server.process.send_signal(signal.SIGTERM)
            signalled = asyncio.get_running_loop().time()
            await browser.expect_shutdown()
            await opened.expect_shutdown()
            assert await exits_soon(server, signalled) == 0
            await asyncio.wait_for(sender, TIMEOUT)
            writer.close()
    finally:
        await server.stop()


# The portal in Chromium, as people leave it open


async def test_sigterm_with_a_portal_tab_open_tells_it_and_exits(
    tmp_path: Path, tls_files: tuple[Path, Path]
) -> None:
    server, web_port = await start_with_portal(tmp_path, tls_files)
    try:
        async with chromium() as browser:
            page = await browser.new_page()
            await page.goto(f"http://127.0.0.1:{web_port}/")
            await page.get_by_label("Chorus address").fill(f"alice@{DOMAIN}")
            await page.get_by_label("Password").fill(PASSWORD)
            await page.get_by_role("button", name="Sign in").click()
            await expect(page.get_by_role("heading", name="Contacts")).to_be_visible(
                timeout=TIMEOUT * 1000
            )

            server.process.send_signal(signal.SIGTERM)
            signalled = asyncio.get_running_loop().time()
            await expect(page.locator("#connection-message")).to_have_text(
                "The connection to the server is lost.", timeout=TIMEOUT * 1000
            )
            assert await exits_soon(server, signalled) == 0
    finally:
        await server.stop()
