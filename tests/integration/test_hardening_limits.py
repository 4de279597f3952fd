"""Hardening limits on a real server.

- Stream management (XEP-0198): the server asks for acknowledgements as its queue of
  unacknowledged stanzas grows, so a client that answers them is never cut off by a flood; a
  client that never answers is put into hibernation at the limit, where it can resume, rather
  than having its session ended; a hibernating session that keeps overflowing does end.
- Resources per account: one bind too many is refused with `resource-constraint`.
- The server-wide connection cap: one connection too many gets `policy-violation` and is
  closed, with one warning however many are refused; running out of descriptors at accept is
  one warning too, not a traceback per attempt; at start, `serve` raises the descriptor limit
  and fits the cap under it.

Limits are set small in each test's config where the default would only make the test slow.
Every wait is for an event, bounded by a timeout; nothing sleeps.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import resource
import socket
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from lxml import etree

from chorus_presence import composition
from chorus_presence.config import ConfigError, load_config
from tests.integration.harness import (
    DOMAIN,
    TIMEOUT,
    Harness,
    RawClient,
    TopLevel,
    authenticate,
    bind,
    error_condition,
    features,
    link,
    ping,
    raw_login,
    raw_session,
    stanzas,
    write_config,
)
from tests.integration.harness.constants import command_line

SM = "urn:xmpp:sm:3"
CLIENT = "jabber:client"
STANZA_TAGS = {f"{{{CLIENT}}}{kind}" for kind in ("message", "presence", "iq")}
PLAINTEXT = {"tls": {"required": False}}


@pytest.fixture
async def users(harness: Harness) -> Harness:
    for name in ("alice", "bob", "mallory"):
        await harness.add_user(name)
    # bob may see alice's presence, so he is told when a message to her bounces; mallory is a
    # stranger, who is not.
    await link(harness, "alice", "bob")
    return harness


class SmClient:
    """A raw client doing stream management as a real client does: it counts the stanzas it
    handles from <enabled/> or <resumed/> on and, when `acks`, answers every <r/> at once with
    <a h/>. Tests await conditions on what arrived; the connection closing wakes them too."""

    def __init__(self, raw: RawClient, *, acks: bool = True) -> None:
        self.raw = raw
        self.acks = acks
        self.counting = False
        self.handled = 0
        self.requests = 0
        self.bodies: list[str] = []
        self.results: set[str] = set()
        self.nonzas: list[etree._Element] = []
        self.closed = False
        self._changed = asyncio.Event()
        self._pings = 0
        self._stream = TopLevel()
        # Bytes that came with the bind result (or the features) belong to what follows.
        self._feed(raw.received)
        raw.received = b""
        self._reading = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        try:
            while data := await self.raw.reader.read(65536):
                self._feed(data)
        except ConnectionError:
            pass
        self.closed = True
        self._changed.set()

    def _feed(self, data: bytes) -> None:
        for node in self._stream.feed(data):
            self._received(node)

    def _received(self, node: etree._Element) -> None:
        if node.tag in STANZA_TAGS:
            if self.counting:
                self.handled += 1
            if node.tag == f"{{{CLIENT}}}message" and node.get("type") != "error":
                self.bodies.append(node.findtext(f"{{{CLIENT}}}body") or "")
            if node.tag == f"{{{CLIENT}}}iq" and node.get("type") == "result":
                self.results.add(node.get("id", ""))
        elif node.tag == f"{{{SM}}}r":
            self.requests += 1
            if self.acks:
                self.raw.send(f"<a xmlns='{SM}' h='{self.handled}'/>")
        else:
            if node.tag in (f"{{{SM}}}enabled", f"{{{SM}}}resumed"):
                self.counting = True
            self.nonzas.append(node)
        self._changed.set()

    async def until(self, done: Callable[[], bool], what: str) -> None:
        """Wait until `done()`; fails naming `what` if the connection closes first or in time."""
        try:
            async with asyncio.timeout(TIMEOUT):
                while not done():
                    if self.closed:
                        raise AssertionError(f"connection closed before {what}: {self.state()}")
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            raise AssertionError(f"{what}: not within {TIMEOUT}s: {self.state()}") from None

    def state(self) -> str:
        return f"{len(self.bodies)} messages, {self.requests} <r/>, handled {self.handled}"

    async def nonza(self, name: str) -> etree._Element:
        tag = f"{{{SM}}}{name}"
        await self.until(lambda: any(n.tag == tag for n in self.nonzas), f"<{name}/>")
        return next(n for n in self.nonzas if n.tag == tag)

    async def enable(self) -> str:
        """Stream management with resumption; the session's id."""
        self.raw.send(f"<enable xmlns='{SM}' resume='true'/>")
        enabled = await self.nonza("enabled")
        assert enabled.get("resume") == "true"
        return enabled.get("id", "")

    async def resume(self, previd: str) -> etree._Element:
        """Resume `previd`, telling the server how many stanzas this client handled there."""
        self.raw.send(f"<resume xmlns='{SM}' previd='{previd}' h='{self.handled}'/>")
        return await self.nonza("resumed")

    async def sync(self) -> None:
        """A ping round trip: the stream is served, and what came before it has arrived."""
        self._pings += 1
        stanza_id = f"sync-{self._pings}"
        self.raw.send(f"<iq type='get' id='{stanza_id}'><ping xmlns='urn:xmpp:ping'/></iq>")
        await self.until(lambda: stanza_id in self.results, f"the answer to {stanza_id}")


def messages(to: str, numbers: range) -> str:
    return "".join(
        f"<message to='{to}' type='chat' id='m{n}'><body>m{n}</body></message>" for n in numbers
    )


def bounced(raw: RawClient) -> list[str]:
    """The ids of the messages bounced back to `raw`."""
    return [s.get("id", "") for s in stanzas(raw.received, "message") if s.get("type") == "error"]


def alice_stream(harness: Harness, sm_id: str):
    """alice's stream on the server, found by its stream management id."""
    return harness.ctx.stream_management.resumable[sm_id]


# Stream management: asking for acknowledgements, and hibernating at the limit

FLOOD = 1100
BATCH = 100


@pytest.mark.server_config(**PLAINTEXT)
async def test_a_client_that_acknowledges_gets_a_whole_flood_and_stays(users: Harness) -> None:
    raw, jid = await raw_session(users, "alice", "phone")
    alice = SmClient(raw)
    sm_id = await alice.enable()
    # A stranger sends more messages than the default max_unacked (1000), as fast as they
    # reach alice: each batch once she has the one before, as a flood over a network arrives,
    # so that her answers can be read in between. (A burst delivered before the server reads
    # any answer is the next test's case.)
    stranger, _jid = await raw_session(users, "mallory")
    for start in range(0, FLOOD, BATCH):
        stranger.send(messages(jid, range(start, start + BATCH)))
        await alice.until(lambda end=start + BATCH: len(alice.bodies) == end, f"m{start}...")
    assert alice.bodies == [f"m{n}" for n in range(FLOOD)]
    assert alice.requests >= 1
    # Still connected, on the same session, with the queue kept short by the answers.
    await alice.sync()
    stream = alice_stream(users, sm_id)
    assert stream in users.ctx.sessions.all() and not stream.hibernating.is_set()
    assert stream.sm.unacked_count < users.ctx.config.liveness.max_unacked


@pytest.mark.server_config(**PLAINTEXT, liveness={"max_unacked": 8})
async def test_a_client_that_never_acknowledges_hibernates_at_the_limit_and_resumes(
    users: Harness,
) -> None:
    raw, jid = await raw_session(users, "alice", "phone")
    alice = SmClient(raw, acks=False)
    sm_id = await alice.enable()
    bob, _jid = await raw_session(users, "bob")
    # One more than max_unacked: the last one overflows the queue. bob is a contact, so
    # he would hear of any message that bounced.
    bob.send(messages(jid, range(9)))
    await alice.until(lambda: alice.closed, "the connection cut at the limit")
    assert alice.requests >= 1, "the server never asked for an acknowledgement"
    assert alice.bodies == [f"m{n}" for n in range(8)]
    # The session hibernates, as after a lost connection; nothing bounces.
    await asyncio.wait_for(alice_stream(users, sm_id).hibernating.wait(), TIMEOUT)
    await ping(bob, "after-overflow")
    assert bounced(bob) == []

    again = await raw_login(users, "alice", bind=False)
    again.received = b""
    resumed = SmClient(again)
    resumed.handled = alice.handled
    answer = await resumed.resume(sm_id)
    assert answer.get("previd") == sm_id
    # The stanza the client never got comes now, and the session goes on.
    await resumed.until(lambda: resumed.bodies == ["m8"], "the unacknowledged message")
    await resumed.sync()
    bob.send(messages(jid, range(9, 10)))
    await resumed.until(lambda: resumed.bodies == ["m8", "m9"], "a message after resuming")
    await ping(bob, "after-resume")
    assert bounced(bob) == []


@pytest.mark.server_config(**PLAINTEXT, liveness={"max_unacked": 4})
async def test_a_hibernating_session_that_keeps_overflowing_ends(users: Harness) -> None:
    raw, jid = await raw_session(users, "alice", "phone")
    alice = SmClient(raw, acks=False)
    sm_id = await alice.enable()
    stream = alice_stream(users, sm_id)
    raw.writer.transport.abort()
    await asyncio.wait_for(stream.hibernating.wait(), TIMEOUT)
    # While hibernating the queue has room for what arrives during a reconnection (twice
    # max_unacked), but not without end: one more and the session ends, and what it held goes
    # back to the sender, a contact here, who may know she is gone.
    bob, _jid = await raw_session(users, "bob")
    bob.send(messages(jid, range(8)))
    await ping(bob, "held")
    assert bounced(bob) == [] and stream.hibernating.is_set()
    bob.send(messages(jid, range(8, 9)))
    await bob.expect(r"(?:<message [^>]*type=\"error\".*?){9}")
    assert sorted(bounced(bob)) == sorted(f"m{n}" for n in range(9))
    assert b"The recipient's connection was lost" in bob.received
    assert [s.jid.local for s in users.ctx.sessions.all()] == ["bob"]
    assert sm_id not in users.ctx.stream_management.resumable


# Resources per account


def bind_request(resource: str, stanza_id: str) -> str:
    return (
        f"<iq type='set' id='{stanza_id}'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
        f"<resource>{resource}</resource></bind></iq>"
    )


@pytest.mark.server_config(**PLAINTEXT, limits={"resources_per_account": 2})
async def test_binding_past_resources_per_account_is_refused(users: Harness) -> None:
    first, _jid = await raw_session(users, "alice", "one")
    second, _jid = await raw_session(users, "alice", "two")
    third = await users.raw()
    await features(third)
    await authenticate(third, "alice")
    third.send(bind_request("three", "bind-three"))
    await third.expect(rb"<iq [^>]*type=\"error\".*?</iq>")
    [refusal] = stanzas(third.received, "iq")
    assert refusal.get("id") == "bind-three"
    assert error_condition(refusal) == ("wait", "resource-constraint")
    # The bound two still work, and another account has its own allowance.
    await ping(first, "one")
    await ping(second, "two")
    await raw_session(users, "bob", "one")
    await raw_session(users, "bob", "two")
    # Binding a resource already bound replaces it: no more resources than before.
    again, _jid = await raw_session(users, "alice", "two")
    await second.expect_stream_error("conflict")
    await ping(again, "two-again")
    # A resource that goes frees its place.
    first.send("</stream:stream>")
    await first.read_to_close()
    third.received = b""
    assert await bind(third, "three") == f"alice@{DOMAIN}/three"
    await ping(third, "three")


# The server-wide connection cap


class Records(logging.Handler):
    """Log records from the server's loggers, with an event for tests to await one."""

    def __init__(self, pattern: str) -> None:
        super().__init__(logging.DEBUG)
        self.pattern = re.compile(pattern)
        self.records: list[logging.LogRecord] = []
        self.matched = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        if self.pattern.search(record.getMessage()):
            self.matched.set()

    def matching(self) -> list[logging.LogRecord]:
        return [r for r in self.records if self.pattern.search(r.getMessage())]


@pytest.fixture
def server_log() -> Iterator[Callable[[str], Records]]:
    """`server_log(pattern)`: every record logged from here on, by the server or asyncio."""
    installed: list[Records] = []
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.DEBUG)

    def start(pattern: str) -> Records:
        handler = Records(pattern)
        root.addHandler(handler)
        installed.append(handler)
        return handler

    try:
        yield start
    finally:
        for handler in installed:
            root.removeHandler(handler)
        root.setLevel(level)


async def connect_when_free(harness: Harness) -> RawClient:
    """A connection the server accepts, retrying while it refuses: a slot is freed only once the
    server has finished with the connection that held it."""
    async with asyncio.timeout(TIMEOUT):
        while True:
            raw = await harness.raw()
            raw.open_stream()
            match = await raw.expect(rb"</stream:features>|</stream:stream>")
            if match[0] == b"</stream:features>":
                raw.received = b""
                return raw
            raw.close()


@pytest.mark.server_config(**PLAINTEXT, limits={"max_connections": 3})
async def test_connections_past_max_connections_are_refused_politely(
    users: Harness, server_log: Callable[[str], Records]
) -> None:
    log = server_log("server is full")
    held = [await users.raw() for _ in range(3)]
    for raw in held:
        await features(raw)
    for _ in range(3):
        extra = await users.raw()
        data = await extra.expect_stream_error("policy-violation")
        assert data.startswith(b"<?xml version='1.0'?><stream:stream")
        assert b"The server is full" in data
    # One warning for all three refusals, and no traceback.
    [warning] = log.matching()
    assert warning.levelno == logging.WARNING and warning.exc_info is None
    assert not [r for r in log.records if r.exc_info or r.levelno >= logging.ERROR]
    # The connections already open are served as before.
    await authenticate(held[0], "alice")
    await bind(held[0], "held")
    await ping(held[0], "held")
    # A connection that ends gives its slot back.
    held[1].send("</stream:stream>")
    await held[1].read_to_close()
    freed = await connect_when_free(users)
    await authenticate(freed, "bob")
    await bind(freed, "freed")
    await ping(freed, "freed")
    assert users.ctx.limits.server_connections.open == 3


def lowest_free_descriptor() -> int:
    probe = os.open(os.devnull, os.O_RDONLY)
    os.close(probe)
    return probe


async def test_running_out_of_descriptors_at_accept_is_one_warning(
    users: Harness, server_log: Callable[[str], Records]
) -> None:
    loop = asyncio.get_running_loop()
    # What `serve` installs on its loop.
    composition.handle_accept_errors(loop)
    log = server_log("cannot accept")
    client = socket.socket()
    client.setblocking(False)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # No descriptor is left for the server's accept(); the client already has its own.
    resource.setrlimit(resource.RLIMIT_NOFILE, (lowest_free_descriptor(), hard))
    try:
        await loop.sock_connect(client, ("127.0.0.1", users.port))
        await asyncio.wait_for(log.matched.wait(), TIMEOUT)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    try:
        # asyncio tries again a moment later, and the waiting connection is served.
        reader, writer = await asyncio.open_connection(sock=client)
        raw = RawClient(reader, writer)
        users.raw_connections.append(raw)
        await features(raw)
    finally:
        loop.set_exception_handler(None)
    # asyncio failed every accept of its batch; the operator sees one warning, no traceback.
    [warning] = log.matching()
    assert warning.levelno == logging.WARNING and warning.exc_info is None
    assert not [r for r in log.records if r.exc_info or r.levelno >= logging.ERROR]


def limited(nofile: tuple[int, int], *args: str) -> list[str]:
    """A command line that runs `args` with RLIMIT_NOFILE set to `nofile` (soft, hard)."""
    script = (
        "import os, resource, sys; "
        f"resource.setrlimit(resource.RLIMIT_NOFILE, {nofile!r}); "
        "os.execv(sys.argv[1], sys.argv[1:])"
    )
    return [sys.executable, "-c", script, *args]


async def serve_until_ready(command: list[str]) -> tuple[asyncio.subprocess.Process, list[str]]:
    """Start `command` (a `serve`), and the lines it printed and logged until it was ready."""
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    assert process.stdout is not None
    lines: list[str] = []
    async with asyncio.timeout(TIMEOUT):
        while True:
            line = (await process.stdout.readline()).decode()
            assert line, f"the server exited before it was ready: {lines}"
            lines.append(line.rstrip())
            if re.search(r"serving \S+ on [\d.]+:\d+", line):
                return process, lines


async def test_serve_raises_the_descriptor_limit_and_fits_max_connections(
    tmp_path: Path, tls_files: tuple[Path, Path]
) -> None:
    config = write_config(tmp_path, tls_files)
    # The default max_connections (10000) is far more than 256 descriptors allow.
    command = limited((64, 256), *command_line(config, "serve"))
    process, lines = await serve_until_ready(command)
    try:
        log = "\n".join(lines)
        lowered = re.search(r"WARNING .*limits\.max_connections = 10000 .*lowered to (\d+)", log)
        assert lowered, log
        cap = int(lowered[1])
        assert 0 < cap < 256
        # The soft limit (64) was raised to the hard one, and the cap is what is in force.
        assert re.search(rf"INFO .*descriptor limit 256\b.*at most {cap} connections", log), log
        assert "Traceback" not in log
    finally:
        process.kill()
        await process.wait()


# The new keys are validated like the others.


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("max_connections = 0", "'limits.max_connections' must be at least 1"),
        ("max_connections = 'many'", "'limits.max_connections' must be an integer"),
        ("resources_per_account = 0", "'limits.resources_per_account' must be at least 1"),
        ("resources_per_account = 2.5", "'limits.resources_per_account' must be an integer"),
    ],
)
def test_bad_new_limits_are_config_errors_naming_the_key(
    tmp_path: Path, text: str, problem: str
) -> None:
    path = tmp_path / "chorus.toml"
    path.write_text(f"[limits]\n{text}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value) == f"Config {path}: {problem}"


def test_the_new_limits_have_their_defaults(tmp_path: Path) -> None:
    path = tmp_path / "chorus.toml"
    path.write_text("")
    limits = load_config(path).limits
    assert (limits.max_connections, limits.resources_per_account) == (10000, 50)


def test_warnings_about_refusals_come_at_most_once_a_window_and_count_the_rest() -> None:
    # Imported here, so that on a server without them only this test fails.
    from chorus_presence.core.limits import ConnectionCap, WarningThrottle

    now = [100.0]
    throttle = WarningThrottle(60.0, clock=lambda: now[0])
    assert throttle.due() == 1
    assert [throttle.due() for _ in range(5)] == [0] * 5
    now[0] += 59.0
    assert throttle.due() == 0
    now[0] += 1.0
    # The warning that is due says how many there were since the last one.
    assert throttle.due() == 7

    cap = ConnectionCap(2)
    assert cap.admit() and cap.admit() and not cap.admit()
    cap.release()
    assert cap.admit() and cap.open == 2
