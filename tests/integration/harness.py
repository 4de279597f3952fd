"""Test harness: the real server on an ephemeral port with a temporary database, real slixmpp
clients over TCP (STARTTLS and SCRAM included) and raw sockets for bad input.

Every wait is for an event, bounded by a timeout; nothing sleeps.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import re
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

import slixmpp
from slixmpp.xmlstream import ET

from chorus_presence.config import load_config
from chorus_presence.server.app import Server
from chorus_presence.xmpp.jid import JID

DOMAIN = "chorus.test"
PASSWORD = "correct horse battery staple"
TIMEOUT = 10.0


def write_config(
    directory: Path,
    tls_files: tuple[Path, Path],
    *,
    top_level: dict[str, Any] | None = None,
    **sections: dict[str, Any],
) -> Path:
    """A TOML config in `directory`: port 0, a fresh database, the shared test certificate.

    `top_level` holds keys outside any table, such as `admins`; `sections` are tables.
    """
    cert, key = tls_files
    tables: dict[str, dict[str, Any]] = {
        "c2s": {"host": "127.0.0.1", "port": 0},
        "storage": {"database": str(directory / "chorus.db")},
        "admin": {"socket": str(directory / "admin.sock")},
        "tls": {"required": True, "cert": str(cert), "key": str(key)},
        # The minimum keeps account creation quick; logins cost the same either way.
        "auth": {"scram_iterations": 4096},
    }
    for name, values in sections.items():
        tables.setdefault(name, {}).update(values)
    lines = [f'domain = "{DOMAIN}"']
    lines.extend(f"{key} = {_toml_value(value)}" for key, value in (top_level or {}).items())
    for name, values in tables.items():
        lines.append(f"[{name}]")
        lines.extend(f"{key} = {_toml_value(value)}" for key, value in values.items())
    path = directory / "chorus.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


class Harness:
    """One running server and the clients a test opened against it."""

    def __init__(self, server: Server, cert: Path) -> None:
        self.server = server
        self.cert = cert
        self.clients: list[slixmpp.ClientXMPP] = []
        self.raw_connections: list[RawClient] = []

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def ctx(self):
        assert self.server.ctx is not None
        return self.server.ctx

    async def add_user(self, username: str, password: str = PASSWORD) -> None:
        await self.ctx.accounts.create(username, password)

    def client_ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cert))

    def make_client(
        self,
        username: str,
        password: str = PASSWORD,
        *,
        resource: str = "test",
        mechanism: str | None = None,
        plugins: tuple[str, ...] = (),
    ) -> slixmpp.ClientXMPP:
        client = slixmpp.ClientXMPP(f"{username}@{DOMAIN}/{resource}", password)
        client.ssl_context = self.client_ssl_context()
        # The server offers STARTTLS on its c2s port, not direct TLS.
        client.enable_direct_tls = False
        if mechanism is not None:
            client.register_plugin("feature_mechanisms", pconfig={"use_mech": mechanism})
        for plugin in plugins:
            client.register_plugin(plugin)
        client.auto_reconnect = False
        self.clients.append(client)
        return client

    async def login(
        self,
        username: str,
        password: str = PASSWORD,
        **options: Any,
    ) -> slixmpp.ClientXMPP:
        """A connected, authenticated, bound client; fails the test if it cannot log in."""
        client = self.make_client(username, password, **options)
        outcome = await self.connect(client)
        assert outcome == "session_start", f"{username} could not log in: {outcome}"
        return client

    async def connect(self, client: slixmpp.ClientXMPP) -> str:
        """Connect and wait for the first of session_start, failed_auth or disconnected."""
        return await wait_first(
            client,
            ("session_start", "failed_auth", "disconnected", "connection_failed"),
            lambda: client.connect("127.0.0.1", self.port),
        )

    async def raw(self, *, tls: bool = False) -> RawClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        client = RawClient(reader, writer)
        self.raw_connections.append(client)
        return client

    async def restart(self) -> None:
        """Stop the server (and every client) and start a new one on the same database."""
        await self.close()
        self.clients.clear()
        self.raw_connections.clear()
        self.server = Server(self.server.config)
        await self.server.start()

    async def close(self) -> None:
        for client in self.clients:
            if client.transport is not None:
                client.abort()
        for raw in self.raw_connections:
            raw.close()
        await self.server.stop()


async def wait_first(
    client: slixmpp.ClientXMPP, events: tuple[str, ...], start: Callable[[], object]
) -> str:
    """Run `start` and return the name of the first of `events` the client fires."""
    loop = asyncio.get_running_loop()
    first: asyncio.Future[str] = loop.create_future()

    def handler_for(name: str) -> Callable[[object], None]:
        def handler(_event: object) -> None:
            if not first.done():
                first.set_result(name)

        return handler

    handlers = {name: handler_for(name) for name in events}
    for name, handler in handlers.items():
        client.add_event_handler(name, handler)
    try:
        start()
        return await asyncio.wait_for(first, TIMEOUT)
    finally:
        for name, handler in handlers.items():
            client.del_event_handler(name, handler)


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


def quiet_slixmpp() -> None:
    """slixmpp logs every expected failure at error level; tests assert on behaviour instead."""
    logging.getLogger("slixmpp").setLevel(logging.CRITICAL)


async def start_server(config_path: Path, cert: Path) -> Harness:
    server = Server(load_config(config_path))
    await server.start()
    return Harness(server, cert)


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


class Inbox:
    """Collects the stanzas a slixmpp client receives, for tests to await them by content."""

    def __init__(self, client: slixmpp.ClientXMPP, *events: str) -> None:
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        self.unclaimed: list[Any] = []
        for name in events or ("presence", "message", "message_error"):
            client.add_event_handler(name, self.queue.put_nowait)

    async def get(self, predicate: Callable[[Any], bool] = lambda _s: True) -> Any:
        """The first stanza, received or still to come, matching `predicate`; others stay."""
        for index, stanza in enumerate(self.unclaimed):
            if predicate(stanza):
                return self.unclaimed.pop(index)
        async with asyncio.timeout(TIMEOUT):
            while True:
                stanza = await self.queue.get()
                if predicate(stanza):
                    return stanza
                self.unclaimed.append(stanza)

    def drain(self) -> list[Any]:
        """Everything received and not yet claimed."""
        items, self.unclaimed = self.unclaimed, []
        while not self.queue.empty():
            items.append(self.queue.get_nowait())
        return items


async def sync(*clients: slixmpp.ClientXMPP) -> None:
    """A ping round trip on each client's stream, in order.

    The server handles a stream's stanzas in order and writes to each socket in order, so after
    `sync(sender, receiver)` everything the sender caused has reached the receiver's inbox.
    """
    for client in clients:
        iq = client.make_iq_get(queryxmlns="urn:xmpp:ping", ito=DOMAIN)
        iq.clear()
        iq.append(ET.Element("{urn:xmpp:ping}ping"))
        await iq.send(timeout=TIMEOUT)


async def roster_of(client: slixmpp.ClientXMPP) -> dict[str, dict[str, Any]]:
    """The client's roster as the server holds it: jid -> subscription, ask, approved, ..."""
    iq = client.make_iq_get(queryxmlns="jabber:iq:roster")
    result = await iq.send(timeout=TIMEOUT)
    items = {}
    for item in result.xml.iter("{jabber:iq:roster}item"):
        items[item.get("jid")] = {
            "subscription": item.get("subscription", "none"),
            "ask": item.get("ask"),
            "approved": item.get("approved"),
            "name": item.get("name"),
            "groups": sorted(g.text for g in item.iter("{jabber:iq:roster}group")),
        }
    return items


def presence_of(client: slixmpp.ClientXMPP, ptype: str, sender: str) -> Callable[[Any], bool]:
    """A predicate: presence of `ptype` ('available', 'subscribe', ...) from `sender`."""
    return lambda s: s["type"] == ptype and (str(s["from"]) == sender or s["from"].bare == sender)


async def link(harness: Harness, first: str, second: str) -> None:
    """Mutual subscription between two users, through the server's own exchange (set-up only)."""
    user, contact = (JID(name, DOMAIN) for name in (first, second))
    subscriptions = harness.ctx.subscriptions
    for sender, receiver in ((user, contact), (contact, user)):
        await subscriptions.exchange(sender, receiver, "subscribe")
        await subscriptions.exchange(receiver, sender, "subscribed")
