#!/usr/bin/env python3
"""Load generator for XMPP presence servers (chorus-presence, Prosody, any RFC 6120/6121 server).

It speaks XMPP over raw TCP with asyncio protocols, not through an XMPP library, so that one
process on one core can drive thousands of sessions: outside stream negotiation nothing is
parsed as XML; it finds the bytes it needs (stanza boundaries, a few attributes, a marker in
`<status>`) with `bytes.find` and compiled regular expressions.

Scenarios, each printing one JSON line on stdout (progress goes to stderr):

- `provision`: registers users in-band (XEP-0077) and builds the ring population: each of N
  users mutually subscribed ('both') with K others, user i with i±1 ... i±K/2 mod N, through
  real subscribe/subscribed exchanges.
- `login`: N users connect, authenticate (PLAIN or SCRAM-SHA-1), bind, fetch the roster and
  send initial presence, C at a time: logins/s and latency percentiles.
- `fanout`: all N online; presence changes carry their send time in `<status>`; the offered
  rate steps up until p99 passes the limit or anything is lost (then `--refine` steps try rates
  between the last sustained and the first that was not), then an unthrottled burst where
  each user changes presence R times. Deliveries/s at the receivers, latency, exact loss.
- `idle`: server RSS per idle logged-in session, from /proc/PID/status.
- `company-provision`, `company`: G groups of S users (bg0 ... in g0, g1, ...) where everyone
  sees everyone in their group, the groups made by the server (its own group feature): the
  users registered; then a morning login storm (until all are online and each has every group
  mate's presence), single changes timed to the last of S-1 mates on an idle server, and the
  fan-out's rate ladder for the max sustainable presence changes/s.
- `ghost`: time from a client's abrupt TCP close (FIN or RST) to its contacts receiving
  unavailable and, optionally, the same after a silent death (socket open, never read again).
- `abuse`: a bystander's round-trip time (XEP-0199 pings to the server at a steady rate,
  p50/p99/max) with no load, then while one client floods roster gets (its user has R roster
  items; it writes gets back to back and reads its results slowly), then while one account
  has M resources each sending presence changes in a loop, then while F clients, each with
  contacts among the others, flood presence changes back to back, the bystander also logging
  in again and again (its login round trip, roster get included, p50/p99); with what each
  abuser got done. The bystander runs in a process of its own (the internal `bystander`
  scenario), so that the abusers' work in this process cannot delay its measurements.

Usage: bench.py --port 5222 --domain localhost SCENARIO [options]; see --help of each scenario.
Against a cluster, `--port` lists every node's port (`--port 15224,15225`): connection i goes
to the (i mod n)-th, so that ring neighbours are on different nodes.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import functools
import itertools
import json
import math
import os
import re
import resource
import socket
import struct
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field

DEFAULT_PASSWORD = "bench-secret-1"
RESOURCE = "bench"
RING_PREFIX = "bu"
IDLE_PREFIX = "bi"
# The company scenario's users (bg0, bg1, ...) and groups (g0, g1, ...).
COMPANY_PREFIX = "bg"
COMPANY_GROUP_PREFIX = "g"
COMPANY_JID = re.compile(rb"bg(\d+)@")
# The abuse scenario's accounts, and its flooder's roster contacts (which need not exist).
BYSTANDER_USER = "bxping"
FLOOD_USER = "bxflood"
STORM_USER = "bxmulti"
# The bystander's login series rotates over this many accounts of its own (bxping0, ...): a
# server may refuse a login while another of the same account from the same address is checked.
BYSTANDER_LOGIN_ACCOUNTS = 20
# The presence flooders (bxp0, bxp1, ...), each with contacts among the others.
PRESENCE_FLOOD_PREFIX = "bxp"
CONTACT_PREFIX = "bxc"
# Connection indices of the abusers in the scenario's process (ring users start at 0,
# registration streams at -1 going down).
FLOOD_INDEX = -1000
PRESENCE_FLOOD_INDEX = -3000
# The presence flooders' logins in flight: a handful, as clients that start together.
FLOOD_LOGINS_IN_FLIGHT = 5
# Roster gets the flooder writes at once, and roster sets in flight while provisioning.
FLOOD_BATCH = 100
ROSTER_SETS_IN_FLIGHT = 64
# Usernames per registration connection: some servers limit how long a stream may stay
# unauthenticated (chorus-presence: auth_timeout), so long runs reconnect now and then.
REGISTRATIONS_PER_STREAM = 50

SASL_NS = "urn:ietf:params:xml:ns:xmpp-sasl"
STREAM_HEADER = (
    "<?xml version='1.0'?><stream:stream xmlns='jabber:client'"
    " xmlns:stream='http://etherx.jabber.org/streams' to='{domain}' version='1.0'>"
)

FEATURES_END = re.compile(rb"</stream:features>|<stream:features\b[^>]*/>")
SASL_REPLY = re.compile(rb"<(success|failure|challenge)\b[^>]*?(?:/>|>(.*?)</\1>)", re.S)
IQ_ANY = re.compile(rb"<iq\b[^>]*?(?:/>|>.*?</iq>)", re.S)
STANZA = re.compile(rb"<(presence|iq|message)\b[^>]*?(?:/>|>.*?</\1>)", re.S)
ATTRIBUTE = re.compile(rb"""([\w:.-]+)\s*=\s*(?:'([^']*)'|"([^"]*)")""")
ROSTER_ITEM = re.compile(rb"<item\b[^>]*>")
BOUND_JID = re.compile(rb"<jid>([^<]*)</jid>")
PING_IQ = re.compile(rb"<iq\b([^>]*)>\s*<ping\b[^>]*urn:xmpp:ping")
STREAM_ERROR = re.compile(rb"<stream:error\b.*?</stream:error>", re.S)
# What the roster-get flooder counts: the end of a roster result, or an error reply.
FLOOD_REPLY = re.compile(rb"</query>|<iq\b[^>]*?\btype=(?:'error'|\"error\")")
# The reply to the ping that closes each presence change of the resource storm.
STORM_PONG = re.compile(rb"<iq\b[^>]*?\bid=(?:'ml'|\"ml\")")
# The fan-out marker: step, sender index, sequence number, send time (perf_counter_ns).
MARKER = re.compile(rb"<status>b (\d+) (\d+) (\d+) (\d+)</status>")
# Longest span a marker or a ping request can have; a scanner keeps this much unmatched tail.
MARKER_TAIL = 512
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# Pure helpers (tested in tests/unit/test_bench.py)


def percentile(values: Sequence[float], pct: float) -> float | None:
    """Nearest-rank percentile: the smallest value with at least pct% of values at or below it."""
    if not 0 <= pct <= 100:
        raise ValueError("pct must be between 0 and 100")
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def latency_summary(latencies_ns: Sequence[int]) -> dict[str, float | None]:
    """p50, p99 and max of latencies given in nanoseconds, in milliseconds (3 decimals)."""
    ordered = sorted(latencies_ns)

    def ms(value: float | None) -> float | None:
        return None if value is None else round(value / 1e6, 3)

    return {
        "p50_ms": ms(percentile(ordered, 50)),
        "p99_ms": ms(percentile(ordered, 99)),
        "max_ms": ms(ordered[-1] if ordered else None),
    }


def check_ring(users: int, contacts: int) -> None:
    if contacts < 0 or contacts % 2:
        raise ValueError("the number of contacts must be even and not negative")
    if contacts >= users:
        raise ValueError("the number of contacts must be smaller than the number of users")


def ring_neighbours(index: int, users: int, contacts: int) -> list[int]:
    """The contacts of user `index`: index±1 ... index±contacts/2, modulo `users`."""
    check_ring(users, contacts)
    found = []
    for distance in range(1, contacts // 2 + 1):
        found.append((index + distance) % users)
        found.append((index - distance) % users)
    return found


def ring_pairs(users: int, contacts: int) -> list[tuple[int, int]]:
    """Every mutually subscribed pair of the ring exactly once."""
    check_ring(users, contacts)
    return [
        (index, (index + distance) % users)
        for index in range(users)
        for distance in range(1, contacts // 2 + 1)
    ]


def spaced_indices(users: int, count: int, spacing: int, offset: int = 0) -> list[int]:
    """Up to `count` indices at least `spacing` apart on the ring (around it too)."""
    if spacing <= 0:
        raise ValueError("spacing must be positive")
    step = max(spacing, users // max(count, 1))
    found = []
    for position in range(count):
        index = offset + position * step
        if index >= users or (found and users - index + found[0] < spacing):
            break
        found.append(index)
    return found


def attributes(stanza: bytes) -> dict[bytes, bytes]:
    """The attributes of the first start tag in `stanza`, values as written (not unescaped)."""
    end = stanza.find(b">")
    tag = stanza[: end + 1] if end >= 0 else stanza
    return {m[1]: m[2] if m[2] is not None else m[3] for m in ATTRIBUTE.finditer(tag)}


def bare(jid: bytes) -> bytes:
    return jid.split(b"/", 1)[0]


def roster_items(stanza: bytes) -> list[tuple[bytes, bytes]]:
    """(jid, subscription) of each roster item in a roster result or push."""
    found = []
    for match in ROSTER_ITEM.finditer(stanza):
        attrs = attributes(match.group())
        jid = attrs.get(b"jid")
        if jid is not None:
            found.append((jid, attrs.get(b"subscription", b"none")))
    return found


def marker_presence(step: int, sender: int, seq: int, sent_ns: int) -> bytes:
    return b"<presence><status>b %d %d %d %d</status></presence>" % (step, sender, seq, sent_ns)


def quote(value: bytes) -> bytes:
    """An attribute value, echoed back as received, in quotes it cannot contain."""
    return b'"' + value + b'"' if b"'" in value else b"'" + value + b"'"


def count_loss(counts: Sequence[int], expected_each: int) -> tuple[int, int]:
    """(lost, duplicated) deliveries, given how often each message was received."""
    lost = sum(expected_each - c for c in counts if c < expected_each)
    duplicated = sum(c - expected_each for c in counts if c > expected_each)
    return lost, duplicated


def cpu_seconds(pid: int) -> float:
    """CPU time (user and system) process `pid` has used, in seconds, from /proc."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        # The command name may hold spaces and parentheses; the fields after it do not.
        fields = stat.read().rsplit(")", 1)[1].split()
    # utime and stime are fields 14 and 15 of proc(5), the 12th and 13th after the name.
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def ping_summary(
    answered_ns: Sequence[int], unanswered_ns: Sequence[int], errors: int = 0
) -> dict[str, object]:
    """A bystander's ping series: counts and round-trip percentiles in milliseconds.

    A ping still unanswered when the series ends counts at the time it had waited by then, a
    lower bound, so a server that stops answering cannot look fast by answering less.
    """
    return {
        "pings": len(answered_ns) + len(unanswered_ns),
        "answered": len(answered_ns),
        "unanswered": len(unanswered_ns),
        "errors": errors,
        **latency_summary([*answered_ns, *unanswered_ns]),
    }


def contact_jid(number: int, domain: str) -> bytes:
    return f"{CONTACT_PREFIX}{number}@{domain}".encode()


def roster_set(jid: bytes, name: bytes) -> bytes:
    """The payload of a roster set adding (or renaming) one item, as RFC 6121 2.1.5 wants."""
    return b"<query xmlns='jabber:iq:roster'><item jid=%s name=%s/></query>" % (
        quote(jid),
        quote(name),
    )


class ReadBudget:
    """A token bucket for reading: how many bytes a slow reader may take now.

    Spending may overdraw it (a read returns what the socket had), and the reader then waits
    longer, so over time it reads at `rate` bytes per second.
    """

    __slots__ = ("burst", "last", "rate", "tokens")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        if rate <= 0 or burst <= 0:
            raise ValueError("rate and burst must be positive")
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.last = now

    def _refill(self, now: float) -> None:
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now

    def spend(self, size: int, now: float) -> bool:
        """Take `size` bytes; whether any budget is left for more."""
        self._refill(now)
        self.tokens -= size
        return self.tokens > 0

    def available(self, now: float) -> bool:
        self._refill(now)
        return self.tokens > 0


def rss_kib(pid: int) -> int:
    """Resident set size of process `pid` in KiB."""
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise ValueError(f"no VmRSS for process {pid}")


class StanzaSplitter:
    """Cuts a byte stream (after the stream header) into top-level stanzas, by pattern.

    Good enough for server output: stanzas never nest a stanza of their own kind, and a stanza
    split between reads waits for the rest.
    """

    __slots__ = ("pending",)

    def __init__(self) -> None:
        self.pending = b""

    def feed(self, data: bytes) -> list[bytes]:
        buffer = self.pending + data if self.pending else data
        found = []
        end = 0
        for match in STANZA.finditer(buffer):
            found.append(match.group())
            end = match.end()
        self.pending = buffer[end:]
        return found


class MarkerScanner:
    """Finds a pattern in a byte stream without splitting it into stanzas.

    A match may straddle two reads, so the scanner keeps the last `tail` bytes after its last
    match; a match is never longer than `tail`, so none is missed and none is seen twice.
    """

    __slots__ = ("pattern", "pending", "tail", "window")

    def __init__(self, pattern: re.Pattern[bytes], tail: int = MARKER_TAIL) -> None:
        self.pattern = pattern
        self.tail = tail
        self.pending = b""
        # The bytes scanned by the last feed(), for cheap secondary checks.
        self.window = b""

    def feed(self, data: bytes) -> list[re.Match[bytes]]:
        buffer = self.pending + data if self.pending else data
        found = list(self.pattern.finditer(buffer))
        end = found[-1].end() if found else 0
        self.pending = buffer[max(end, len(buffer) - self.tail) :]
        self.window = buffer
        return found


# Connections


class XmppError(Exception):
    """The server refused something or broke the stream; the message says what came back."""


@dataclass(slots=True)
class Watch:
    """Contacts still waiting for a user's unavailable presence, since `start_ns`."""

    start_ns: int
    waiting: set[int]
    delays_ns: list[int] = field(default_factory=list)
    done: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass(slots=True)
class Step:
    """One batch of marked presence changes, counted at the receivers."""

    step_id: int
    changes: int
    contacts: int
    counts: list[int]
    latencies: list[int] = field(default_factory=list)
    received: int = 0
    first_tx: int = 0
    last_rx: int = 0
    done: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def expected(self) -> int:
        return self.changes * self.contacts


class Run:
    """What every connection of one scenario shares: the target and the measurements."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.host: str = args.host
        self.ports: list[int] = args.port
        # The one port of what needs only one (the bystander): the first node's.
        self.port = self.ports[0]
        self.domain: str = args.domain
        self.password: str = args.password
        self.timeout: float = args.timeout
        self.header = STREAM_HEADER.format(domain=self.domain).encode()
        self.last_rx = time.perf_counter()
        self.errors: list[str] = []
        self.disconnects = 0
        self.expect_disconnect: set[int] = set()
        self.watches: dict[bytes, Watch] = {}
        self.steps: dict[bytes, Step] = {}
        # The bystander's pings in flight (id: send time) and the round trips seen.
        self.pings: dict[bytes, int] = {}
        self.rtts_ns: list[int] = []
        self.ping_errors = 0
        self.flood: Flood | None = None
        self.storm: Storm | None = None
        self.company: Company | None = None
        self.presence_flood: PresenceFlood | None = None

    def jid(self, user: str) -> bytes:
        return f"{user}@{self.domain}".encode()

    def port_for(self, index: int) -> int:
        """The port connection `index` goes to: round robin over the nodes."""
        return self.ports[index % len(self.ports)]

    def note_error(self, message: str) -> None:
        if len(self.errors) < 20:
            self.errors.append(message)


class Conn(asyncio.Protocol):
    """One client connection: negotiation by pattern, then a per-scenario byte handler."""

    def __init__(self, run: Run, index: int, user: str) -> None:
        self.run = run
        self.index = index
        self.index_bytes = str(index).encode()
        self.user = user
        self.full_jid = b""
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.pos = 0
        self.pattern: re.Pattern[bytes] | None = None
        self.waiter: asyncio.Future[re.Match[bytes]] | None = None
        self.on_data: Callable[[Conn, bytes], None] | None = None
        self.splitter = StanzaSplitter()
        self.scanner = MarkerScanner(MARKER)
        self.pending: dict[bytes, asyncio.Future[bytes]] = {}
        self.answered_pings: set[bytes] = set()
        self.roster: dict[bytes, bytes] = {}
        self.ids = itertools.count(1)
        self.auto_accept = False
        self.silent = False
        self.closing = False
        self.lost = False
        self.error: str | None = None
        self.last_tx = 0

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports quack like asyncio.Transport without subclassing it.
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.run.last_rx = time.perf_counter()
        if b"<stream:error" in data or b"</stream:stream>" in data:
            self._stream_ended(data)
            if self.closing and self.transport is not None:
                self.transport.close()
        if self.on_data is not None:
            self.on_data(self, data)
            return
        self.buffer += data
        waiter = self.waiter
        if waiter is None or waiter.done():
            return
        assert self.pattern is not None
        match = self.pattern.search(self.buffer, self.pos)
        if match is not None:
            self.pos = match.end()
            waiter.set_result(match)
        elif self.error is not None:
            waiter.set_exception(XmppError(self.error))

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self.index not in self.run.expect_disconnect and self.on_data is not None:
            self.run.disconnects += 1
            self.run.note_error(f"{self.user}: disconnected: {self.error or exc or 'EOF'}")
        failure = XmppError(self.error or f"connection lost ({exc or 'EOF'})")
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(failure)
        for future in self.pending.values():
            if not future.done():
                future.set_exception(failure)
        self.pending.clear()

    def _stream_ended(self, data: bytes) -> None:
        match = STREAM_ERROR.search(data)
        text = match.group() if match else data[-300:]
        self.error = "server ended the stream: " + text.decode("utf-8", "replace")

    # Writing and negotiation

    def write(self, data: bytes) -> None:
        if not self.lost and self.transport is not None:
            self.transport.write(data)
            self.last_tx = time.perf_counter_ns()

    async def expect(self, pattern: re.Pattern[bytes]) -> re.Match[bytes]:
        match = pattern.search(self.buffer, self.pos)
        if match is not None:
            self.pos = match.end()
            return match
        if self.lost or self.error:
            raise XmppError(self.error or "connection lost")
        self.pattern = pattern
        self.waiter = asyncio.get_running_loop().create_future()
        try:
            return await asyncio.wait_for(self.waiter, self.run.timeout)
        except TimeoutError:
            raise XmppError(
                f"timed out waiting for {pattern.pattern!r}; last bytes: "
                f"{self.buffer[-300:].decode('utf-8', 'replace')!r}"
            ) from None
        finally:
            self.waiter = None

    def use_handler(self, handler: Callable[[Conn, bytes], None]) -> None:
        """Switch to `handler` for all further bytes, passing it what is not consumed yet."""
        leftover = self.buffer[self.pos :]
        self.buffer, self.pos = b"", 0
        if self.on_data is stanza_data and handler is not stanza_data:
            leftover = self.splitter.pending + leftover
            self.splitter.pending = b""
        self.on_data = handler
        if leftover:
            handler(self, leftover)

    async def request(self, iq_type: bytes, payload: bytes) -> bytes:
        """An IQ to the server; its result (or error) stanza. Needs the stanza handler."""
        iq_id = b"q%d" % next(self.ids)
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self.pending[iq_id] = future
        self.write(b"<iq type='%s' id='%s'>%s</iq>" % (iq_type, iq_id, payload))
        try:
            return await asyncio.wait_for(future, self.run.timeout)
        except TimeoutError:
            raise XmppError(f"no answer to iq {payload[:60]!r}") from None
        finally:
            self.pending.pop(iq_id, None)

    # Stanzas (provisioning, logins, idle sessions, ghost watching)

    def handle_stanza(self, stanza: bytes) -> None:
        attrs = attributes(stanza)
        kind = stanza[1:3]
        stanza_type = attrs.get(b"type")
        if kind == b"iq":
            if stanza_type in (b"result", b"error"):
                future = self.pending.pop(attrs.get(b"id", b""), None)
                if future is not None and not future.done():
                    future.set_result(stanza)
            elif not self.silent and stanza_type in (b"get", b"set"):
                self._answer_iq(stanza, attrs, stanza_type)
        elif kind == b"pr":
            if stanza_type == b"unavailable":
                self._unavailable(attrs.get(b"from", b""))
            elif stanza_type == b"subscribe" and self.auto_accept:
                sender = attrs.get(b"from")
                if sender:
                    self.write(b"<presence type='subscribed' to=%s/>" % quote(bare(sender)))
            elif stanza_type is None and self.run.company is not None:
                self.run.company.presence(self.index, attrs.get(b"from", b""))

    def _answer_iq(self, stanza: bytes, attrs: dict[bytes, bytes], stanza_type: bytes) -> None:
        to = b" to=" + quote(attrs[b"from"]) if b"from" in attrs else b""
        iq_id = quote(attrs.get(b"id", b""))
        if stanza_type == b"set" and b"jabber:iq:roster" in stanza:
            for jid, subscription in roster_items(stanza):
                if subscription == b"remove":
                    self.roster.pop(jid, None)
                else:
                    self.roster[jid] = subscription
            self.write(b"<iq type='result' id=%s%s/>" % (iq_id, to))
        elif b"urn:xmpp:ping" in stanza:
            self.write(b"<iq type='result' id=%s%s/>" % (iq_id, to))
        else:
            self.write(
                b"<iq type='error' id=%s%s><error type='cancel'><service-unavailable"
                b" xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>" % (iq_id, to)
            )

    def _unavailable(self, sender: bytes) -> None:
        watch = self.run.watches.get(bare(sender))
        if watch is not None and self.index in watch.waiting:
            watch.waiting.discard(self.index)
            watch.delays_ns.append(time.perf_counter_ns() - watch.start_ns)
            if not watch.waiting:
                watch.done.set()

    def answer_pings(self, window: bytes) -> None:
        """Answer server pings seen by the fast path, once each."""
        for match in PING_IQ.finditer(window):
            attrs = attributes(b"<iq" + match[1] + b">")
            iq_id = attrs.get(b"id", b"")
            if iq_id in self.answered_pings:
                continue
            self.answered_pings.add(iq_id)
            to = b" to=" + quote(attrs[b"from"]) if b"from" in attrs else b""
            self.write(b"<iq type='result' id=%s%s/>" % (quote(iq_id), to))

    def close(self) -> None:
        """Close the stream and let the server close the TCP connection (RFC 6120 4.4).

        Waiting for the server's closing tag keeps a busy server from writing into a socket
        the client already shut, which would turn into a reset instead of a clean close.
        """
        self.run.expect_disconnect.add(self.index)
        if self.lost or self.transport is None or self.closing:
            return
        self.closing = True
        self.transport.write(b"</stream:stream>")

    def close_abruptly(self, *, reset: bool) -> None:
        """Drop the TCP connection without closing the stream: FIN, or RST when `reset`."""
        self.run.expect_disconnect.add(self.index)
        assert self.transport is not None
        if reset:
            sock = self.transport.get_extra_info("socket")
            with contextlib.suppress(OSError, AttributeError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.transport.abort()
        else:
            self.transport.close()


def stanza_data(conn: Conn, data: bytes) -> None:
    for stanza in conn.splitter.feed(data):
        conn.handle_stanza(stanza)


def fanout_data(conn: Conn, data: bytes) -> None:
    """The fast path: markers counted and timed, everything else skipped unparsed."""
    now = time.perf_counter_ns()
    steps = conn.run.steps
    me = conn.index_bytes
    for match in conn.scanner.feed(data):
        step_key, sender, seq, sent = match.groups()
        if sender == me:
            # A server may echo a presence to its sender's own resource; not a delivery.
            continue
        step = steps.get(step_key)
        if step is None:
            continue
        step.counts[int(seq)] += 1
        step.latencies.append(now - int(sent))
        step.received += 1
        step.last_rx = now
        if step.received >= step.expected:
            step.done.set()
    if b"urn:xmpp:ping" in conn.scanner.window:
        conn.answer_pings(conn.scanner.window)


# Building blocks


async def connect(run: Run, index: int, user: str) -> Conn:
    loop = asyncio.get_running_loop()
    try:
        _, conn = await asyncio.wait_for(
            loop.create_connection(lambda: Conn(run, index, user), run.host, run.port_for(index)),
            run.timeout,
        )
    except TimeoutError:
        raise XmppError("timed out connecting") from None
    return conn


async def authenticate(conn: Conn, mechanism: str) -> None:
    run = conn.run
    if mechanism == "PLAIN":
        token = base64.b64encode(f"\0{conn.user}\0{run.password}".encode())
        conn.write(b"<auth xmlns='%s' mechanism='PLAIN'>%s</auth>" % (SASL_NS.encode(), token))
        reply = await conn.expect(SASL_REPLY)
        if reply[1] != b"success":
            raise XmppError(f"PLAIN refused: {reply.group().decode('utf-8', 'replace')}")
        return
    from scramp import ScramClient

    client = ScramClient([mechanism], conn.user, run.password)
    first = base64.b64encode(client.get_client_first().encode())
    conn.write(
        b"<auth xmlns='%s' mechanism='%s'>%s</auth>" % (SASL_NS.encode(), mechanism.encode(), first)
    )
    reply = await conn.expect(SASL_REPLY)
    if reply[1] != b"challenge":
        raise XmppError(f"{mechanism} refused: {reply.group().decode('utf-8', 'replace')}")
    client.set_server_first(base64.b64decode(reply[2] or b"").decode())
    final = base64.b64encode(client.get_client_final().encode())
    conn.write(b"<response xmlns='%s'>%s</response>" % (SASL_NS.encode(), final))
    reply = await conn.expect(SASL_REPLY)
    if reply[1] == b"challenge":
        # RFC 6120 allows the server-final message in a challenge, answered by an empty response.
        client.set_server_final(base64.b64decode(reply[2] or b"").decode())
        conn.write(b"<response xmlns='%s'/>" % SASL_NS.encode())
        reply = await conn.expect(SASL_REPLY)
        if reply[1] != b"success":
            raise XmppError(f"{mechanism} failed: {reply.group().decode('utf-8', 'replace')}")
    elif reply[1] == b"success":
        client.set_server_final(base64.b64decode(reply[2] or b"").decode())
    else:
        raise XmppError(f"{mechanism} failed: {reply.group().decode('utf-8', 'replace')}")


async def login(
    run: Run,
    index: int,
    user: str,
    *,
    mechanism: str = "PLAIN",
    auto_accept: bool = False,
    bind: bool = True,
    resource: str = RESOURCE,
) -> Conn:
    """Connect, authenticate, bind `resource`, get the roster, send initial presence.

    Done when the server answers a ping sent after the initial presence: it handles a session's
    stanzas in order, so the presence has been processed by then (not every server echoes the
    presence back to its sender, so that cannot be the signal).
    """
    conn = await connect(run, index, user)
    try:
        conn.auto_accept = auto_accept
        conn.write(run.header)
        await conn.expect(FEATURES_END)
        await authenticate(conn, mechanism)
        if not bind:
            return conn
        conn.write(run.header)
        await conn.expect(FEATURES_END)
        conn.write(
            b"<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
            b"<resource>%s</resource></bind></iq>" % resource.encode()
        )
        reply = await conn.expect(IQ_ANY)
        jid = BOUND_JID.search(reply.group())
        if jid is None:
            raise XmppError(f"bind failed: {reply.group().decode('utf-8', 'replace')}")
        conn.full_jid = jid[1]
        conn.use_handler(stanza_data)
        roster = await conn.request(b"get", b"<query xmlns='jabber:iq:roster'/>")
        for contact, subscription in roster_items(roster):
            conn.roster[contact] = subscription
        conn.write(b"<presence/>")
        await conn.request(b"get", b"<ping xmlns='urn:xmpp:ping'/>")
    except BaseException:
        conn.run.expect_disconnect.add(index)
        if conn.transport is not None:
            conn.transport.abort()
        raise
    return conn


@dataclass(slots=True)
class LoginBatch:
    conns: dict[int, Conn]
    latencies_ns: list[int]
    failures: int
    seconds: float
    client_cpu_s: float


async def login_many(
    run: Run,
    users: Sequence[tuple[int, str]],
    concurrency: int,
    *,
    mechanism: str = "PLAIN",
    auto_accept: bool = False,
    bind: bool = True,
    distinct_resources: bool = False,
    note: Callable[[str], None] | None = None,
) -> LoginBatch:
    """Log `users` in, `concurrency` at a time; failures are counted and noted, not raised.

    `distinct_resources`: each binds its own resource (bench0, bench1, ... by index), for many
    sessions of one account. `note` takes the failures instead of the run's errors, for the
    scenarios where a server refusing a login is an outcome rather than a fault.
    """
    queue = iter(users)
    note = note or run.note_error
    conns: dict[int, Conn] = {}
    latencies: list[int] = []
    failures = 0

    async def worker() -> None:
        nonlocal failures
        for index, user in queue:
            started = time.perf_counter_ns()
            try:
                conn = await login(
                    run,
                    index,
                    user,
                    mechanism=mechanism,
                    auto_accept=auto_accept,
                    bind=bind,
                    resource=f"{RESOURCE}{index}" if distinct_resources else RESOURCE,
                )
            except (XmppError, OSError) as exc:
                failures += 1
                note(f"{user}: login: {exc}")
                continue
            latencies.append(time.perf_counter_ns() - started)
            conns[index] = conn

    cpu = time.process_time()
    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(max(1, concurrency))))
    return LoginBatch(
        conns,
        latencies,
        failures,
        time.perf_counter() - started,
        time.process_time() - cpu,
    )


async def close_all(
    run: Run, conns: dict[int, Conn], limit: float = 15.0, *, settle: bool = True
) -> None:
    for conn in conns.values():
        conn.close()
    deadline = time.perf_counter() + limit
    while time.perf_counter() < deadline and any(not c.lost for c in conns.values()):
        await asyncio.sleep(0.05)
    for conn in conns.values():
        if not conn.lost and conn.transport is not None:
            conn.transport.abort()
    if settle:
        await wait_quiet(run, quiet=0.5, limit=10.0)


async def wait_quiet(run: Run, *, quiet: float, limit: float) -> None:
    """Until nothing arrived for `quiet` seconds (the server has caught up), at most `limit`."""
    deadline = time.perf_counter() + limit
    while time.perf_counter() < deadline:
        if time.perf_counter() - run.last_rx >= quiet:
            return
        await asyncio.sleep(0.05)


def ring_users(count: int) -> list[tuple[int, str]]:
    return [(index, f"{RING_PREFIX}{index}") for index in range(count)]


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def batch_summary(batch: LoginBatch) -> dict[str, object]:
    ok = len(batch.latencies_ns)
    return {
        "logins": ok,
        "failures": batch.failures,
        "seconds": round(batch.seconds, 3),
        "logins_per_s": round(ok / batch.seconds, 1) if batch.seconds else None,
        **latency_summary(batch.latencies_ns),
        "client_cpu_pct": round(100 * batch.client_cpu_s / batch.seconds, 1)
        if batch.seconds
        else None,
    }


# Scenario: provision


async def register_many(run: Run, users: Sequence[str], concurrency: int) -> dict[str, object]:
    queue = iter(users)
    created = existed = failed = 0

    async def worker(number: int) -> None:
        nonlocal created, existed, failed
        while True:
            batch = list(itertools.islice(queue, REGISTRATIONS_PER_STREAM))
            if not batch:
                return
            try:
                conn = await connect(run, -1 - number, "registrar")
                conn.write(run.header)
                await conn.expect(FEATURES_END)
                for user in batch:
                    conn.write(
                        b"<iq type='set' id='reg'><query xmlns='jabber:iq:register'>"
                        b"<username>%s</username><password>%s</password></query></iq>"
                        % (user.encode(), run.password.encode())
                    )
                    reply = (await conn.expect(IQ_ANY)).group()
                    if attributes(reply).get(b"type") == b"result":
                        created += 1
                    elif b"<conflict" in reply:
                        existed += 1
                    else:
                        failed += 1
                        run.note_error(f"{user}: register: {reply.decode('utf-8', 'replace')}")
                await close_all(run, {conn.index: conn}, limit=5.0, settle=False)
            except (XmppError, OSError) as exc:
                failed += len(batch)
                run.note_error(f"registration batch failed: {exc}")

    started = time.perf_counter()
    # Registration is the server hashing passwords: a few streams keep it busy.
    await asyncio.gather(*(worker(n) for n in range(max(1, min(concurrency, 16)))))
    seconds = time.perf_counter() - started
    return {
        "created": created,
        "existed": existed,
        "failed": failed,
        "seconds": round(seconds, 3),
        "registrations_per_s": round(created / seconds, 1) if seconds and created else None,
    }


def both_count(conn: Conn) -> int:
    return sum(1 for subscription in conn.roster.values() if subscription == b"both")


async def build_rosters(run: Run, users: int, contacts: int, concurrency: int) -> dict[str, object]:
    batch = await login_many(run, ring_users(users), concurrency, auto_accept=True)
    conns = batch.conns
    if batch.failures:
        await close_all(run, conns)
        raise XmppError(f"{batch.failures} ring users could not log in: {run.errors[:3]}")
    already = all(both_count(conn) >= contacts for conn in conns.values())
    started = time.perf_counter()
    sent = 0
    if not already:
        for first, second in ring_pairs(users, contacts):
            for sender, target in ((first, second), (second, first)):
                if conns[sender].roster.get(run.jid(f"{RING_PREFIX}{target}")) != b"both":
                    conns[sender].write(
                        b"<presence type='subscribe' to='%s'/>" % run.jid(f"{RING_PREFIX}{target}")
                    )
                    sent += 1
            if sent % 200 == 0:
                await asyncio.sleep(0)
        deadline = time.perf_counter() + 60 + users * contacts * 0.02
        while time.perf_counter() < deadline:
            if all(both_count(conn) >= contacts for conn in conns.values()):
                break
            await asyncio.sleep(0.2)
    build_seconds = time.perf_counter() - started
    # Count from the server's own roster, not from the pushes seen.
    complete = 0
    for conn in conns.values():
        roster = await conn.request(b"get", b"<query xmlns='jabber:iq:roster'/>")
        both = sum(1 for _, sub in roster_items(roster) if sub == b"both")
        complete += both == contacts
    await close_all(run, conns)
    return {
        "already_built": already,
        "subscribe_sent": sent,
        "seconds": round(build_seconds, 3),
        "users_complete": complete,
        "users": users,
    }


async def scenario_provision(run: Run, args: argparse.Namespace) -> dict[str, object]:
    check_ring(args.users, args.contacts)
    names = [user for _, user in ring_users(args.users)]
    names += [f"{IDLE_PREFIX}{index}" for index in range(args.idle_users)]
    log(f"registering {len(names)} users")
    registration = await register_many(run, names, args.concurrency)
    log(f"registration: {registration}")
    rosters: dict[str, object] = {}
    if args.contacts and not registration["failed"]:
        log(f"building the ring: {args.users} users, {args.contacts} contacts each")
        rosters = await build_rosters(run, args.users, args.contacts, args.concurrency)
    return {"registration": registration, "rosters": rosters}


# Scenario: login


def cache_scram_keys() -> bool:
    """Keep each salted password once derived, as clients that store credentials do.

    Deriving it is the client's PBKDF2 (thousands of iterations); without a cache the load
    generator's core would measure its own hashing rather than the server. scramp calls
    `scramp.core.hi` for it; if a scramp release moves it, logins just go uncached.
    """
    try:
        import scramp.core as scram_core
    except ImportError:
        return False
    hi = getattr(scram_core, "hi", None)
    if hi is None:
        return False
    if getattr(hi, "bench_cache", None) is None:
        cache: dict[tuple[object, bytes, bytes, int], bytes] = {}

        @functools.wraps(hi)
        def cached_hi(hf: object, password: bytes, salt: bytes, iterations: object) -> bytes:
            key = (hf, bytes(password), bytes(salt), int(iterations))  # type: ignore[call-overload]
            if key not in cache:
                cache[key] = hi(hf, password, salt, iterations)
            return cache[key]

        cached_hi.bench_cache = cache  # type: ignore[attr-defined]
        scram_core.hi = cached_hi
    return True


async def scenario_login(run: Run, args: argparse.Namespace) -> dict[str, object]:
    mechanism = args.mechanism.upper()
    users = ring_users(args.users)
    result: dict[str, object] = {"mechanism": mechanism, "concurrency": args.concurrency}
    if mechanism.startswith("SCRAM") and not args.no_key_cache:
        result["client_key_cache"] = cache_scram_keys()
        # Learn every user's salt once, unmeasured: the client's part of SCRAM is then HMACs.
        warm = await login_many(run, users, args.concurrency, mechanism=mechanism, bind=False)
        for conn in warm.conns.values():
            # Authenticated but not restarted: no stream to close politely.
            conn.close_abruptly(reset=False)
        await wait_quiet(run, quiet=0.5, limit=10.0)
    batch = await login_many(run, users, args.concurrency, mechanism=mechanism)
    result.update(batch_summary(batch))
    await close_all(run, batch.conns)
    return result


# Scenario: fanout


async def run_step(
    run: Run,
    conns: Sequence[Conn],
    step_id: int,
    changes: int,
    contacts: int,
    *,
    rate: float | None,
    drain: float,
) -> dict[str, object]:
    """Send `changes` marked presences round robin over `conns`, at `rate` per second (None:
    as fast as possible), then wait up to `drain` seconds for every delivery."""
    step = Step(step_id, changes, contacts, [0] * changes)
    run.steps[str(step_id).encode()] = step
    senders = len(conns)
    cpu = time.process_time()
    started = time.perf_counter()
    step.first_tx = time.perf_counter_ns()
    sent = 0
    while sent < changes:
        if rate is None:
            due = min(changes, sent + 256)
        else:
            due = min(changes, int((time.perf_counter() - started) * rate) + 1)
        while sent < due:
            conns[sent % senders].write(
                marker_presence(step_id, conns[sent % senders].index, sent, time.perf_counter_ns())
            )
            sent += 1
        await asyncio.sleep(0 if rate is None else 0.001)
    send_seconds = time.perf_counter() - started
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(step.done.wait(), drain)
    wall = time.perf_counter() - started
    lost, duplicated = count_loss(step.counts, contacts)
    span = (step.last_rx - step.first_tx) / 1e9 if step.last_rx else 0.0
    result: dict[str, object] = {
        "step": step_id,
        "offered_changes_per_s": None if rate is None else round(rate, 1),
        "sent_changes_per_s": round(changes / send_seconds, 1) if send_seconds else None,
        "changes": changes,
        "expected": step.expected,
        "received": step.received,
        "lost": lost,
        "duplicated": duplicated,
        "deliveries_per_s": round(step.received / span, 1) if span else None,
        **latency_summary(step.latencies),
        "client_cpu_pct": round(100 * (time.process_time() - cpu) / wall, 1),
    }
    del run.steps[str(step_id).encode()]
    return result


# The verdicts after which a rate between the last sustained and the failed one is worth a try.
REFINABLE = frozenset({"p99 over the limit", "deliveries fell behind the offered rate"})


async def refine(
    low: float, high: float, count: int, sustained: Callable[[float], Awaitable[bool | None]]
) -> float:
    """The highest rate found sustained between `low` (sustained) and `high` (not), trying
    `count` rates, each halving the ratio between them; `sustained` answers None to stop."""
    for _ in range(count):
        middle = (low * high) ** 0.5
        verdict = await sustained(middle)
        if verdict is None:
            break
        if verdict:
            low = middle
        else:
            high = middle
    return low


def step_verdict(result: dict[str, object], p99_limit_ms: float, keep_up: float) -> str | None:
    """Why a fan-out step is not sustainable, or None when it is."""
    if result["lost"] or result["duplicated"]:
        return "deliveries lost"
    p99 = result["p99_ms"]
    if p99 is None or float(p99) > p99_limit_ms:  # type: ignore[arg-type]
        return "p99 over the limit"
    offered = result["offered_changes_per_s"]
    delivered = result["deliveries_per_s"]
    if offered is not None and delivered is not None:
        wanted = float(offered) * int(result["expected"]) / int(result["changes"])  # type: ignore[arg-type]
        if float(delivered) < keep_up * wanted:  # type: ignore[arg-type]
            # Latency under the limit but a backlog growing: the server is falling behind.
            return "deliveries fell behind the offered rate"
    return None


async def climb(
    run: Run,
    conns: Sequence[Conn],
    contacts: int,
    args: argparse.Namespace,
    *,
    first_step: int,
    min_changes: int,
) -> tuple[list[dict[str, object]], dict[str, object] | None, str]:
    """The offered rate's ladder: steps from --rate-start, x--rate-factor each, until one is
    not sustainable, then --refine steps between the last sustained and the first not; every
    step, the highest sustained (or None) and why the climb stopped. A step has at least
    `min_changes` changes (the fan-out's: one per user)."""
    steps: list[dict[str, object]] = []
    best: dict[str, object] | None = None
    stop = "max steps reached"
    rate = args.rate_start
    step_id = first_step - 1
    for _ in range(args.max_steps):
        step_id += 1
        changes = max(min_changes, round(rate * args.step_seconds))
        outcome = await run_step(
            run, conns, step_id, changes, contacts, rate=rate, drain=args.drain
        )
        steps.append(outcome)
        log(f"step {outcome}")
        if run.disconnects:
            stop = f"{run.disconnects} sessions disconnected"
            break
        failure = step_verdict(outcome, args.p99_limit_ms, args.keep_up)
        if failure is not None:
            stop = failure
            break
        best = outcome
        sent_rate = outcome["sent_changes_per_s"]
        if sent_rate is not None and float(sent_rate) < 0.9 * rate:  # type: ignore[arg-type]
            stop = "load generator could not send faster"
            break
        rate *= args.rate_factor
        await wait_quiet(run, quiet=0.3, limit=args.drain)
    if best is not None and stop in REFINABLE:
        low = float(best["offered_changes_per_s"])  # type: ignore[arg-type]

        async def sustained(middle: float) -> bool | None:
            nonlocal best, step_id
            await wait_quiet(run, quiet=0.3, limit=args.drain)
            step_id += 1
            changes = max(min_changes, round(middle * args.step_seconds))
            outcome = await run_step(
                run, conns, step_id, changes, contacts, rate=middle, drain=args.drain
            )
            outcome["refinement"] = True
            steps.append(outcome)
            log(f"refinement {outcome}")
            if run.disconnects:
                return None
            if step_verdict(outcome, args.p99_limit_ms, args.keep_up) is not None:
                return False
            best = outcome
            return True

        await refine(low, rate, args.refine, sustained)
    return steps, best, stop


async def scenario_fanout(run: Run, args: argparse.Namespace) -> dict[str, object]:
    check_ring(args.users, args.contacts)
    batch = await login_many(run, ring_users(args.users), args.concurrency)
    if batch.failures:
        await close_all(run, batch.conns)
        raise XmppError(f"{batch.failures} users could not log in: {run.errors[:3]}")
    conns = [batch.conns[index] for index in sorted(batch.conns)]
    for conn in conns:
        conn.use_handler(fanout_data)
    await wait_quiet(run, quiet=1.0, limit=20.0)
    result: dict[str, object] = {
        "users": args.users,
        "contacts": args.contacts,
        "changes_per_user": args.changes,
        "p99_limit_ms": args.p99_limit_ms,
        "keep_up": args.keep_up,
    }
    steps, best, stop = await climb(
        run, conns, args.contacts, args, first_step=1, min_changes=args.users
    )
    step_id = len(steps)
    result["steps"] = steps
    result["stop_reason"] = stop
    result["max_sustainable"] = best
    await wait_quiet(run, quiet=1.0, limit=30.0)
    if best is not None and not run.disconnects:
        half = float(best["offered_changes_per_s"]) / 2  # type: ignore[arg-type]
        step_id += 1
        result["half_rate"] = await run_step(
            run,
            conns,
            step_id,
            max(args.users, round(half * args.step_seconds)),
            args.contacts,
            rate=half,
            drain=args.drain,
        )
        log(f"fanout half rate {result['half_rate']}")
        await wait_quiet(run, quiet=1.0, limit=30.0)
    if not run.disconnects:
        step_id += 1
        result["burst"] = await run_step(
            run,
            conns,
            step_id,
            args.users * args.changes,
            args.contacts,
            rate=None,
            drain=args.burst_drain,
        )
        log(f"fanout burst {result['burst']}")
    result["disconnects"] = run.disconnects
    for conn in conns:
        conn.use_handler(stanza_data)
    await close_all(run, batch.conns)
    return result


# Scenario: idle


async def scenario_idle(run: Run, args: argparse.Namespace) -> dict[str, object]:
    users = [(index, f"{IDLE_PREFIX}{index}") for index in range(args.sessions)]
    before = rss_kib(args.server_pid) if args.server_pid else None
    batch = await login_many(run, users, args.concurrency)
    await wait_quiet(run, quiet=0.5, limit=10.0)
    await asyncio.sleep(args.settle)
    after = rss_kib(args.server_pid) if args.server_pid else None
    held = sum(1 for conn in batch.conns.values() if not conn.lost)
    result: dict[str, object] = {
        "sessions": args.sessions,
        "held": held,
        "rss_before_kib": before,
        "rss_after_kib": after,
        "kib_per_session": round((after - before) / held, 2)
        if before is not None and after is not None and held
        else None,
        "login": batch_summary(batch),
    }
    await close_all(run, batch.conns)
    return result


# Scenario: ghost


async def scenario_ghost(run: Run, args: argparse.Namespace) -> dict[str, object]:
    check_ring(args.users, args.contacts)
    spacing = args.contacts + 1
    victims = spaced_indices(args.users, args.victims, spacing)
    silent = spaced_indices(args.users, args.silent_victims, spacing, offset=spacing // 2 + 1)
    silent = [index for index in silent if index not in victims] if args.silent else []
    needed = set(victims) | set(silent)
    for victim in list(needed):
        needed.update(ring_neighbours(victim, args.users, args.contacts))
    users = [(index, f"{RING_PREFIX}{index}") for index in sorted(needed)]
    batch = await login_many(run, users, args.concurrency)
    conns = batch.conns
    if batch.failures:
        await close_all(run, conns)
        raise XmppError(f"{batch.failures} users could not log in: {run.errors[:3]}")
    await wait_quiet(run, quiet=0.5, limit=10.0)

    gone: set[int] = set()

    def online_contacts(victim: int) -> set[int]:
        return {
            index
            for index in ring_neighbours(victim, args.users, args.contacts)
            if index in conns and index not in gone and not conns[index].lost
        }

    delays: dict[str, list[int]] = {"fin": [], "rst": []}
    unseen = {"fin": 0, "rst": 0}
    for number, victim in enumerate(victims):
        mode = "rst" if number % 2 else "fin"
        watch = Watch(time.perf_counter_ns(), online_contacts(victim))
        run.watches[run.jid(f"{RING_PREFIX}{victim}")] = watch
        gone.add(victim)
        conns[victim].close_abruptly(reset=mode == "rst")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(watch.done.wait(), args.close_timeout)
        delays[mode].extend(watch.delays_ns)
        unseen[mode] += len(watch.waiting)
    result: dict[str, object] = {"users_online": len(conns), "victims": len(victims)}
    for mode in ("fin", "rst"):
        result[f"abrupt_{mode}"] = {
            **latency_summary(delays[mode]),
            "deliveries": len(delays[mode]),
            "not_seen": unseen[mode],
        }
    if silent:
        watches = []
        for victim in silent:
            conn = conns[victim]
            conn.silent = True
            assert conn.transport is not None
            conn.transport.pause_reading()
            # The server's silence timer started at the last bytes this client sent.
            watch = Watch(conn.last_tx, online_contacts(victim))
            run.watches[run.jid(f"{RING_PREFIX}{victim}")] = watch
            watches.append(watch)
        log(f"silent death: waiting up to {args.silent_timeout} s")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                asyncio.gather(*(w.done.wait() for w in watches)), args.silent_timeout
            )
        seen = sorted(delay for w in watches for delay in w.delays_ns)
        result["silent_death"] = {
            "victims": len(silent),
            "timeout_s": args.silent_timeout,
            "configured_bound_s": args.silent_bound,
            "detected": all(w.done.is_set() for w in watches),
            "deliveries": len(seen),
            "not_seen": sum(len(w.waiting) for w in watches),
            "p50_s": round(seen[len(seen) // 2] / 1e9, 3) if seen else None,
            "max_s": round(seen[-1] / 1e9, 3) if seen else None,
        }
    for victim in victims + silent:
        conns.pop(victim, None)
    await close_all(run, conns)
    return result


# Scenario: abuse

ABUSE_PHASES = ("roster_flood", "presence_storm", "presence_flood")


@dataclass(slots=True)
class Flood:
    """The roster-get flooder: its read pacing and what it got done, over all its sessions."""

    budget: ReadBudget
    paused: bool = False
    gets_sent: int = 0
    rosters: int = 0
    error_replies: int = 0
    bytes_read: int = 0
    sessions: int = 0
    dropped: int = 0
    login_failures: int = 0
    # Why sessions ended or logins failed, and how often; a few kinds are enough to tell.
    reasons: dict[str, int] = field(default_factory=dict)

    def note(self, reason: str) -> None:
        reason = reason[:300]
        if reason in self.reasons or len(self.reasons) < 5:
            self.reasons[reason] = self.reasons.get(reason, 0) + 1


@dataclass(slots=True)
class Storm:
    """The account with many resources: whether they keep changing presence, and counts."""

    running: bool = False
    changes: int = 0
    presences: int = 0


def flood_data(conn: Conn, data: bytes) -> None:
    """The flooder's reads: results and error replies counted, reading paused once over budget."""
    flood = conn.run.flood
    assert flood is not None
    flood.bytes_read += len(data)
    for match in conn.scanner.feed(data):
        if match[0] == b"</query>":
            flood.rosters += 1
        else:
            flood.error_replies += 1
    window = conn.scanner.window
    if b"urn:xmpp:ping" in window:
        conn.answer_pings(window)
    if not flood.budget.spend(len(data), time.perf_counter()) and conn.transport is not None:
        conn.transport.pause_reading()
        flood.paused = True


def storm_change(number: int) -> bytes:
    """A presence change (the show alternates, so each one is a change) and a ping whose answer
    says the server has handled it: a server handles a session's stanzas in order."""
    show = b"away" if number % 2 else b"xa"
    return (
        b"<presence><show>%s</show><status>abuse %d</status></presence>"
        b"<iq type='get' id='ml'><ping xmlns='urn:xmpp:ping'/></iq>" % (show, number)
    )


def storm_data(conn: Conn, data: bytes) -> None:
    """A storm resource's reads: everything at once (a server may drop a reader that lags),
    presences counted, and the next change sent once the server has answered the last."""
    storm = conn.run.storm
    assert storm is not None
    scanner = conn.scanner
    carried = scanner.pending
    pongs = scanner.feed(data)
    window = scanner.window
    # The window starts with the bytes the last feed kept; tags wholly inside those were
    # counted then.
    storm.presences += window.count(b"<presence") - carried.count(b"<presence")
    if pongs:
        storm.changes += len(pongs)
        if storm.running:
            conn.write(storm_change(storm.changes))
    if b"urn:xmpp:ping" in window:
        conn.answer_pings(window)


def bystander_data(conn: Conn, data: bytes) -> None:
    """The bystander's reads: its pings' answers timed on arrival, anything else as usual."""
    now = time.perf_counter_ns()
    run = conn.run
    for stanza in conn.splitter.feed(data):
        if stanza.startswith(b"<iq"):
            attrs = attributes(stanza)
            sent = run.pings.pop(attrs.get(b"id", b""), None)
            if sent is not None:
                run.rtts_ns.append(now - sent)
                run.ping_errors += attrs.get(b"type") == b"error"
                continue
        conn.handle_stanza(stanza)


async def ping_series(conn: Conn, seconds: float, rate: float, grace: float) -> dict[str, object]:
    """XEP-0199 pings to the server at a steady `rate` for `seconds`, then up to `grace` seconds
    for the last answers.

    Each ping leaves on schedule whether or not the one before was answered, so a server that
    stalls shows as long round trips rather than as fewer pings.
    """
    run = conn.run
    run.pings, run.rtts_ns, run.ping_errors = {}, [], 0
    to = quote(run.domain.encode())
    started = time.perf_counter()
    for number in range(max(1, round(seconds * rate))):
        delay = started + number / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        if conn.lost:
            raise XmppError(f"the bystander's session ended: {conn.error or 'connection lost'}")
        ping_id = b"bp%d" % next(conn.ids)
        run.pings[ping_id] = time.perf_counter_ns()
        conn.write(
            b"<iq type='get' id='%s' to=%s><ping xmlns='urn:xmpp:ping'/></iq>" % (ping_id, to)
        )
    deadline = time.perf_counter() + grace
    while run.pings and not conn.lost and time.perf_counter() < deadline:
        await asyncio.sleep(0.002)
    now = time.perf_counter_ns()
    waited = [now - sent for sent in run.pings.values()]
    run.pings = {}
    return ping_summary(run.rtts_ns, waited, run.ping_errors)


async def scenario_bystander(run: Run, args: argparse.Namespace) -> dict[str, object]:
    """Internal, for `abuse`: log in, say so on stdout, then for each `ping SECONDS RATE GRACE`
    line on stdin run a ping series and print its summary; stop at anything else or EOF. A
    fifth word, `LOGINS` per second, runs a login series of the same user beside the pings.

    Each reply is a JSON line {"reply": ...}; the last line is this scenario's own result, as
    for any scenario, so a failure reaches the parent with its reason.
    """
    if args.core is not None:
        os.sched_setaffinity(0, {args.core})
    conn = await login(run, 0, args.user)
    conn.use_handler(bystander_data)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

    def reply(message: dict[str, object]) -> None:
        print(json.dumps({"reply": message}), flush=True)

    reply({"ready": True, "jid": conn.full_jid.decode()})
    series = 0
    while True:
        words = (await reader.readline()).split()
        if len(words) not in (4, 5) or words[0] != b"ping":
            break
        seconds, rate, grace, logins = (float(word) for word in [*words[1:], b"0"][:4])
        if logins > 0:
            pings, logged_in = await asyncio.gather(
                ping_series(conn, seconds, rate, grace),
                login_series(run, args.user, seconds, logins, grace),
            )
            reply({**pings, "logins": logged_in})
        else:
            reply(await ping_series(conn, seconds, rate, grace))
        series += 1
    await close_all(run, {conn.index: conn}, limit=5.0, settle=False)
    return {"series": series}


def login_users(user: str) -> list[str]:
    """The accounts the bystander `user`'s login series takes in turn."""
    return [f"{user}{n}" for n in range(BYSTANDER_LOGIN_ACCOUNTS)]


async def login_series(
    run: Run, user: str, seconds: float, rate: float, grace: float
) -> dict[str, object]:
    """Logins (connect, authenticate, bind, roster get, initial presence, answered ping) of
    `user`'s login accounts in turn, started at a steady `rate` for `seconds` whether or not
    the last is done, then up to `grace` seconds for the last to finish; each closes when done.

    A login still running at the end counts at the time it had taken by then, a lower bound,
    as does one that failed, so a server that stalls or refuses cannot look fast.
    """
    began: dict[int, int] = {}
    took: list[int] = []
    failures: list[str] = []
    accounts = login_users(user)

    async def one(number: int) -> None:
        try:
            conn = await login(run, number, accounts[number % len(accounts)])
        except (XmppError, OSError) as exc:
            failures.append(str(exc)[:300])
        else:
            conn.close()
        took.append(time.perf_counter_ns() - began.pop(number))

    tasks: list[asyncio.Task[None]] = []
    started = time.perf_counter()
    for number in range(1, max(1, round(seconds * rate)) + 1):
        delay = started + (number - 1) / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        began[number] = time.perf_counter_ns()
        tasks.append(asyncio.create_task(one(number)))
    _, running = await asyncio.wait(tasks, timeout=grace)
    now = time.perf_counter_ns()
    unfinished = [now - sent for sent in began.values()]
    for task in running:
        task.cancel()
    await asyncio.wait(tasks)
    return {
        "logins": len(tasks),
        "done": len(tasks) - len(running) - len(failures),
        "failed": len(failures),
        "unfinished": len(running),
        **latency_summary([*took, *unfinished]),
        "failures": failures[:3],
    }


class Bystander:
    """The abuse scenario's measuring client: this script's `bystander` scenario in a child
    process, logged in as a user of its own, running ping series when asked.

    In a process of its own because the abusers keep this one's event loop busy: a ping
    answered while this process reads a thousand sockets would be timed late, and the delay
    would be the load generator's, not the server's.
    """

    def __init__(self, process: asyncio.subprocess.Process, timeout: float) -> None:
        self.process = process
        self.timeout = timeout

    @classmethod
    async def start(cls, run: Run, args: argparse.Namespace) -> Bystander:
        command = [
            sys.executable,
            os.path.abspath(__file__),
            "--host",
            run.host,
            "--port",
            str(run.port),
            "--domain",
            run.domain,
            "--password",
            run.password,
            "--timeout",
            str(run.timeout),
            "--deadline",
            str(args.deadline),
            *(["--no-uvloop"] if args.no_uvloop else []),
            "bystander",
            "--user",
            BYSTANDER_USER,
            *(["--core", str(args.bystander_core)] if args.bystander_core is not None else []),
        ]
        process = await asyncio.create_subprocess_exec(
            *command, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
        )
        bystander = cls(process, run.timeout)
        try:
            await bystander.reply(2 * run.timeout)
        except BaseException:
            await bystander.close()
            raise
        return bystander

    async def reply(self, limit: float) -> dict[str, object]:
        assert self.process.stdout is not None
        while True:
            try:
                line = await asyncio.wait_for(self.process.stdout.readline(), limit)
            except TimeoutError:
                raise XmppError(f"the bystander did not answer within {limit:g} s") from None
            if not line:
                raise XmppError("the bystander exited")
            if not line.startswith(b"{"):
                continue
            message = json.loads(line)
            if "reply" in message:
                return message["reply"]
            # Its own result line: it stopped, and says why.
            raise XmppError(f"the bystander stopped: {message.get('error')}")

    async def ping(
        self, seconds: float, rate: float, grace: float, logins: float = 0.0
    ) -> dict[str, object]:
        """A ping series; with `logins` per second, a login series beside it ("logins")."""
        assert self.process.stdin is not None
        self.process.stdin.write(b"ping %r %r %r %r\n" % (seconds, rate, grace, logins))
        await self.process.stdin.drain()
        return await self.reply(seconds + grace + self.timeout)

    async def close(self) -> None:
        """End it by closing its stdin; kill it if it does not exit."""
        if self.process.returncode is not None:
            return
        assert self.process.stdin is not None
        with contextlib.suppress(OSError):
            self.process.stdin.close()
        try:
            await asyncio.wait_for(self.process.wait(), 10)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()


async def settle(bystander: Bystander, args: argparse.Namespace) -> dict[str, object]:
    """Short ping probes until every ping comes back within --settle-ms, at most --settle-limit
    seconds. After an abuser stops, a server may still be working through what it had read or
    queued; the next phase must not inherit that."""
    started = time.perf_counter()
    while True:
        probe = await bystander.ping(0.5, args.rate, 1.0)
        elapsed = time.perf_counter() - started
        worst = probe["max_ms"]
        settled = (
            not probe["unanswered"] and isinstance(worst, int | float) and worst <= args.settle_ms
        )
        if settled or elapsed >= args.settle_limit:
            return {"settle_s": round(elapsed, 3), "settled": settled}


async def observe(
    bystander: Bystander, args: argparse.Namespace, logins: float = 0.0
) -> dict[str, object]:
    """The bystander's measured ping series (and, with `logins` per second, its login series),
    with the CPU that this process (the abusers) and the server (with --server-pid) used
    meanwhile."""
    pid = args.server_pid
    cpu, server_cpu = time.process_time(), cpu_seconds(pid) if pid else 0.0
    waited = runqueue_seconds(pid) if pid else 0.0
    started = time.perf_counter()
    pings = await bystander.ping(args.seconds, args.rate, args.ping_grace, logins)
    wall = time.perf_counter() - started
    observed: dict[str, object] = {"bystander": pings}
    if "logins" in pings:
        observed["bystander_logins"] = pings.pop("logins")
    observed["client_cpu_pct"] = round(100 * (time.process_time() - cpu) / wall, 1)
    if pid:
        observed["server"] = {
            "cpu_pct": round(100 * (cpu_seconds(pid) - server_cpu) / wall, 1),
            # Time its main thread was ready to run but waited for a core: other processes'.
            "runqueue_wait_pct": round(100 * (runqueue_seconds(pid) - waited) / wall, 1),
            "rss_kib": rss_kib(pid),
        }
    return observed


def runqueue_seconds(pid: int) -> float:
    """How long process `pid`'s main thread has waited for a core while ready to run, in
    seconds, from /proc (0 where the kernel keeps no such count)."""
    try:
        with open(f"/proc/{pid}/schedstat", encoding="ascii") as stat:
            return int(stat.read().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


async def until_stopped(work: Coroutine[object, object, Conn], stop: asyncio.Event) -> Conn | None:
    """`work`'s result, or None (and `work` cancelled) if `stop` is set first: a login that
    hangs on a busy server must not stretch a phase past its time."""
    task = asyncio.ensure_future(work)
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
        if not task.done():
            task.cancel()
            # Let the login's own clean-up (aborting its connection) run.
            await asyncio.wait({task})
    return None if task.cancelled() else task.result()


async def provision_roster(run: Run, items: int, mechanism: str) -> dict[str, object]:
    """Give the flooder's user `items` roster items, by roster sets from one of its sessions,
    many in flight; only the missing ones, so a second run adds none. The contacts need not
    exist: a roster result costs the server the same."""
    run.expect_disconnect.add(FLOOD_INDEX)
    conn = await login(run, FLOOD_INDEX, FLOOD_USER, mechanism=mechanism)
    missing = [n for n in range(items) if contact_jid(n, run.domain) not in conn.roster]
    added = failed = 0
    in_flight = asyncio.Semaphore(ROSTER_SETS_IN_FLIGHT)

    async def add(number: int) -> None:
        nonlocal added, failed
        async with in_flight:
            reply = await conn.request(
                b"set", roster_set(contact_jid(number, run.domain), b"Contact %d" % number)
            )
        if attributes(reply).get(b"type") == b"result":
            added += 1
        else:
            failed += 1
            run.note_error(f"roster set refused: {reply[:300].decode('utf-8', 'replace')}")

    started = time.perf_counter()
    try:
        await asyncio.gather(*(add(number) for number in missing))
    finally:
        await close_all(run, {FLOOD_INDEX: conn}, settle=False)
    return {
        "items": items,
        "existing": items - len(missing),
        "added": added,
        "failed": failed,
        "seconds": round(time.perf_counter() - started, 3),
    }


async def flood_loop(run: Run, flood: Flood, stop: asyncio.Event, mechanism: str) -> None:
    """One flooding session until `stop`: roster gets written back to back whenever the socket
    has taken the last batch, results read at the budget's pace. A session the server drops
    logs in again, as an abuser would."""
    run.expect_disconnect.add(FLOOD_INDEX)
    conn: Conn | None = None
    number = 0
    while not stop.is_set():
        if conn is None or conn.lost:
            if conn is not None:
                flood.dropped += 1
                flood.note(f"dropped: {conn.error or 'connection lost, no stream error'}")
            try:
                conn = await until_stopped(
                    login(run, FLOOD_INDEX, FLOOD_USER, mechanism=mechanism), stop
                )
            except (XmppError, OSError) as exc:
                conn = None
                flood.login_failures += 1
                flood.note(f"login: {exc}")
                await asyncio.sleep(0.1)
                continue
            if conn is None:
                break
            flood.sessions += 1
            flood.paused = False
            conn.scanner = MarkerScanner(FLOOD_REPLY)
            conn.use_handler(flood_data)
        transport = conn.transport
        assert transport is not None
        if transport.get_write_buffer_size() == 0:
            conn.write(
                b"".join(
                    b"<iq type='get' id='f%d'><query xmlns='jabber:iq:roster'/></iq>" % n
                    for n in range(number, number + FLOOD_BATCH)
                )
            )
            number += FLOOD_BATCH
            flood.gets_sent += FLOOD_BATCH
        if flood.paused and flood.budget.available(time.perf_counter()):
            flood.paused = False
            transport.resume_reading()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.005)
    if conn is not None and not conn.lost:
        conn.close_abruptly(reset=True)


async def flood_phase(
    run: Run, args: argparse.Namespace, bystander: Bystander, mechanism: str
) -> dict[str, object]:
    phase = await settle(bystander, args)
    rate = args.read_kib * 1024
    # A tenth of a second's worth at once, but at least one socket read's worth.
    flood = run.flood = Flood(ReadBudget(rate, max(16384.0, rate / 10), time.perf_counter()))
    stop = asyncio.Event()
    started = time.perf_counter()
    task = asyncio.create_task(flood_loop(run, flood, stop, mechanism))
    try:
        await asyncio.sleep(args.warmup)
        phase.update(await observe(bystander, args))
    finally:
        stop.set()
        await task
        run.flood = None
    seconds = time.perf_counter() - started
    phase["abuser"] = {
        "seconds": round(seconds, 3),
        "gets_sent": flood.gets_sent,
        "rosters_received": flood.rosters,
        "rosters_per_s": round(flood.rosters / seconds, 1),
        "error_replies": flood.error_replies,
        "kib_read": round(flood.bytes_read / 1024, 1),
        "sessions": flood.sessions,
        "dropped_by_server": flood.dropped,
        "login_failures": flood.login_failures,
        "reasons": flood.reasons,
    }
    return phase


async def storm_phase(
    run: Run, args: argparse.Namespace, bystander: Bystander, mechanism: str
) -> dict[str, object]:
    storm = run.storm = Storm()
    users = [(index, STORM_USER) for index in range(args.resources)]
    # A server dropping or refusing the abuser's sessions is a defence, not a fault of the run.
    run.expect_disconnect.update(index for index, _ in users)
    refusals: list[str] = []

    def refused(message: str) -> None:
        if len(refusals) < 3:
            refusals.append(message[:300])

    batch = await login_many(
        run,
        users,
        args.storm_concurrency,
        mechanism=mechanism,
        distinct_resources=True,
        note=refused,
    )
    conns = batch.conns
    try:
        if not conns:
            raise XmppError(f"no resource of {STORM_USER} could log in: {refusals}")
        log(f"abuse: {len(conns)} resources of {STORM_USER} online in {batch.seconds:.1f} s")
        for conn in conns.values():
            conn.scanner = MarkerScanner(STORM_PONG)
            conn.use_handler(storm_data)
        # Every login's presence went to every resource online before it; let that pass.
        await wait_quiet(run, quiet=1.0, limit=60.0)
        phase = await settle(bystander, args)
        storm.running = True
        started = time.perf_counter()
        for number, conn in enumerate(conns.values()):
            conn.write(storm_change(number))
        try:
            await asyncio.sleep(args.warmup)
            phase.update(await observe(bystander, args))
        finally:
            storm.running = False
        seconds = time.perf_counter() - started
        phase["abuser"] = {
            "resources": args.resources,
            "online": len(conns),
            "refused": batch.failures,
            "refusals": refusals,
            "login_s": round(batch.seconds, 3),
            "seconds": round(seconds, 3),
            "changes": storm.changes,
            "changes_per_s": round(storm.changes / seconds, 1),
            "presences_received": storm.presences,
            "presences_per_s": round(storm.presences / seconds, 1),
            "dropped_by_server": sum(1 for conn in conns.values() if conn.lost),
        }
    finally:
        await close_all(run, conns)
        run.storm = None
    return phase


@dataclass(slots=True)
class PresenceFlood:
    """The presence flooders: whether they keep writing, and what they sent and received."""

    running: bool = True
    changes: int = 0
    presences: int = 0


def flood_users(count: int) -> list[tuple[int, str]]:
    """The presence flooders' connection indices and usernames."""
    return [(PRESENCE_FLOOD_INDEX - n, f"{PRESENCE_FLOOD_PREFIX}{n}") for n in range(count)]


def flood_change(number: int) -> bytes:
    """One presence change of a flooder (the show alternates, so each one is a change)."""
    show = b"away" if number % 2 else b"dnd"
    return b"<presence><show>%s</show><status>flood %d</status></presence>" % (show, number)


def flood_presence_data(conn: Conn, data: bytes) -> None:
    """A flooder's reads: everything at once, the presences counted (a tag split between two
    reads is counted once: the carried tail is shorter than the tag), server pings answered."""
    flood = conn.run.presence_flood
    assert flood is not None
    window = conn.buffer + data
    flood.presences += window.count(b"<presence")
    conn.buffer = window[-(len(b"<presence") - 1) :]
    if b"urn:xmpp:ping" in window:
        conn.answer_pings(window)


async def flood_contacts(
    run: Run, flooders: int, contacts: int, mechanism: str
) -> dict[str, object]:
    """Make each flooder mutually subscribed ('both') with its `contacts` ring neighbours among
    the flooders, by real subscription exchanges; only the missing ones, so a second run sends
    none."""
    check_ring(flooders, contacts)
    users = flood_users(flooders)
    names = [user for _, user in users]
    run.expect_disconnect.update(index for index, _ in users)
    batch = await login_many(
        run, users, FLOOD_LOGINS_IN_FLIGHT, mechanism=mechanism, auto_accept=True
    )
    conns = batch.conns
    try:
        if batch.failures:
            raise XmppError(f"{batch.failures} flooders could not log in: {run.errors[:3]}")
        by_number = [conns[index] for index, _ in users]
        sent = 0
        for first, second in ring_pairs(flooders, contacts):
            for sender, target in ((first, second), (second, first)):
                jid = run.jid(names[target])
                if by_number[sender].roster.get(jid) != b"both":
                    by_number[sender].write(b"<presence type='subscribe' to='%s'/>" % jid)
                    sent += 1
        deadline = time.perf_counter() + 60
        while time.perf_counter() < deadline:
            if all(both_count(conn) >= contacts for conn in by_number):
                break
            await asyncio.sleep(0.1)
        complete = sum(1 for conn in by_number if both_count(conn) >= contacts)
    finally:
        await close_all(run, conns)
    if complete < flooders:
        raise XmppError(f"only {complete} of {flooders} flooders have {contacts} contacts")
    return {"flooders": flooders, "contacts": contacts, "subscribe_sent": sent}


async def flood_presence_loop(run: Run, conns: Sequence[Conn], stop: asyncio.Event) -> None:
    """Until `stop`: each flooder writes a batch of presence changes back to back whenever its
    socket has taken the last batch."""
    flood = run.presence_flood
    assert flood is not None
    while not stop.is_set():
        for conn in conns:
            transport = conn.transport
            if conn.lost or transport is None or transport.get_write_buffer_size():
                continue
            first = flood.changes
            conn.write(b"".join(flood_change(n) for n in range(first, first + FLOOD_BATCH)))
            flood.changes += FLOOD_BATCH
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.005)


async def flood_presence_phase(
    run: Run, args: argparse.Namespace, bystander: Bystander, mechanism: str
) -> dict[str, object]:
    """F flooders online, then measured from the first change on (the initial burst is what a
    bystander meets first): its pings and, at --logins-per-s, its logins."""
    users = flood_users(args.flooders)
    run.expect_disconnect.update(index for index, _ in users)
    batch = await login_many(run, users, FLOOD_LOGINS_IN_FLIGHT, mechanism=mechanism)
    conns = batch.conns
    flood = run.presence_flood = PresenceFlood()
    try:
        if batch.failures:
            raise XmppError(f"{batch.failures} flooders could not log in: {run.errors[:3]}")
        for conn in conns.values():
            conn.use_handler(flood_presence_data)
        await wait_quiet(run, quiet=1.0, limit=30.0)
        phase = await settle(bystander, args)
        stop = asyncio.Event()
        started = time.perf_counter()
        task = asyncio.create_task(flood_presence_loop(run, list(conns.values()), stop))
        try:
            phase.update(await observe(bystander, args, logins=args.logins_per_s))
        finally:
            stop.set()
            await task
        seconds = time.perf_counter() - started
        phase["abuser"] = {
            "flooders": args.flooders,
            "contacts": args.flood_contacts,
            "online": len(conns),
            "seconds": round(seconds, 3),
            "changes_written": flood.changes,
            "presences_received": flood.presences,
            "presences_per_s": round(flood.presences / seconds, 1),
            "dropped_by_server": sum(1 for conn in conns.values() if conn.lost),
        }
    finally:
        await close_all(run, conns)
        run.presence_flood = None
    return phase


async def scenario_abuse(run: Run, args: argparse.Namespace) -> dict[str, object]:
    if args.seconds <= 0 or args.rate <= 0 or args.read_kib <= 0 or args.resources < 1:
        raise ValueError("--seconds, --rate, --read-kib and --resources must be positive")
    phases = [phase for phase in args.phases.split(",") if phase]
    if not phases or any(phase not in ABUSE_PHASES for phase in phases):
        raise ValueError(f"--phases must list some of {', '.join(ABUSE_PHASES)}")
    flooding = "presence_flood" in phases
    if flooding:
        check_ring(args.flooders, args.flood_contacts)
        if args.flood_contacts >= args.flooders or args.logins_per_s < 0:
            raise ValueError(
                "--flood-contacts must be below --flooders, --logins-per-s not negative"
            )
    mechanism = args.mechanism.upper()
    if mechanism.startswith("SCRAM") and not cache_scram_keys():
        # Without the key cache each of the M logins would be the client's own PBKDF2.
        mechanism = "PLAIN"
    result: dict[str, object] = {
        "seconds": args.seconds,
        "rate_per_s": args.rate,
        "roster_items": args.roster_items,
        "resources": args.resources,
        "read_kib_per_s": args.read_kib,
        "mechanism": mechanism,
        "phases": phases,
    }
    users = [BYSTANDER_USER, FLOOD_USER, STORM_USER]
    if flooding:
        users += login_users(BYSTANDER_USER)
        users += [user for _, user in flood_users(args.flooders)]
    registration = await register_many(run, users, args.concurrency)
    if registration["failed"]:
        raise XmppError(f"could not register {users}: {run.errors[:3]}")
    provisioning: dict[str, object] = {"registration": registration}
    if "roster_flood" in phases:
        roster = await provision_roster(run, args.roster_items, mechanism)
        if roster["failed"]:
            raise XmppError(f"could not give {FLOOD_USER} its roster: {run.errors[:3]}")
        provisioning["roster"] = roster
    if flooding:
        provisioning["flood_contacts"] = await flood_contacts(
            run, args.flooders, args.flood_contacts, mechanism
        )
    result["provisioning"] = provisioning
    await wait_quiet(run, quiet=0.5, limit=30.0)
    bystander = await Bystander.start(run, args)
    try:
        baseline = await settle(bystander, args)
        baseline.update(
            await observe(bystander, args, logins=args.logins_per_s if flooding else 0.0)
        )
        result["baseline"] = baseline
        log(f"abuse baseline {baseline}")
        if "roster_flood" in phases:
            result["roster_flood"] = await flood_phase(run, args, bystander, mechanism)
            log(f"abuse roster flood {result['roster_flood']}")
        if "presence_storm" in phases:
            result["presence_storm"] = await storm_phase(run, args, bystander, mechanism)
            log(f"abuse presence storm {result['presence_storm']}")
        if flooding:
            result["presence_flood"] = await flood_presence_phase(run, args, bystander, mechanism)
            log(f"abuse presence flood {result['presence_flood']}")
    finally:
        await bystander.close()
    return result


# Command line


# Scenario: company


def company_groups(groups: int, size: int) -> dict[str, list[str]]:
    """The company population: `groups` groups (g0, g1, ...) of `size` users each, bg0 ...
    in order, every member to see every other member of their group and nobody else."""
    if groups < 1 or size < 2:
        raise ValueError("a company needs at least one group of at least two users")
    return {
        f"{COMPANY_GROUP_PREFIX}{group}": [
            f"{COMPANY_PREFIX}{group * size + member}" for member in range(size)
        ]
        for group in range(groups)
    }


def company_sender(jid: bytes) -> int | None:
    """The company index of the user a `from` JID names, or None for anyone else."""
    match = COMPANY_JID.match(jid)
    return int(match[1]) if match else None


@dataclass(slots=True)
class Company:
    """The morning login storm's progress: whose group mates' presence each user has seen."""

    size: int
    seen: list[set[int]]
    complete: int = 0
    completed_ns: int = 0
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def presence(self, receiver: int, sender_jid: bytes) -> None:
        """An available presence reached `receiver`: from a group mate it counts, once."""
        sender = company_sender(sender_jid)
        if sender is None or sender == receiver or sender // self.size != receiver // self.size:
            return
        mates = self.seen[receiver]
        if sender in mates:
            return
        mates.add(sender)
        if len(mates) == self.size - 1:
            self.complete += 1
            self.completed_ns = time.perf_counter_ns()
            if self.complete == len(self.seen):
                self.done.set()


def company_users(groups: int, size: int) -> list[tuple[int, str]]:
    return [
        (index, user)
        for index, user in enumerate(itertools.chain(*company_groups(groups, size).values()))
    ]


async def scenario_company_provision(run: Run, args: argparse.Namespace) -> dict[str, object]:
    names = [user for _, user in company_users(args.groups, args.group_size)]
    log(f"registering {len(names)} company users")
    return {"registration": await register_many(run, names, args.concurrency)}


async def company_storm(
    run: Run, args: argparse.Namespace
) -> tuple[dict[str, object], dict[int, Conn]]:
    """Everyone logs in, C at a time: until all are online and each has every group mate's
    presence (from the mates already online when it came, and from those who came after)."""
    users = company_users(args.groups, args.group_size)
    company = Company(args.group_size, [set() for _ in users])
    run.company = company
    started = time.perf_counter_ns()
    batch = await login_many(run, users, args.concurrency)
    logged_in_ns = time.perf_counter_ns()
    logged_in_s = (logged_in_ns - started) / 1e9
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(company.done.wait(), args.storm_timeout)
    run.company = None
    # Done when the last login is and the last presence is in, whichever is later.
    finished_ns = max(logged_in_ns, company.completed_ns)
    seen = sum(len(mates) for mates in company.seen)
    result: dict[str, object] = {
        "users": len(users),
        "logins": len(batch.conns),
        "failures": batch.failures,
        "logged_in_s": round(logged_in_s, 3),
        "complete": company.complete,
        "presences_missing": len(users) * (args.group_size - 1) - seen,
        "seconds": round((finished_ns - started) / 1e9, 3) if company.done.is_set() else None,
        "login": batch_summary(batch),
    }
    return result, batch.conns


async def company_singles(
    run: Run, conns: Sequence[Conn], args: argparse.Namespace, first_step: int
) -> dict[str, object]:
    """One change at a time on an otherwise idle server, senders spread over the groups: the
    time until all the sender's group mates have it."""
    contacts = args.group_size - 1
    times: list[int] = []
    incomplete = 0
    stride = max(1, len(conns) // max(1, args.singles)) + 1
    for number in range(args.singles):
        await wait_quiet(run, quiet=0.2, limit=5.0)
        sender = conns[(number * stride) % len(conns)]
        outcome = await run_step(
            run, [sender], first_step + number, 1, contacts, rate=None, drain=args.drain
        )
        if outcome["lost"] or outcome["max_ms"] is None:
            incomplete += 1
            continue
        times.append(round(float(outcome["max_ms"]) * 1e6))  # type: ignore[arg-type]
    return {"changes": args.singles, "incomplete": incomplete, **latency_summary(times)}


async def scenario_company(run: Run, args: argparse.Namespace) -> dict[str, object]:
    storm, logged_in = await company_storm(run, args)
    result: dict[str, object] = {
        "groups": args.groups,
        "group_size": args.group_size,
        "storm": storm,
    }
    conns = [logged_in[index] for index in sorted(logged_in)]
    if storm["failures"] or storm["seconds"] is None:
        await close_all(run, logged_in)
        raise XmppError(f"login storm incomplete: {storm}; {run.errors[:3]}")
    for conn in conns:
        conn.use_handler(fanout_data)
    await wait_quiet(run, quiet=1.0, limit=30.0)
    result["single_change"] = await company_singles(run, conns, args, 1)
    log(f"company single changes {result['single_change']}")
    await wait_quiet(run, quiet=1.0, limit=30.0)
    steps, best, stop = await climb(
        run, conns, args.group_size - 1, args, first_step=args.singles + 1, min_changes=1
    )
    result["steps"] = steps
    result["stop_reason"] = stop
    result["max_sustainable"] = best
    result["disconnects"] = run.disconnects
    for conn in conns:
        conn.use_handler(stanza_data)
    await close_all(run, logged_in)
    return result


def port_list(text: str) -> list[int]:
    """`--port`: one port or several, comma separated."""
    try:
        ports = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port or a list of ports") from None
    if not all(0 < port < 65536 for port in ports):
        raise argparse.ArgumentTypeError(f"{text!r} holds a port outside 1-65535")
    return ports


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--port",
        type=port_list,
        default=[5222],
        help="the server's port, or every cluster node's, comma separated",
    )
    parser.add_argument("--domain", default="localhost", help="the XMPP domain of the users")
    parser.add_argument("--password", default=DEFAULT_PASSWORD, help="every bench user's")
    parser.add_argument("--label", default="", help="copied into the JSON line")
    parser.add_argument("--timeout", type=float, default=30.0, help="per network step, seconds")
    parser.add_argument("--deadline", type=float, default=1800.0, help="whole run, seconds")
    parser.add_argument("--concurrency", type=int, default=50, help="logins in flight")
    parser.add_argument("--no-uvloop", action="store_true")
    scenarios = parser.add_subparsers(dest="scenario", required=True)

    def ring(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--users", type=int, default=500, help="N, the ring population")
        sub.add_argument("--contacts", type=int, default=10, help="K, contacts per user (even)")

    provision = scenarios.add_parser("provision", help="register users and build the ring")
    ring(provision)
    provision.add_argument("--idle-users", type=int, default=0, help="also register these")

    login_parser = scenarios.add_parser("login", help="login storm")
    ring(login_parser)
    login_parser.add_argument(
        "--mechanism", default="PLAIN", choices=["PLAIN", "SCRAM-SHA-1", "SCRAM-SHA-256"]
    )
    login_parser.add_argument(
        "--no-key-cache", action="store_true", help="derive SCRAM keys at every login"
    )

    def ladder(sub: argparse.ArgumentParser, rate_start: float) -> None:
        sub.add_argument("--rate-start", type=float, default=rate_start, help="changes/s")
        sub.add_argument("--rate-factor", type=float, default=1.5)
        sub.add_argument("--step-seconds", type=float, default=3.0)
        sub.add_argument("--max-steps", type=int, default=14)
        sub.add_argument("--p99-limit-ms", type=float, default=1000.0)
        sub.add_argument(
            "--keep-up",
            type=float,
            default=0.9,
            help="a sustainable step delivers at least this share of the offered deliveries/s",
        )
        sub.add_argument("--drain", type=float, default=10.0, help="seconds to wait per step")
        sub.add_argument(
            "--refine",
            type=int,
            default=2,
            help="steps between the last rate sustained and the first not (each halves the ratio)",
        )

    def company(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--groups", type=int, default=10, help="G, groups")
        sub.add_argument("--group-size", type=int, default=200, help="S, users per group")

    fanout = scenarios.add_parser("fanout", help="presence fan-out throughput and latency")
    ring(fanout)
    fanout.add_argument("--changes", type=int, default=5, help="R, burst changes per user")
    ladder(fanout, 200.0)
    fanout.add_argument("--burst-drain", type=float, default=60.0)

    company_provision = scenarios.add_parser(
        "company-provision", help="register the company's users (the groups are the server's)"
    )
    company(company_provision)
    company_parser = scenarios.add_parser(
        "company", help="groups where everyone sees everyone: login storm, fan-out, latency"
    )
    company(company_parser)
    company_parser.add_argument(
        "--storm-timeout",
        type=float,
        default=120.0,
        help="seconds after the last login to wait for every group mate's presence",
    )
    company_parser.add_argument(
        "--singles", type=int, default=50, help="single changes timed on an idle server"
    )
    ladder(company_parser, 20.0)

    idle = scenarios.add_parser("idle", help="server memory per idle session")
    idle.add_argument("--sessions", type=int, default=1000)
    idle.add_argument("--server-pid", type=int, default=0, help="read its RSS from /proc")
    idle.add_argument("--settle", type=float, default=2.0, help="seconds before reading RSS")

    ghost = scenarios.add_parser("ghost", help="time until contacts see a dead client go")
    ring(ghost)
    ghost.add_argument("--victims", type=int, default=20, help="abrupt closes, FIN and RST")
    ghost.add_argument("--close-timeout", type=float, default=10.0)
    ghost.add_argument("--silent", action="store_true", help="also measure silent death")
    ghost.add_argument("--silent-victims", type=int, default=2)
    ghost.add_argument("--silent-timeout", type=float, default=150.0)
    ghost.add_argument(
        "--silent-bound", type=float, default=None, help="the server's configured bound, seconds"
    )

    abuse = scenarios.add_parser(
        "abuse", help="a bystander's ping round trip while one client abuses the server"
    )
    abuse.add_argument("--seconds", type=float, default=10.0, help="measured, per phase")
    abuse.add_argument("--rate", type=float, default=20.0, help="bystander pings per second")
    abuse.add_argument("--roster-items", type=int, default=2000, help="R, the flooder's roster")
    abuse.add_argument(
        "--resources", type=int, default=1000, help="M, sessions of the presence-storm account"
    )
    abuse.add_argument(
        "--read-kib", type=float, default=100.0, help="the flooder reads this many KiB/s"
    )
    abuse.add_argument(
        "--storm-concurrency",
        type=int,
        default=1,
        help="logins in flight for the M resources: one at a time by default, as a server may"
        " refuse a login while another of the same account from the same address is checked",
    )
    abuse.add_argument("--warmup", type=float, default=1.0, help="abuse seconds before pinging")
    abuse.add_argument(
        "--ping-grace", type=float, default=5.0, help="seconds to wait for the last answers"
    )
    abuse.add_argument(
        "--settle-ms",
        type=float,
        default=50.0,
        help="before each phase, wait until every probe ping returns within this",
    )
    abuse.add_argument("--settle-limit", type=float, default=30.0, help="seconds, at most")
    abuse.add_argument(
        "--mechanism",
        default="SCRAM-SHA-1",
        choices=["PLAIN", "SCRAM-SHA-1", "SCRAM-SHA-256"],
        help="the abusers' logins (SCRAM with cached keys keeps M logins cheap for the client)",
    )
    abuse.add_argument(
        "--phases",
        default=",".join(ABUSE_PHASES),
        help="which abuse phases to run after the baseline, comma separated",
    )
    abuse.add_argument(
        "--flooders", type=int, default=20, help="F, clients flooding presence changes"
    )
    abuse.add_argument(
        "--flood-contacts",
        type=int,
        default=10,
        help="contacts of each flooder among the others (even, below F)",
    )
    abuse.add_argument(
        "--logins-per-s",
        type=float,
        default=2.0,
        help="presence flood (and baseline): the bystander's logins per second beside its pings",
    )
    abuse.add_argument("--server-pid", type=int, default=0, help="read its CPU and RSS from /proc")
    abuse.add_argument(
        "--bystander-core", type=int, default=None, help="pin the bystander process to this core"
    )

    bystander = scenarios.add_parser(
        "bystander", help="internal: the abuse scenario's pinging client, driven over stdin"
    )
    bystander.add_argument("--user", default=BYSTANDER_USER)
    bystander.add_argument("--core", type=int, default=None, help="pin this process to a core")
    return parser


SCENARIOS = {
    "provision": scenario_provision,
    "company-provision": scenario_company_provision,
    "company": scenario_company,
    "login": scenario_login,
    "fanout": scenario_fanout,
    "idle": scenario_idle,
    "ghost": scenario_ghost,
    "abuse": scenario_abuse,
    "bystander": scenario_bystander,
}


async def main_async(args: argparse.Namespace) -> dict[str, object]:
    run = Run(args)
    result: dict[str, object] = {"scenario": args.scenario, "label": args.label}
    started = time.perf_counter()
    try:
        async with asyncio.timeout(args.deadline):
            result.update(await SCENARIOS[args.scenario](run, args))
        result["ok"] = True
    except (XmppError, OSError, TimeoutError, ValueError) as exc:
        result["ok"] = False
        result["error"] = f"{exc.__class__.__name__}: {exc}"
    result["elapsed_s"] = round(time.perf_counter() - started, 3)
    result["errors"] = run.errors
    return result


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    raise_fd_limit()
    runner: Callable[..., dict[str, object]] = asyncio.run
    if not args.no_uvloop:
        try:
            import uvloop
        except ImportError:
            pass
        else:
            runner = uvloop.run
    result = runner(main_async(args))
    print(json.dumps(result), flush=True)
    return 0 if result.get("ok") else 1


if __name__ == "__main__":
    sys.exit(main())
