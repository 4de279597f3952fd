"""The server under test: its config file, the in-process server with the clients a test opened
against it, the server as a child process (`chorus-presence serve`), and set-up that goes
through the server's own services rather than a client."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import slixmpp

from chorus_presence.composition import Server
from chorus_presence.config import load_config
from chorus_presence.core.clock import Clock, ManualClock
from chorus_presence.xmpp.jid import JID
from tests.integration.harness.clients import wait_first
from tests.integration.harness.constants import DOMAIN, PASSWORD, TIMEOUT, command_line
from tests.integration.harness.raw import RawClient

# Configuration


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


# The in-process server


class Harness:
    """One running server and the clients a test opened against it.

    `server` is usually the in-process `Server`; a `ServerProcess` (anything with a `port`)
    serves too, for the tests that need a real process, though `ctx` is then unavailable.
    """

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

    async def raw(self, *, source: str | None = None) -> RawClient:
        """A raw TCP connection, from `source` (any of 127.0.0.0/8) when given: limits and
        throttles count per address."""
        local = (source, 0) if source is not None else None
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port, local_addr=local)
        client = RawClient(reader, writer)
        self.raw_connections.append(client)
        return client

    async def restart(
        self, *, while_stopped: Callable[[], Awaitable[object]] | None = None
    ) -> None:
        """Stop the server (and every client) and start a new one on the same database.

        `while_stopped` runs in between, for what an operator does to a stopped server.
        """
        await self.close()
        self.clients.clear()
        self.raw_connections.clear()
        if while_stopped is not None:
            await while_stopped()
        self.server = Server(self.server.config, clock=self.server.clock)
        await self.server.start()

    async def close(self) -> None:
        for client in self.clients:
            if client.transport is not None:
                client.abort()
        for raw in self.raw_connections:
            raw.close()
        await self.server.stop()


def quiet_slixmpp() -> None:
    """slixmpp logs every expected failure at error level; tests assert on behaviour instead."""
    logging.getLogger("slixmpp").setLevel(logging.CRITICAL)


async def start_server(config_path: Path, cert: Path, *, clock: Clock | None = None) -> Harness:
    """The in-process server; `clock`, when given, is the wall clock the test moves."""
    server = Server(load_config(config_path), clock=clock)
    await server.start()
    return Harness(server, cert)


# Monday 4 May 2026, 12:00 UTC: where the tests that move the server's clock start it.
CLOCK_START = dt.datetime(2026, 5, 4, 12, 0, tzinfo=dt.UTC).timestamp()


@asynccontextmanager
async def clocked_server(
    tmp_path: Path,
    tls_files: tuple[Path, Path],
    users: tuple[str, ...],
    *,
    postgres_url: str | None = None,
) -> AsyncIterator[tuple[Harness, ManualClock]]:
    """The in-process server on a `ManualClock` at CLOCK_START, with `users`; on SQLite, or on
    PostgreSQL at `postgres_url`."""
    quiet_slixmpp()
    clock = ManualClock(CLOCK_START)
    storage = {"backend": "postgresql", "url": postgres_url} if postgres_url else {}
    running = await start_server(
        write_config(tmp_path, tls_files, storage=storage), tls_files[0], clock=clock
    )
    try:
        for name in users:
            await running.add_user(name)
        yield running, clock
    finally:
        await running.close()


# The server as a child process


class ServerProcess:
    """`chorus-presence serve` as a child process, with the port it printed."""

    def __init__(self, process: asyncio.subprocess.Process, port: int) -> None:
        self.process = process
        self.port = port

    @classmethod
    async def start(cls, config: Path) -> ServerProcess:
        process = await asyncio.create_subprocess_exec(
            *command_line(config, "serve"),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        async with asyncio.timeout(TIMEOUT):
            while True:
                line = (await process.stdout.readline()).decode()
                assert line, "the server exited before it was ready"
                match = re.search(r"serving \S+ on [\d.]+:(\d+)", line)
                if match:
                    return cls(process, int(match[1]))

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.kill()
            await self.process.wait()


# Set-up through the server's own services


async def link(harness: Harness, first: str, second: str) -> None:
    """Mutual subscription between two users, through the server's own exchange (set-up only)."""
    user, contact = (JID(name, DOMAIN) for name in (first, second))
    subscriptions = harness.ctx.subscriptions
    for sender, receiver in ((user, contact), (contact, user)):
        await subscriptions.exchange(sender, receiver, "subscribe")
        await subscriptions.exchange(receiver, sender, "subscribed")
