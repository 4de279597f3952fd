"""Assembles the server from its parts, runs the c2s listener, and shuts it down cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import ssl
import sys
from types import ModuleType

from chorus_presence.config import Config, ConfigError, check_files
from chorus_presence.server import client_state, stream_management
from chorus_presence.server.admin_channel import AdminChannel
from chorus_presence.server.c2s import ClientStream
from chorus_presence.server.context import ServerContext
from chorus_presence.server.limits import Limits
from chorus_presence.server.metrics import MetricsEndpoint
from chorus_presence.server.router import Router
from chorus_presence.server.sessions import SessionRegistry
from chorus_presence.services import (
    adhoc,
    adhoc_routing,
    adhoc_visibility,
    blocking,
    disco,
    last_activity,
    legacy_session,
    messages,
    ping,
    presence,
    registration,
    rosters,
    routing,
    subscriptions,
    version,
    visibility,
)
from chorus_presence.services.accounts import AccountService
from chorus_presence.storage.accounts import AccountRepository
from chorus_presence.storage.database import Database
from chorus_presence.storage.server_state import ServerStateRepository
from chorus_presence.web.server import WebListener
from chorus_presence.xmpp.errors import StreamError

log = logging.getLogger(__name__)

# Each module registers its own handlers; adding a feature means adding it here.
SERVICES: tuple[ModuleType, ...] = (
    stream_management,
    client_state,
    disco,
    ping,
    version,
    legacy_session,
    registration,
    rosters,
    presence,
    subscriptions,
    visibility,
    adhoc,
    adhoc_visibility,
    messages,
    blocking,
    routing,
    adhoc_routing,
    last_activity,
)


def make_ssl_context(config: Config) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(config.tls.cert, config.tls.key)
    return context


class Server:
    """A running chorus-presence: database, services and the c2s listener."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.ctx: ServerContext | None = None
        self._listener: asyncio.Server | None = None
        self._streams: set[asyncio.Task[None]] = set()
        self.metrics_endpoint: MetricsEndpoint | None = None
        self.web: WebListener | None = None
        self.admin_channel: AdminChannel | None = None

    @property
    def port(self) -> int:
        assert self._listener is not None
        return self._listener.sockets[0].getsockname()[1]

    async def start(self, *, listen: bool = True) -> None:
        """Open the database, start the services and, with `listen`, every listener. Without,
        nothing is served: the admin command line runs commands on a stopped server's data."""
        config = self.config
        if listen:
            check_files(config)
        ssl_context = make_ssl_context(config) if listen else None
        database = await Database.open(config.storage.database)
        try:
            secret = await ServerStateRepository(database).secret("scram-fake-salt")
            sessions = SessionRegistry()
            self.ctx = ServerContext(
                config=config,
                database=database,
                accounts=AccountService(
                    AccountRepository(database), iterations=config.auth.scram_iterations
                ),
                sessions=sessions,
                router=Router(config.domain, sessions),
                ssl_context=ssl_context,
                secret=secret,
                limits=Limits(config.limits),
            )
            for service in SERVICES:
                service.setup(self.ctx)
            # Services that keep durable state in memory load it before the first client.
            for service in SERVICES:
                start = getattr(service, "start", None)
                if start is not None:
                    await start(self.ctx)
            if not listen:
                return
            # Before the client listener: a second server configured like a running one stops
            # here, as its admin socket is taken.
            self.admin_channel = AdminChannel(self.ctx, config.admin.socket)
            await self.admin_channel.start()
            self._listener = await asyncio.start_server(
                self._accept, config.c2s.host, config.c2s.port, limit=2**20
            )
            if config.metrics.enabled:
                self.metrics_endpoint = MetricsEndpoint(self.ctx)
                await self.metrics_endpoint.start()
            if config.web.enabled:
                self.web = WebListener(self.ctx)
                await self.web.start()
        except BaseException:
            if self._listener is not None:
                self._listener.close()
                self._listener = None
            if self.metrics_endpoint is not None:
                await self.metrics_endpoint.stop()
                self.metrics_endpoint = None
            if self.admin_channel is not None:
                await self.admin_channel.stop()
                self.admin_channel = None
            await database.close()
            raise
        log.info("listening for clients on %s:%d", config.c2s.host, self.port)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert self.ctx is not None
        task = asyncio.current_task()
        assert task is not None
        self._streams.add(task)
        try:
            await ClientStream(self.ctx, reader, writer).run()
        finally:
            self._streams.discard(task)

    async def stop(self) -> None:
        """Stop accepting; tell every contact each user went offline, then end every stream
        with system-shutdown; finish durable work and close the database."""
        if self._listener is not None:
            self._listener.close()
        if self.admin_channel is not None:
            await self.admin_channel.stop()
            self.admin_channel = None
        if self.metrics_endpoint is not None:
            await self.metrics_endpoint.stop()
            self.metrics_endpoint = None
        if self.web is not None:
            await self.web.stop()
            self.web = None
        ctx = self.ctx
        if ctx is not None:
            sessions = ctx.sessions.all()
            # Unavailable presence first, while every contact's connection is still open.
            for session in sessions:
                await ctx.presence.session_ended(session)
            for session in sessions:
                session.close(StreamError("system-shutdown", "The server is shutting down"))
            for hibernating in list(ctx.resumable.values()):
                hibernating.close()
        if self._streams:
            await asyncio.wait(list(self._streams), timeout=5)
        for task in list(self._streams):
            task.cancel()
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._listener.wait_closed(), 1)
        if ctx is not None:
            await ctx.drain_background()
            await ctx.database.close()
            self.ctx = None


def run_server(config: Config, *, log_level: str | None = None) -> int:
    """Run in the foreground until SIGTERM or SIGINT; the exit code for the command line."""
    logging.basicConfig(
        level=(log_level or config.logging.level).upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # aiosqlite logs every statement at debug level, which drowns the server's own lines.
    logging.getLogger("aiosqlite").setLevel(logging.INFO)
    try:
        import uvloop
    except ImportError:
        runner = asyncio.run
    else:
        runner = uvloop.run
    try:
        return runner(_serve(config))
    except ConfigError as error:
        print(f"chorus-presence: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"chorus-presence: cannot listen: {error}", file=sys.stderr)
        return 1


async def _serve(config: Config) -> int:
    server = Server(config)
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    print(
        f"chorus-presence serving {config.domain} on {config.c2s.host}:{server.port}"
        f" (TLS {'required' if config.tls.required else 'optional'})",
        flush=True,
    )
    if server.web is not None:
        print(f"web portal on http://{config.web.host}:{server.web.port}/", flush=True)
    if server.metrics_endpoint is not None:
        port = server.metrics_endpoint.port
        print(f"metrics on http://{config.metrics.host}:{port}/metrics", flush=True)
    await stop.wait()
    log.info("shutting down")
    await server.stop()
    return 0
