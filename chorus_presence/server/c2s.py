"""One client-to-server stream (RFC 6120): header checks, features, STARTTLS, SASL, binding,
and the life of the bound session: liveness pings, the send buffer cap, client state (XEP-0352)
and, with stream management (XEP-0198), hibernation and resumption.

The stream layer knows XML, TLS and SASL. Once a resource is bound, every stanza has its `from`
stamped and goes to the router; the services behind it know the rules. A `ClientStream` object
is the session the rest of the server sees; when a client resumes, the new connection is handed
to the same object, so no service has to re-key anything.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
import secrets
import socket
import ssl
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar, cast

from lxml import etree

from chorus_presence.config import Config
from chorus_presence.core import topics
from chorus_presence.core.bus import Bus
from chorus_presence.core.events import Nonza, SessionEvent, StreamFeatures
from chorus_presence.core.limits import Limits
from chorus_presence.core.metrics import Metrics
from chorus_presence.core.router import StanzaRouter
from chorus_presence.core.sessions import SessionRegistry
from chorus_presence.server import sasl2
from chorus_presence.server.client_state import ClientState
from chorus_presence.server.connections import Connections
from chorus_presence.server.sasl import (
    SaslExchange,
    SaslFailure,
    SaslStep,
    TokenLogin,
    offered_mechanisms,
)
from chorus_presence.server.stream_management import (
    REQUEST,
    StreamManagement,
    UnackedOverflow,
)
from chorus_presence.services.accounts import AccountService
from chorus_presence.services.sign_ins import SignInService
from chorus_presence.xmpp import namespaces as ns
from chorus_presence.xmpp.errors import StanzaError, StreamError
from chorus_presence.xmpp.jid import JID, JIDError, nameprep, resourceprep
from chorus_presence.xmpp.parser import StreamClose, StreamOpen, StreamParser
from chorus_presence.xmpp.stanza import (
    STANZA_KINDS,
    Element,
    child,
    element,
    iq_result,
    local_name,
    namespace_of,
    serialize,
    stream_error,
    stream_header,
)

log = logging.getLogger(__name__)
_T = TypeVar("_T")

READ_SIZE = 65536
# What the parser works through before the elements it completed are handled, one per loop
# turn: a read of 64 KiB is some 800 presence changes, whose parsing at once would make that
# one turn long for every other connection.
FEED_SIZE = 8192
# Above this many bytes waiting to go out, a stream reads and handles nothing more from its
# client until the client has read enough of it (asyncio's own high-water mark for a transport),
# so that answers are made only as fast as they are taken.
OUTPUT_HIGH_WATER = 65536
BIND_PAYLOAD = ns.qname(ns.BIND, "bind")
KEEPALIVE = (("TCP_KEEPIDLE", 60), ("TCP_KEEPINTVL", 10), ("TCP_KEEPCNT", 3))
# How long closing a connection may take once the stream is over: a peer stalled in a TLS
# handshake, or one that does not read, never lets the close finish.
CLOSE_WAIT_SECONDS = 1.0
# The lingering close, as HTTP servers do it. A socket closed while input it never read is
# still arriving makes the kernel answer with a reset, and a reset destroys whatever the client
# had not read yet: the stream error telling it why. So after a stream error the server
# half-closes (TCP FIN; over TLS close_notify; over WebSocket the closing handshake) and drops
# what the client still sends until it closes its side too, for at most this long and this many
# bytes, so that a client that never stops sending cannot keep its connection. A lingering
# connection still holds its slot of limits.max_connections and of its address.
LINGER_SECONDS = 2.0
LINGER_BYTES = 2**20


class ByteReader(Protocol):
    """What a stream reads from: a TCP socket, or a WebSocket's frames."""

    async def read(self, n: int, /) -> bytes: ...


class ByteTransport(Protocol):
    def is_closing(self) -> bool: ...

    def get_write_buffer_size(self) -> int: ...

    def abort(self) -> None: ...


class ByteWriter(Protocol):
    """What a stream writes to; only a TCP writer can also start TLS (STARTTLS)."""

    @property
    def transport(self) -> ByteTransport: ...

    def get_extra_info(self, name: str, default: Any = None, /) -> Any: ...

    def write(self, data: bytes, /) -> None: ...

    def writelines(self, data: list[bytes], /) -> None: ...

    async def drain(self) -> None: ...

    def close(self) -> None: ...

    async def wait_closed(self) -> None: ...


class TlsByteWriter(ByteWriter, Protocol):
    async def start_tls(
        self, sslcontext: ssl.SSLContext, /, *, ssl_handshake_timeout: float | None = None
    ) -> None: ...


@dataclass(frozen=True)
class StreamContext:
    """What every client stream shares: the configuration, the bus and the stanza router, who
    is online (and every open stream, bound or not), the limits and metrics, and what
    authentication needs."""

    config: Config
    bus: Bus
    router: StanzaRouter
    sessions: SessionRegistry
    limits: Limits
    metrics: Metrics
    accounts: AccountService
    ssl_context: ssl.SSLContext | None
    secret: bytes
    sign_ins: SignInService
    connections: Connections = field(default_factory=Connections)

    @property
    def domain(self) -> str:
        return self.config.domain


class ClientStream:
    """A client connection from accept to close; once bound, it is also the session."""

    # One per connection, with more attributes than an instance dictionary shares keys for:
    # slots keep each stream about 1 KiB smaller. Every attribute is set in __init__.
    __slots__ = (
        "_admitted",
        "_auth_failures",
        "_closed",
        "_end_reason",
        "_handed_over",
        "_header_deadline",
        "_header_received",
        "_header_sent",
        "_hibernating",
        "_inbound",
        "_jid",
        "_linger",
        "_lost",
        "_outbox",
        "_outbox_bytes",
        "_parser",
        "_ping_ids",
        "_reader",
        "_restart",
        "_resumed",
        "_sasl",
        "_waiting",
        "_writer",
        "address",
        "client_state",
        "ctx",
        "peer",
        "sm",
        "stream_id",
        "tls_active",
        "username",
    )

    def __init__(
        self,
        ctx: StreamContext,
        reader: ByteReader,
        writer: ByteWriter,
        *,
        secure: bool = False,
    ) -> None:
        self.ctx = ctx
        self._reader = reader
        self._writer = writer
        peer = writer.get_extra_info("peername")
        self.peer = _format_peer(peer)
        self.address = peer[0] if isinstance(peer, tuple) else str(peer)
        self._admitted = False
        self._inbound = ctx.limits.inbound_bucket()
        self._header_deadline = asyncio.get_running_loop().time() + ctx.config.limits.header_timeout
        self.stream_id = secrets.token_urlsafe(12)
        # A WebSocket behind a TLS proxy (or on loopback) starts out secure; TCP needs STARTTLS.
        self.tls_active = secure
        self.username: str | None = None
        self._jid: JID | None = None
        self._parser = self._new_parser()
        self._header_received = False
        self._header_sent = False
        self._restart = False
        self._closed = False
        # What was written to the client in this loop turn and not yet handed to the transport.
        self._outbox: list[bytes] | None = None
        self._outbox_bytes = 0
        # Set when the server ends the stream with an error: the connection closes lingering.
        self._linger = False
        # The wait for the client in progress (a read, a drain), which close() cuts short.
        self._waiting: asyncio.Timeout | None = None
        self._end_reason = "connection closed by client"
        # True when the connection died rather than being closed: the session may hibernate.
        self._lost = False
        self._handed_over = False
        self._sasl: SaslExchange | sasl2.Sasl2Exchange | None = None
        self._auth_failures = 0
        self._ping_ids = 0
        self.sm: StreamManagement | None = None
        self.client_state = ClientState()
        self._resumed: asyncio.Future[bool] | None = None
        # Made by the first who asks (`hibernating`): most sessions never hibernate.
        self._hibernating: asyncio.Event | None = None
        _enable_keepalive(writer)

    @property
    def jid(self) -> JID:
        """The bound full JID; only bound sessions are handed to services."""
        if self._jid is None:
            raise RuntimeError("the stream has not bound a resource")
        return self._jid

    @property
    def is_bound(self) -> bool:
        return self._jid is not None

    @property
    def hibernating(self) -> asyncio.Event:
        """Set while the session hibernates (its connection gone, waiting for a resumption)."""
        if self._hibernating is None:
            self._hibernating = asyncio.Event()
        return self._hibernating

    @property
    def is_hibernating(self) -> bool:
        return self._hibernating is not None and self._hibernating.is_set()

    # Writing

    def send(self, stanza: Element) -> None:
        self.send_bytes(serialize(stanza))

    def send_bytes(self, data: bytes) -> None:
        """A stanza for the client; anything held back for an inactive client goes first."""
        if self.client_state.held_count:
            for held in self.client_state.release():
                self._send_stanza(held)
        self._send_stanza(data)

    def send_presence(self, data: bytes, sender: str) -> None:
        """A presence update from `sender`, which an inactive client receives later, condensed."""
        if self._closed or self.client_state.hold(sender, data):
            return
        self._send_stanza(data)

    def write_nonza(self, data: bytes) -> None:
        """Protocol elements that are not stanzas (SASL, stream management acks)."""
        if not self._closed:
            self._write(data)

    def _send_stanza(self, data: bytes) -> None:
        ask = False
        if self.sm is not None:
            try:
                # A session whose connection is gone (hibernating) is not asked, and has room
                # for what arrives until the client is back.
                ask = self.sm.sent_stanza(data, connected=not self._lost)
            except UnackedOverflow:
                self._unacked_overflow()
                return
        if not self._closed:
            self.ctx.metrics.stanza_sent(data)
            self._write(data)
            if ask:
                # XEP-0198 section 4: the client answers with how many it handled, which
                # empties the queue before it reaches max_unacked.
                self._write(REQUEST)

    def _unacked_overflow(self) -> None:
        """Past max_unacked: a resumable session hibernates, as if its connection had died, so
        that the client can resume and get what it missed; any other ends, its stanzas stored
        or bounced. So does a hibernating session that overflows again."""
        reason = "too many unacknowledged stanzas"
        if self._resumed is not None:
            # Hibernating: end it, once; the stanzas after that go back with the rest.
            if not self._resumed.done():
                self._end_reason = f"{reason} while hibernating"
                self._resumed.set_result(False)
            return
        if self._closed:
            return
        if self.sm is not None and self.sm.resumable and not self._lost:
            log.warning(
                "stream %s of %s cut, the session hibernates: %s", self.stream_id, self._jid, reason
            )
            self._lost = True
            self._end_reason = reason
            self._writer.transport.abort()
        else:
            self._abort(reason)

    def _write(self, data: bytes) -> None:
        """Queue `data` for the client. What one loop turn writes to a stream reaches the
        transport in one call when the turn is over (`_flush`), in the order written: a fan-out
        that sends one client many stanzas in a turn costs one transport write, not one each."""
        transport = self._writer.transport
        if transport.is_closing():
            # The peer went away and this stream's own task has not noticed yet; it will end
            # the session. A write now must not fail whoever is sending (uvloop raises).
            return
        outbox = self._outbox
        if outbox is None:
            self._outbox = [data]
            asyncio.get_running_loop().call_soon(self._flush)
        else:
            outbox.append(data)
        self._outbox_bytes += len(data)
        if (
            transport.get_write_buffer_size() + self._outbox_bytes
            > self.ctx.config.liveness.send_buffer
        ):
            # A client that stops reading must not make the server hold its stanzas forever.
            self._abort("send buffer full")

    def _flush(self) -> None:
        """Hand what is queued to the transport; before anything else touches the connection
        (a drain, STARTTLS, a close), so that nothing written before is left behind."""
        outbox = self._outbox
        if outbox is None:
            return
        self._outbox, self._outbox_bytes = None, 0
        if self._writer.transport.is_closing():
            return
        # Each item stays one piece: over WebSocket, one element is one message.
        with contextlib.suppress(RuntimeError, ConnectionError, OSError):
            self._writer.writelines(outbox)

    def _drop_outbox(self) -> None:
        """Forget what is queued: the connection it was for is gone."""
        self._outbox, self._outbox_bytes = None, 0

    def _abort(self, reason: str) -> None:
        if self._closed:
            return
        log.warning("stream %s of %s dropped: %s", self.stream_id, self._jid, reason)
        self._closed = True
        self._lost = False
        self._end_reason = reason
        self._drop_outbox()
        self._writer.transport.abort()

    def close(self, error: StreamError | None = None) -> None:
        """End the stream from outside its own task (a replaced resource, a shutdown). That
        task closes the connection, lingering after an error; a wait for the client it is in
        ends at once."""
        if self._resumed is not None and not self._resumed.done():
            self._resumed.set_result(False)
        if self._closed:
            return
        self._end_stream(error)
        waiting = self._waiting
        if waiting is not None and not waiting.expired():
            waiting.reschedule(asyncio.get_running_loop().time())

    def _end_stream(self, error: StreamError | None, reason: str | None = None) -> None:
        if self._closed:
            return
        self._end_reason = reason or (f"stream error {error.condition}" if error else "closed")
        if not self._header_sent:
            self._send_header(to=None)
        self._write(stream_error(error) if error else b"</stream:stream>")
        self._closed = True
        self._linger = error is not None

    # The read loop

    async def run(self) -> None:
        cap = self.ctx.limits.server_connections
        if not cap.admit():
            self._refuse_full()
            return
        # This run holds one slot of limits.max_connections while it has a connection.
        holds_slot = True
        try:
            with self.ctx.connections.running(self):
                log.info("stream %s opened from %s", self.stream_id, self.peer)
                self._admitted = self.ctx.limits.connections.admit(self.address)
                if not self._admitted:
                    self._end_stream(StreamError("policy-violation", "Too many connections"))
                    await self._teardown("too many connections from this address")
                    return
                while True:
                    await self._serve_connection()
                    if self._handed_over:
                        # The resumed session goes on over this connection, and holds its slot.
                        holds_slot = False
                        return
                    if not (self._lost and self._jid is not None and self.sm and self.sm.resumable):
                        break
                    # No connection while hibernating: the slot is free for others meanwhile,
                    # so that clients dropped all at once can all come back; nor its
                    # descriptor, which a resumption does not use again.
                    cap.release()
                    holds_slot = False
                    # A stream error of a timed-out stream still leaves with the close.
                    self._flush()
                    self._writer.close()
                    if not await self._hibernate():
                        break
                    # Resumed: the slot of the connection handed over is this session's now.
                    holds_slot = True
                await self._teardown(self._end_reason)
        finally:
            if holds_slot:
                cap.release()

    def _refuse_full(self) -> None:
        """limits.max_connections reached: a stream error and close, at no cost in logs."""
        cap = self.ctx.limits.server_connections
        refused = cap.refusals.due()
        if refused:
            log.warning(
                "the server is full (limits.max_connections = %d): refused %d connection(s)"
                " in the last %.0f seconds, the latest from %s",
                cap.maximum,
                refused,
                cap.refusals.every,
                self.peer,
            )
        self._end_stream(StreamError("policy-violation", "The server is full"))
        self._flush()
        # Not waited for: the few bytes leave with the close, and this task is done.
        self._writer.close()

    async def _serve_connection(self) -> None:
        try:
            await self._read_loop()
        except StreamError as error:
            self._lost = error.condition == "connection-timeout" and self._jid is not None
            self._end_stream(error)
        except (ConnectionError, ssl.SSLError, OSError) as exc:
            self._lost = not self._closed
            self._end_reason = f"connection lost ({exc.__class__.__name__})"
        except Exception:
            log.exception("stream %s failed", self.stream_id)
            self._end_stream(StreamError("internal-server-error"))
        else:
            # End of file without </stream:stream>: the connection died under the session.
            self._lost = not self._closed

    async def _read_loop(self) -> None:
        loop = asyncio.get_running_loop()
        quiet = _Quiet(auth_deadline=loop.time() + self.ctx.config.limits.auth_timeout)
        while not self._closed:
            # Before waiting for the client: what it was answered goes now, not a turn later.
            self._flush()
            try:
                data = await self._for_client(
                    self._reader.read(READ_SIZE), self._quiet_timeout(quiet)
                )
            except TimeoutError:
                if self._closed:
                    return
                self._quiet_too_long(quiet)
                continue
            if not data or self._closed:
                return
            # Any inbound traffic shows the client is alive.
            quiet.pinged = False
            delay = self._inbound.take(len(data))
            if delay:
                # Reading slower slows a flooding client through TCP, without cutting it off.
                with contextlib.suppress(TimeoutError):
                    await self._for_client(asyncio.sleep(delay), None)
                if self._closed:
                    return
            if not await self._take(data, quiet):
                return

    async def _take(self, data: bytes, quiet: _Quiet) -> bool:
        """Parse and handle what one read brought, FEED_SIZE bytes at a time; False once the
        stream is over or handed over."""
        for start in range(0, len(data), FEED_SIZE):
            for event in self._parser.feed(data[start : start + FEED_SIZE]):
                await self._handle(event)
                if self._closed or self._handed_over:
                    return False
                if self._restart:
                    # The client may not send anything after a restart point before our reply:
                    # the rest of this read goes with the parser it was meant for.
                    self._restart = False
                    return True
                await self._end_turn(quiet)
                if self._closed:
                    return False
        return True

    async def _end_turn(self, quiet: _Quiet) -> None:
        """Between two top-level elements: let other connections have their turn, and wait
        while this client has not read what it was sent.

        A read that was already buffered returns without ever yielding, so without this one
        client writing back to back would keep every other connection waiting for as long as
        its stanzas last. And a client that asks faster than it reads would have the server
        answer it into memory; waiting here keeps its output near the high-water mark, so it
        only meets the send buffer cap when it stops reading altogether.
        """
        # This client's answers leave at once; what other streams write to it in this turn
        # goes with its next flush.
        self._flush()
        await asyncio.sleep(0)
        if self._writer.transport.get_write_buffer_size() + self._outbox_bytes <= OUTPUT_HIGH_WATER:
            return
        # A drain must not overtake what is queued.
        self._flush()
        while not self._closed:
            try:
                await self._for_client(self._writer.drain(), self._quiet_timeout(quiet))
            except TimeoutError:
                if self._closed:
                    return
                # Not reading counts as silence: the same deadlines and the same ping.
                self._quiet_too_long(quiet)
                continue
            # It read what was waiting, so it is there.
            quiet.pinged = False
            return

    async def _for_client(self, waiting: Awaitable[_T], timeout: float | None) -> _T:
        """`waiting`, a wait on the client, for at most `timeout` seconds: TimeoutError when
        they run out, or at once when close() ends the stream meanwhile."""
        try:
            # asyncio.timeout, unlike wait_for on 3.11, costs no extra task per read.
            async with asyncio.timeout(timeout) as self._waiting:
                return await waiting
        finally:
            self._waiting = None

    def _quiet_timeout(self, quiet: _Quiet) -> float:
        """How long the next read or drain may wait for the client."""
        loop = asyncio.get_running_loop()
        liveness = self.ctx.config.liveness
        if self._jid is None:
            timeout = quiet.auth_deadline - loop.time()
        else:
            timeout = liveness.ping_timeout if quiet.pinged else liveness.ping_after
        if not self._header_received:
            # A deadline for the whole header, so trickling it byte by byte does not help.
            timeout = min(timeout, self._header_deadline - loop.time())
        if timeout <= 0:
            raise StreamError("connection-timeout", "Negotiation took too long")
        return timeout

    def _quiet_too_long(self, quiet: _Quiet) -> None:
        """The wait ran out: end a stream still negotiating or already pinged, else ping."""
        if self._jid is None or not self._header_received:
            raise StreamError("connection-timeout", "Negotiation took too long")
        if quiet.pinged:
            raise StreamError("connection-timeout", "No answer to ping")
        quiet.pinged = True
        self._ping()

    def _ping(self) -> None:
        """XEP-0199: ask a silent client whether it is still there."""
        self._ping_ids += 1
        ping = element(
            "iq",
            {"type": "get", "id": f"chorus-ping-{self._ping_ids}", "from": self.ctx.domain},
        )
        ping.set("to", str(self._jid))
        child(ping, "ping", namespace=ns.PING)
        self.send(ping)

    # Stream management: hibernation and resumption

    async def _hibernate(self) -> bool:
        """Wait for the client to resume; True when it did, on a new connection."""
        assert self.sm is not None and self.sm.id is not None
        liveness = self.ctx.config.liveness
        loop = asyncio.get_running_loop()
        self._resumed = loop.create_future()
        self.hibernating.set()
        log.info("session %s hibernating: %s", self._jid, self._end_reason)
        # Contacts must not see a ghost while the session may still come back.
        grace = loop.call_later(
            liveness.resume_grace,
            self.ctx.bus.notify_sync,
            topics.SESSION_SUSPENDED,
            SessionEvent(self),
        )
        try:
            return await asyncio.wait_for(asyncio.shield(self._resumed), liveness.resume_timeout)
        except TimeoutError:
            self._end_reason = "not resumed in time"
            return False
        finally:
            grace.cancel()
            self.hibernating.clear()
            self._resumed = None

    def take_over(self, successor: ClientStream) -> None:
        """Continue this hibernating session on `successor`'s connection (XEP-0198 resume)."""
        assert self._resumed is not None
        # Whatever is still queued was for the dead connection; the unacknowledged stanzas
        # are sent again below, on the new one.
        self._drop_outbox()
        successor._flush()
        self._reader, self._writer = successor._reader, successor._writer
        self._parser, self.peer = successor._parser, successor.peer
        self.tls_active = successor.tls_active
        self._header_received = self._header_sent = True
        self._closed = self._lost = False
        successor._handed_over = True
        self.ctx.sign_ins.hand_over(successor, self)
        # The connection slot now in use is the successor's (perhaps from a new address):
        # this stream gives back its own and takes that one over.
        if self._admitted:
            self.ctx.limits.connections.release(self.address)
        self.address, self._admitted = successor.address, successor._admitted
        successor._admitted = False
        for data in self.sm.unacked if self.sm else []:
            self._write(data)
        self.ctx.bus.notify_sync(topics.SESSION_RESUMED, SessionEvent(self))
        log.info("session %s resumed from %s", self._jid, self.peer)
        self._resumed.set_result(True)

    def drop_connection(self) -> None:
        """Cut the connection as if it had died (a client resuming elsewhere)."""
        self._lost = True
        self._end_reason = "replaced by a resumed connection"
        self._drop_outbox()
        self._writer.transport.abort()

    def undelivered(self) -> list[bytes]:
        """Stanzas sent but never acknowledged, for a session that ends without resuming."""
        return self.sm.unacked if self.sm else []

    def park_if_quiet(self) -> bool:
        """Let the XML parser's buffers go if the client sent nothing since the last call
        (Connections asks every few seconds); the next read starts a new document."""
        return self._parser.park_if_quiet()

    async def _handle(self, event: StreamOpen | StreamClose | Element) -> None:
        if isinstance(event, StreamOpen):
            self._on_header(event)
        elif isinstance(event, StreamClose):
            self._end_stream(None, "stream closed by client")
        else:
            await self._on_element(event)

    # Stream header and features

    def _on_header(self, header: StreamOpen) -> None:
        self._header_received = True
        to = header.attributes.get("to")
        self._send_header(to=self.ctx.domain if to else None)
        if header.prefix != "stream":
            raise StreamError(
                "bad-namespace-prefix", "The stream element needs the prefix 'stream'"
            )
        if header.default_namespace != ns.CLIENT:
            raise StreamError("invalid-namespace", "The content namespace must be jabber:client")
        if not _version_supported(header.attributes.get("version")):
            raise StreamError("unsupported-version", "Only XMPP version 1.0 is supported")
        if not to:
            raise StreamError("improper-addressing", "The stream header needs a 'to' address")
        try:
            domain = nameprep(to)
        except JIDError:
            domain = None
        if domain != self.ctx.domain:
            raise StreamError("host-unknown", "This server does not serve that domain")
        self.write_nonza(serialize(self._features()))

    def _send_header(self, *, to: str | None) -> None:
        self._write(stream_header(domain=self.ctx.domain, stream_id=self.stream_id, to=to))
        self._header_sent = True

    def _features(self) -> Element:
        features = etree.Element(ns.qname(ns.STREAMS, "features"), nsmap={"stream": ns.STREAMS})
        if self.username is None:
            if not self.tls_active and self._tls_writer() is not None:
                starttls = child(features, "starttls", namespace=ns.TLS)
                if self.ctx.config.tls.required:
                    child(starttls, "required")
            if self.is_secure_enough():
                mechanisms = child(features, "mechanisms", namespace=ns.SASL)
                for name in offered_mechanisms(plain_allowed=True):
                    child(mechanisms, "mechanism", text=name)
                features.append(sasl2.feature(offered_mechanisms(plain_allowed=True)))
            stage = "preauth"
        else:
            child(features, "bind", namespace=ns.BIND)
            session = child(features, "session", namespace=ns.SESSION)
            child(session, "optional")
            stage = "postauth"
        offered = StreamFeatures(self)
        self.ctx.bus.fire_sync(
            topics.FEATURES_PREAUTH if stage == "preauth" else topics.FEATURES_POSTAUTH, offered
        )
        features.extend(offered.features)
        return features

    def _tls_writer(self) -> TlsByteWriter | None:
        """The writer when STARTTLS can happen on it: TLS is configured and the connection is
        TCP (a WebSocket gets its TLS from the HTTP layer, RFC 7395 section 3.1)."""
        if self.ctx.ssl_context is None or not isinstance(self._writer, asyncio.StreamWriter):
            return None
        return self._writer

    def is_secure_enough(self) -> bool:
        """True when the policy allows authentication and registration on this stream."""
        return self.tls_active or not self.ctx.config.tls.required

    # Top-level elements

    async def _on_element(self, node: Element) -> None:
        namespace, name = namespace_of(node), local_name(node)
        if namespace == ns.CLIENT and name in STANZA_KINDS:
            await self._on_stanza(node, name)
        elif namespace == ns.TLS and name == "starttls":
            await self._starttls()
        elif namespace == ns.SASL:
            await self._on_sasl(node, name)
        elif namespace == ns.SASL2:
            await self._on_sasl2(node, name)
        elif self.username is not None and self.ctx.bus.has(topics.nonza(str(node.tag))):
            await self.ctx.bus.fire(topics.nonza(str(node.tag)), Nonza(self, node))
        elif name in STANZA_KINDS:
            raise StreamError("invalid-namespace", "Stanzas must be in the jabber:client namespace")
        else:
            raise StreamError("unsupported-stanza-type", f"Unknown top-level element <{name}/>")

    async def _on_stanza(self, stanza: Element, kind: str) -> None:
        if self.username is None:
            if kind == "iq" and await self.ctx.router.route_preauth(self, stanza):
                return
            raise StreamError("not-authorized", "Authenticate before sending stanzas")
        if self._jid is None:
            await self._before_bind(stanza, kind)
            return
        if self.sm is not None:
            self.sm.received_stanza()
        stanza.set("from", str(self._jid))
        await self.ctx.router.route(self, stanza, kind)

    # STARTTLS

    async def _starttls(self) -> None:
        writer = self._tls_writer()
        if self.tls_active or self.username is not None or writer is None:
            self._write(f"<failure xmlns='{ns.TLS}'/>".encode())
            raise StreamError("policy-violation", "STARTTLS is not available at this point")
        self._discard_plaintext(writer)
        self._write(f"<proceed xmlns='{ns.TLS}'/>".encode())
        # <proceed/> goes out in the clear, before the handshake starts on the transport.
        self._flush()
        await self._writer.drain()
        try:
            assert self.ctx.ssl_context is not None
            await writer.start_tls(
                self.ctx.ssl_context, ssl_handshake_timeout=self.ctx.config.limits.header_timeout
            )
        except (ssl.SSLError, ConnectionError, TimeoutError, OSError) as exc:
            self._closed = True
            raise ConnectionResetError(f"TLS handshake failed: {exc}") from exc
        self.tls_active = True
        self._restart_stream()

    def _discard_plaintext(self, writer: TlsByteWriter) -> None:
        """Forget every byte the client sent before the TLS handshake (CVE-2011-0411).

        Whatever follows <starttls/> in the clear, however it was split into reads, must never
        be taken for what came over TLS (a PLAIN <auth/> injected by someone on the path, for
        one). Reading stops first, so that nothing more reaches the reader's buffer in the
        clear: asyncio's start_tls hands the socket to TLS before it reads again, and bytes
        still unread then go into the handshake, which fails on them. Then the reader's buffer
        and the parser's pending input are emptied; the rest of the events already parsed from
        the last read are dropped by the restart.
        """
        # A TCP StreamWriter's transport reads as well as writes.
        cast(asyncio.Transport, writer.transport).pause_reading()
        # asyncio has no public way to empty a StreamReader: its buffer is this bytearray.
        buffered = getattr(self._reader, "_buffer", None)
        if not isinstance(buffered, bytearray):
            # Never go on to TLS without knowing the plaintext is gone.
            raise RuntimeError("cannot discard the input buffered before STARTTLS")
        buffered.clear()
        self._parser = self._new_parser()

    def _restart_stream(self) -> None:
        self._header_deadline = (
            asyncio.get_running_loop().time() + self.ctx.config.limits.header_timeout
        )
        self._parser = self._new_parser()
        self._header_received = False
        self._header_sent = False
        self._restart = True

    def _new_parser(self) -> StreamParser:
        limits = self.ctx.config.limits
        return StreamParser(
            max_stanza_bytes=(
                limits.max_stanza_bytes if self.username else limits.max_stanza_bytes_preauth
            ),
            max_depth=limits.max_depth,
            max_attributes=limits.max_attributes,
        )

    # SASL

    async def _on_sasl(self, node: Element, name: str) -> None:
        if self.username is not None:
            raise StreamError("policy-violation", "The stream is already authenticated")
        if not self.is_secure_enough():
            self._sasl_reply(SaslStep("failure", condition="encryption-required"))
            return
        if name == "auth" and await self.ctx.limits.login_guard.address_refused(self.address):
            self._sasl_reply(SaslStep("failure", condition="temporary-auth-failure"))
            return
        if name == "auth":
            mechanism = node.get("mechanism", "")
            if mechanism not in offered_mechanisms(plain_allowed=True):
                self._sasl_reply(SaslStep("failure", condition="invalid-mechanism"))
                return
            self._sasl = exchange = self._sasl_exchange(mechanism)
            try:
                step = await exchange.start(_decode_sasl_data(node.text, allow_absent=True))
            except SaslFailure as failure:
                step = exchange.fail(failure.condition)
        elif name == "response" and isinstance(self._sasl, SaslExchange):
            try:
                step = await self._sasl.respond(_decode_sasl_data(node.text) or b"")
            except SaslFailure as failure:
                step = self._sasl.fail(failure.condition)
        elif name == "abort" and isinstance(self._sasl, SaslExchange):
            # Counted as a failure once the server has said anything about the account.
            step = self._sasl.fail("aborted")
        elif name == "abort":
            step = SaslStep("failure", condition="aborted")
        else:
            step = SaslStep("failure", condition="malformed-request")
        self._sasl_reply(step)

    async def _on_sasl2(self, node: Element, name: str) -> None:
        """SASL2 (XEP-0388), with FAST tokens: the same throttles and failure counts."""
        if self.username is not None:
            raise StreamError("policy-violation", "The stream is already authenticated")
        if not self.is_secure_enough():
            step = SaslStep("failure", condition="encryption-required")
        elif name == "authenticate" and await self.ctx.limits.login_guard.address_refused(
            self.address
        ):
            step = SaslStep("failure", condition="temporary-auth-failure")
        elif name == "authenticate":
            try:
                request = sasl2.read_authenticate(node, offered_mechanisms(plain_allowed=True))
            except SaslFailure as failure:
                step = SaslStep("failure", condition=failure.condition)
            else:
                self._sasl = exchange = sasl2.Sasl2Exchange(
                    request, self._sasl_exchange, self.ctx.sign_ins
                )
                try:
                    step = await exchange.start()
                except SaslFailure as failure:
                    step = exchange.fail(failure.condition)
        elif name == "response" and isinstance(self._sasl, sasl2.Sasl2Exchange):
            try:
                step = await self._sasl.respond(sasl2.decode_response(node))
            except SaslFailure as failure:
                step = self._sasl.fail(failure.condition)
        elif name == "abort" and isinstance(self._sasl, sasl2.Sasl2Exchange):
            step = self._sasl.fail("aborted")
        elif name == "abort":
            step = SaslStep("failure", condition="aborted")
        else:
            step = SaslStep("failure", condition="malformed-request")
        self._sasl_reply(step, extensible=True)

    def _sasl_exchange(self, mechanism: str, tokens: TokenLogin | None = None) -> SaslExchange:
        return SaslExchange(
            mechanism,
            accounts=self.ctx.accounts,
            domain=self.ctx.domain,
            secret=self.ctx.secret,
            throttle=self.ctx.limits.login_guard,
            address=self.address,
            tokens=tokens,
        )

    def _sasl_reply(self, step: SaslStep, *, extensible: bool = False) -> None:
        """Answer with `step`, in RFC 6120's SASL elements or, `extensible`, in SASL2's."""
        if step.kind == "challenge":
            payload = base64.b64encode(step.data).decode() if step.data else ""
            self._write(
                sasl2.challenge(step.data)
                if extensible
                else f"<challenge xmlns='{ns.SASL}'>{payload}</challenge>".encode()
            )
            return
        self._sasl = None
        if step.kind == "success":
            payload = base64.b64encode(step.data).decode() if step.data else ""
            self._write(
                sasl2.success(step, self.ctx.domain)
                if extensible
                else f"<success xmlns='{ns.SASL}'>{payload}</success>".encode()
            )
            self.username = step.username
            log.info("stream %s authenticated as %s", self.stream_id, self.username)
            if step.grant is not None and step.username is not None:
                self.ctx.sign_ins.attach(self, step.username, step.grant.sign_in)
            if extensible:
                # No restart (XEP-0388): the authenticated stream's features follow at once.
                self._parser.max_stanza_bytes = self.ctx.config.limits.max_stanza_bytes
                self.write_nonza(serialize(self._features()))
            else:
                self._restart_stream()
            return
        self._write(
            sasl2.failure(step.condition)
            if extensible
            else f"<failure xmlns='{ns.SASL}'><{step.condition}/></failure>".encode()
        )
        if step.condition == "aborted" and not step.counted:
            # Given up before anything was tried.
            return
        self._auth_failures += 1
        self.ctx.metrics.auth_failures.inc()
        if step.condition != "temporary-auth-failure" and not step.counted:
            # A failure outside any exchange (a bad mechanism, a stray response) names no
            # account; a refusal by the throttles checked nothing, so it adds no failure.
            self.ctx.limits.login_guard.address_failed(self.address)
        log.warning(
            "authentication failure (%s) for %s from %s",
            step.condition,
            step.attempted_user or "?",
            self.peer,
        )
        if self._auth_failures >= self.ctx.config.auth.max_failures:
            raise StreamError("not-authorized", "Too many failed authentication attempts")

    # Binding

    async def _before_bind(self, stanza: Element, kind: str) -> None:
        payload = next(iter(stanza), None) if kind == "iq" else None
        if payload is not None and payload.tag == BIND_PAYLOAD and stanza.get("type") == "set":
            try:
                await self._bind(stanza, payload)
            except StanzaError as error:
                self.ctx.router.send_error(self, stanza, error)
            return
        if stanza.get("type") not in ("error", "result"):
            self.ctx.router.send_error(
                self, stanza, StanzaError("not-authorized", "Bind a resource first")
            )

    async def _bind(self, stanza: Element, payload: Element) -> None:
        requested = payload.findtext(ns.qname(ns.BIND, "resource"))
        if requested:
            try:
                resource = resourceprep(requested)
            except JIDError as exc:
                raise StanzaError("bad-request", "That resource is not allowed") from exc
        else:
            resource = secrets.token_hex(6)
        assert self.username is not None
        jid = JID(self.username, self.ctx.domain, resource)
        bound = self.ctx.sessions.of_account(jid.bare)
        limit = self.ctx.config.limits.resources_per_account
        # Binding a resource already bound replaces that session, so it adds none.
        if len(bound) >= limit and self.ctx.sessions.get(jid) is None:
            # RFC 6120 section 7.6.2.1: resource-constraint, of type wait.
            raise StanzaError("resource-constraint", "This account has too many resources bound")
        self._jid = jid
        replaced = self.ctx.sessions.bind(self)
        if replaced is not None:
            replaced.close(StreamError("conflict", "Replaced by a new session for this resource"))
        # Before the client learns its full JID, so that whoever it tells can reach it: in a
        # cluster, every node knows the session by the time the result leaves.
        await self.ctx.bus.notify(topics.SESSION_BOUND, SessionEvent(self))
        result = iq_result(stanza)
        result.attrib.pop("from", None)
        bind = child(result, "bind", namespace=ns.BIND)
        child(bind, "jid", text=str(jid))
        self.send(result)
        log.info("stream %s bound %s from %s", self.stream_id, jid, self.peer)

    # Teardown

    async def _teardown(self, reason: str) -> None:
        self.ctx.sign_ins.detach(self)
        try:
            if self._jid is not None:
                self.ctx.sessions.unbind(self)
                await self.ctx.bus.notify(topics.SESSION_ENDED, SessionEvent(self))
            self._closed = True
            await self._close_connection()
        finally:
            # Only now: a lingering connection still counts for its address.
            if self._admitted:
                self.ctx.limits.connections.release(self.address)
                self._admitted = False
        log.info("stream %s ended: %s", self.stream_id, reason)

    async def _close_connection(self) -> None:
        """Close the connection: after a stream error, a lingering close (LINGER_SECONDS)."""
        # The stream error or closing tag, and whatever came before it, go before the close.
        self._flush()
        writer = self._writer
        linger = self._linger and not writer.transport.is_closing()
        close_wait = CLOSE_WAIT_SECONDS
        try:
            if linger and isinstance(writer, asyncio.StreamWriter) and writer.can_write_eof():
                await self._discard_input(writer)
            elif linger:
                # Over TLS, asyncio's close sends close_notify and reads, dropping it, until the
                # peer's; over WebSocket, the closing handshake drops what comes before the
                # client's close frame. Either only needs the time.
                close_wait = LINGER_SECONDS
            writer.close()
            await asyncio.wait_for(writer.wait_closed(), close_wait)
        except TimeoutError:
            writer.transport.abort()
        except (ConnectionError, ssl.SSLError, OSError):
            pass
        except asyncio.CancelledError:
            # A stop that cannot wait any longer: the connection goes at once.
            writer.transport.abort()
            raise

    async def _discard_input(self, writer: asyncio.StreamWriter) -> None:
        """Plain TCP: half-close (FIN once what is queued has gone), then read and drop what
        the client still sends, until it closes its side or the bounds run out."""
        writer.write_eof()
        left = LINGER_BYTES
        # Out of time, or the client reset the connection: either way it is time to close.
        with contextlib.suppress(TimeoutError, ConnectionError):
            async with asyncio.timeout(LINGER_SECONDS):
                while left > 0 and (data := await self._reader.read(min(READ_SIZE, left))):
                    left -= len(data)


def _version_supported(version: str | None) -> bool:
    if not version:
        return False
    major, _, minor = version.partition(".")
    return major.isdigit() and minor.isdigit() and int(major) == 1


def _decode_sasl_data(text: str | None, *, allow_absent: bool = False) -> bytes | None:
    """The base64 payload of a SASL element: None when absent, b'' for '=' (RFC 6120 6.4.2)."""
    text = (text or "").strip()
    if not text:
        return None if allow_absent else b""
    if text == "=":
        return b""
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SaslFailure("incorrect-encoding") from exc


def _enable_keepalive(writer: ByteWriter) -> None:
    """TCP keepalive, so the kernel notices peers that vanished without a word."""
    sock = writer.get_extra_info("socket")
    if sock is None:
        return
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        for name, value in KEEPALIVE:
            if hasattr(socket, name):
                sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), value)


def _format_peer(peer: object) -> str:
    if isinstance(peer, tuple) and len(peer) >= 2:
        return f"{peer[0]}:{peer[1]}"
    return str(peer)


@dataclass(slots=True)
class _Quiet:
    """How long one connection may keep the server waiting, reading or draining: until
    `auth_deadline` before it is bound; once bound, `ping_after`, then `ping_timeout` more
    once `pinged` and nothing has come back."""

    auth_deadline: float
    pinged: bool = False
