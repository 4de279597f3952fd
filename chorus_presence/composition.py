"""The composition root: builds storage, the bus, the services and the listeners in dependency
order, runs the server, and shuts it down cleanly.

This is the only place that knows every part. Each service gets its collaborators in its
constructor and subscribes its own handlers to the bus; the order of the `subscribe` calls
below matters only where priorities are equal.

The cluster, the metrics endpoint and the web listener are imported only when configured:
with them come the Redis client and aiohttp, some 25 MB a server without them never needs.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import logging
import resource
import signal
import ssl
import sys
from typing import TYPE_CHECKING, Protocol

from chorus_presence.admin import presence as presence_admin
from chorus_presence.admin.channel import AdminChannel
from chorus_presence.config import Config, ConfigError, check_files
from chorus_presence.core import topics
from chorus_presence.core.account_locks import AccountLocks
from chorus_presence.core.background import BackgroundWork
from chorus_presence.core.bus import Bus
from chorus_presence.core.clock import Clock, SystemClock
from chorus_presence.core.kdf_pool import KdfPool
from chorus_presence.core.limits import Limits, WarningThrottle
from chorus_presence.core.metrics import Metrics
from chorus_presence.core.router import StanzaRouter
from chorus_presence.core.sessions import SessionRegistry
from chorus_presence.server.c2s import ClientStream, StreamContext
from chorus_presence.server.components import Components
from chorus_presence.server.session_nonzas import ClientStateService, StreamManagementService
from chorus_presence.services import (
    adhoc_call_routing,
    adhoc_last_seen,
    adhoc_priority,
    adhoc_quiet_hours,
    adhoc_state,
    adhoc_visibility,
    legacy_session,
    ping,
    version,
)
from chorus_presence.services.accounts import AccountService
from chorus_presence.services.adhoc import AdhocService
from chorus_presence.services.appear_offline import AppearOfflineService
from chorus_presence.services.block_list import BlockListService
from chorus_presence.services.call_routing import CallRoutingService
from chorus_presence.services.disco import DiscoService
from chorus_presence.services.display_names import DisplayNameService
from chorus_presence.services.last_activity import LastActivityService
from chorus_presence.services.last_seen import LastSeenService
from chorus_presence.services.messages import MessageService
from chorus_presence.services.presence import PresenceService
from chorus_presence.services.priority_access import PriorityAccessService
from chorus_presence.services.quiet_hours import QuietHoursService
from chorus_presence.services.registration import RegistrationService
from chorus_presence.services.roster_iq import RosterIq
from chorus_presence.services.rosters import RosterService
from chorus_presence.services.sign_ins import SignInService
from chorus_presence.services.state_expiry import StateExpiryService
from chorus_presence.services.subscriptions import SubscriptionService
from chorus_presence.services.visibility import VisibilityService
from chorus_presence.storage.factory import Repositories, open_repositories, quiet_driver_logging
from chorus_presence.xmpp.errors import StreamError

if TYPE_CHECKING:
    from chorus_presence.server.metrics_endpoint import MetricsEndpoint
    from chorus_presence.web.server import WebListener

log = logging.getLogger(__name__)

# Descriptors kept back from limits.max_connections for the server's own files: listeners, the
# database and its journal, the admin socket, the event loop, logs. At most half the limit.
RESERVED_DESCRIPTORS = 64
# What accept() fails with when the process or the system has no descriptor (or buffer) left.
ACCEPT_RESOURCE_ERRORS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
# The least time between two warnings that accept() is failing for want of resources.
ACCEPT_WARNING_SECONDS = 60.0
# How long a stop waits for the streams it ended to close before it cuts them: room for a
# lingering close (c2s.LINGER_SECONDS, then CLOSE_WAIT_SECONDS), so that clients that do not
# read, do not answer or keep sending still let the process exit within a few seconds.
STREAMS_STOP_SECONDS = 3.5


async def build(
    config: Config,
    repositories: Repositories,
    ssl_context: ssl.SSLContext | None,
    clock: Clock | None = None,
) -> Components:
    """Every part of one server, in dependency order, subscribed to one bus. `clock` is the
    wall clock of what happens at a time of day (the system's unless a test drives it)."""
    domain = config.domain
    clock = clock or SystemClock()
    bus = Bus()
    sessions = SessionRegistry()
    metrics = Metrics(lambda: len(sessions))
    shared = None
    if config.cluster.enabled:
        from chorus_presence.cluster.limits import RedisCounters

        shared = RedisCounters(
            config.cluster.redis, config.limits, timeout=config.cluster.node_timeout
        )
    limits = Limits(config.limits, shared)
    background = BackgroundWork()
    router = StanzaRouter(domain, bus, sessions)
    locks = AccountLocks()
    accounts = AccountService(
        repositories.accounts,
        bus,
        domain=domain,
        iterations=config.auth.scram_iterations,
        kdf=KdfPool(),
        locks=locks,
    )
    rosters = RosterService(repositories.rosters, sessions, bus, domain=domain, locks=locks)
    # Who hides their last seen: the presence service strips idle time from what they receive.
    last_seen_hidden = await repositories.settings.owners_with("hide_last_seen")
    presence = PresenceService(
        bus, sessions, rosters, metrics, domain=domain, last_seen_hidden=last_seen_hidden
    )
    block_list = await BlockListService.load(
        repositories.block_lists, bus, rosters, presence, sessions, domain=domain
    )
    subscriptions = SubscriptionService(
        bus,
        rosters,
        presence,
        accounts,
        sessions,
        limits.subscription_requests.admit,
        block_list.blocked_either,
        repositories.display_names.get,
        domain=domain,
    )
    last_seen = await LastSeenService.load(
        bus,
        repositories.settings,
        repositories.last_activity,
        presence,
        sessions,
        clock,
        last_seen_hidden,
        domain=domain,
        shown_when_offline=lambda user: presence.offline_presence(user) is not None,
    )
    # Every logout is recorded through it, so that "Not logged in" says since when.
    logouts = last_seen.recorder(repositories.last_activity)
    appear_offline = await AppearOfflineService.load(
        repositories.settings, presence, logouts, domain=domain, clock=clock.now
    )
    visibility = await VisibilityService.load(
        repositories.settings,
        repositories.presence_blocks,
        rosters,
        subscriptions,
        presence,
        accounts,
        sessions,
        appear_offline,
        domain=domain,
    )
    priority_access = PriorityAccessService(
        repositories.priority_contacts,
        accounts,
        domain=domain,
        state_of=presence.effective_state,
    )
    call_routing = CallRoutingService(
        repositories.settings,
        repositories.routing,
        accounts,
        repositories.presence_blocks,
        domain=domain,
        admins=config.admins,
        # Calls reach a user who appears offline as they would a user who is not logged in.
        state_of=presence.shown_state,
        breaks_through=priority_access.breaks_through,
    )
    adhoc = AdhocService(bus, domain=domain)
    adhoc_visibility.register(adhoc, visibility)
    adhoc_call_routing.register(adhoc, call_routing)
    adhoc_priority.register(adhoc, priority_access)
    quiet_hours = await QuietHoursService.load(
        repositories.quiet_hours,
        repositories.settings,
        presence,
        sessions,
        background,
        clock,
        domain=domain,
        stamp=last_seen.stamp,
    )
    expiry = await StateExpiryService.load(
        repositories.state_expiries,
        repositories.settings,
        presence,
        background,
        clock,
        domain=domain,
        revert_to=quiet_hours.state_at,
        zone_changed=quiet_hours.time_zone_changed,
    )
    adhoc_state.register(adhoc, presence, expiry, domain=domain)
    adhoc_quiet_hours.register(adhoc, quiet_hours)
    messages = MessageService(
        repositories.offline,
        sessions,
        presence,
        accounts,
        rosters,
        repositories.presence_blocks,
        config.messages,
        domain=domain,
    )
    last_activity = LastActivityService(logouts, presence, rosters, background, clock=clock.now)
    adhoc_last_seen.register(adhoc, last_seen)
    stream_management = StreamManagementService(config.liveness)
    sign_ins = SignInService(
        repositories.sign_ins, bus, domain=domain, lifetime=config.auth.sign_in_lifetime
    )
    parts: tuple[Subscriber, ...] = (
        metrics,
        sessions,
        block_list,
        stream_management,
        ClientStateService(),
        DiscoService(bus, rosters),
        RegistrationService(accounts, config.registration, admins=config.admins, domain=domain),
        rosters,
        RosterIq(rosters, subscriptions),
        presence,
        expiry,
        quiet_hours,
        subscriptions,
        visibility,
        appear_offline,
        adhoc,
        priority_access,
        messages,
        call_routing,
        last_activity,
        last_seen,
        sign_ins,
        DisplayNameService(repositories.display_names, accounts, block_list.blocked_either),
    )
    for part in parts:
        part.subscribe(bus)
    for module in (ping, version, legacy_session):
        module.subscribe(bus)
    cluster = None
    if config.cluster.enabled:
        from chorus_presence.cluster.node import ClusterNode

        cluster = ClusterNode(
            config.cluster,
            bus,
            sessions,
            presence,
            rosters,
            block_list,
            visibility,
            subscriptions,
            domain=domain,
            undelivered=messages.undelivered,
        )
        cluster.subscribe(bus)
    secret = await repositories.server_state.secret("scram-fake-salt")
    streams = StreamContext(
        config, bus, router, sessions, limits, metrics, accounts, ssl_context, secret, sign_ins
    )
    return Components(
        config=config,
        repositories=repositories,
        bus=bus,
        router=router,
        sessions=sessions,
        limits=limits,
        metrics=metrics,
        background=background,
        accounts=accounts,
        rosters=rosters,
        presence=presence,
        subscriptions=subscriptions,
        visibility=visibility,
        block_list=block_list,
        call_routing=call_routing,
        priority_access=priority_access,
        quiet_hours=quiet_hours,
        last_seen=last_seen,
        adhoc=adhoc,
        stream_management=stream_management,
        sign_ins=sign_ins,
        streams=streams,
        cluster=cluster,
    )


class Subscriber(Protocol):
    def subscribe(self, bus: Bus) -> None: ...


def make_ssl_context(config: Config) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(config.tls.cert, config.tls.key)
    return context


class Server:
    """A running chorus-presence: database, services and the c2s listener."""

    def __init__(self, config: Config, *, clock: Clock | None = None) -> None:
        self.config = config
        # The wall clock of what happens at a time of day; tests pass one they move.
        self.clock = clock
        self.ctx: Components | None = None
        self._listener: asyncio.Server | None = None
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
        repositories = await open_repositories(config.storage, config.domain)
        try:
            self.ctx = await build(config, repositories, ssl_context, self.clock)
            if not listen:
                return
            if self.ctx.cluster is not None:
                # Before any listener: the node joins, and drops what an earlier run left,
                # before it accepts a client.
                await self.ctx.cluster.start(presence_admin.cluster_queries(self.ctx))
            # Before the client listener: a second server configured like a running one stops
            # here, as its admin socket is taken.
            self.admin_channel = AdminChannel(self.ctx, config.admin.socket)
            await self.admin_channel.start()
            self._listener = await asyncio.start_server(
                self._accept, config.c2s.host, config.c2s.port, limit=2**20
            )
            if config.metrics.enabled:
                from chorus_presence.server.metrics_endpoint import MetricsEndpoint

                self.metrics_endpoint = MetricsEndpoint(self.ctx.metrics, config.metrics)
                await self.metrics_endpoint.start()
            if config.web.enabled:
                from chorus_presence.web.server import WebListener

                self.web = WebListener(self.ctx.streams)
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
            if self.ctx is not None and self.ctx.cluster is not None:
                await self.ctx.cluster.stop()
            self.ctx = None
            await repositories.close()
            raise
        log.info("listening for clients on %s:%d", config.c2s.host, self.port)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert self.ctx is not None
        await ClientStream(self.ctx.streams, reader, writer).run()

    async def stop(self) -> None:
        """Stop accepting; tell every contact each user went offline, then end every stream,
        TCP and WebSocket, bound or not, with system-shutdown; finish durable work and close
        the database. Bounded whatever the clients do (STREAMS_STOP_SECONDS)."""
        if self._listener is not None:
            self._listener.close()
        if self.admin_channel is not None:
            await self.admin_channel.stop()
            self.admin_channel = None
        if self.metrics_endpoint is not None:
            await self.metrics_endpoint.stop()
            self.metrics_endpoint = None
        if self.web is not None:
            await self.web.stop_accepting()
        ctx = self.ctx
        if ctx is not None:
            # Unavailable presence first, while every contact's connection is still open.
            await ctx.bus.notify(topics.SERVER_STOPPING, None)
            connections = ctx.streams.connections
            connections.close_all(StreamError("system-shutdown", "The server is shutting down"))
            await connections.wait_closed(STREAMS_STOP_SECONDS)
            if ctx.cluster is not None:
                # Once every stream ended, so the other nodes heard of each end.
                await ctx.cluster.stop()
        if self.web is not None:
            await self.web.stop()
            self.web = None
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._listener.wait_closed(), 1)
        if ctx is not None:
            await ctx.background.drain()
            ctx.accounts.kdf.shutdown()
            await ctx.limits.close()
            await ctx.repositories.close()
            self.ctx = None


def run_server(config: Config, *, log_level: str | None = None) -> int:
    """Run in the foreground until SIGTERM or SIGINT; the exit code for the command line."""
    logging.basicConfig(
        level=(log_level or config.logging.level).upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    quiet_driver_logging()
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


def fit_descriptor_limit(config: Config) -> Config:
    """Raise the soft descriptor limit (RLIMIT_NOFILE) to the hard one, and make sure
    `limits.max_connections` fits under it: one descriptor per connection, plus the server's
    own. A cap that does not fit is lowered with a warning, so that the server refuses
    connections politely rather than fail at accept()."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = config.limits.max_connections
    # An unlimited hard limit cannot be the soft one on Linux (nr_open caps it): ask for what
    # the cap needs instead.
    target = hard if hard != resource.RLIM_INFINITY else max(soft, wanted + RESERVED_DESCRIPTORS)
    raised_from = None
    if soft != resource.RLIM_INFINITY and target > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError) as exc:
            log.warning("cannot raise the descriptor limit from %d to %d: %s", soft, target, exc)
        else:
            raised_from, soft = soft, target
    raised = f" (raised from {raised_from})" if raised_from is not None else ""
    if soft == resource.RLIM_INFINITY:
        log.info("no descriptor limit: accepting at most %d connections", wanted)
        return config
    reserve = min(RESERVED_DESCRIPTORS, soft // 2)
    fits = max(1, soft - reserve)
    if wanted > fits:
        log.warning(
            "limits.max_connections = %d does not fit the descriptor limit of %d (%d kept for"
            " the server's own files): lowered to %d; raise the limit (ulimit -n, LimitNOFILE)"
            " to accept more",
            wanted,
            soft,
            reserve,
            fits,
        )
        limits = dataclasses.replace(config.limits, max_connections=fits)
        config = dataclasses.replace(config, limits=limits)
    log.info(
        "descriptor limit %d%s: accepting at most %d connections",
        soft,
        raised,
        config.limits.max_connections,
    )
    return config


def handle_accept_errors(loop: asyncio.AbstractEventLoop) -> None:
    """Make accept() failing for want of descriptors one warning a minute.

    asyncio's listener reports such a failure to the loop's exception handler, with its
    traceback, for every connection of a batch (a hundred at a time), and tries again a second
    later; the connections wait in the backlog meanwhile. Nothing is wrong with the server
    itself, so the operator needs to hear of it, not to read tracebacks. Every other report goes
    to the handler there was before (or the default one)."""
    previous = loop.get_exception_handler()
    warnings = WarningThrottle(ACCEPT_WARNING_SECONDS)

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, object]) -> None:
        exc = context.get("exception")
        if isinstance(exc, OSError) and exc.errno in ACCEPT_RESOURCE_ERRORS:
            failures = warnings.due()
            if failures:
                log.warning(
                    "cannot accept connections: %s (%d failed accepts since the last warning);"
                    " the waiting clients are served once descriptors are free. Raise the"
                    " descriptor limit or lower limits.max_connections",
                    exc.strerror,
                    failures,
                )
            return
        if previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    loop.set_exception_handler(handler)


async def _serve(config: Config) -> int:
    config = fit_descriptor_limit(config)
    handle_accept_errors(asyncio.get_running_loop())
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
