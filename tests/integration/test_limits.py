"""The abuse limits on a real server: inbound byte rate, subscription request rate, connections
per address (concurrent and per second), failed-login throttling per address and per account,
and the timeouts that stop slow-loris clients during the stream header, TLS and SASL.

The limits are set small in each test's config. Clients on other loopback addresses
(127.0.0.2, ...) stand for other machines. Waits are for events; the only sleeps pace a
deliberately slow client.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Iterator

import pytest

from chorus_presence.server import c2s
from tests.integration.harness import (
    DOMAIN,
    PASSWORD,
    Harness,
    RawClient,
    bind,
    error_condition,
    features,
    ping,
    plain_token,
    raw_session,
    stanzas,
    still_serving,
)

SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
PLAINTEXT = {"tls": {"required": False}}
STREAM_HEADER = (
    "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
    f"xmlns:stream='http://etherx.jabber.org/streams' to='{DOMAIN}' version='1.0'>"
)


async def raw_from(harness: Harness, address: str) -> RawClient:
    """A raw connection whose source address is `address` (any of 127.0.0.0/8)."""
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", harness.port, local_addr=(address, 0)
    )
    raw = RawClient(reader, writer)
    harness.raw_connections.append(raw)
    return raw


def plain_auth(username: str, password: str = PASSWORD) -> str:
    return f"<auth xmlns='{SASL}' mechanism='PLAIN'>{plain_token(username, password)}</auth>"


async def sasl_outcome(raw: RawClient, auth: str) -> str:
    """Send `auth`; 'success' or the failure condition."""
    raw.received = b""
    raw.send(auth)
    match = await raw.expect(rb"<success|<failure[^>]*><([a-z-]+)/>")
    return "success" if match[1] is None else match[1].decode()


async def attempt(harness: Harness, address: str, username: str, password: str = PASSWORD) -> str:
    """One login on a new connection from `address`: 'success' or the failure condition."""
    raw = await raw_from(harness, address)
    await features(raw)
    outcome = await sasl_outcome(raw, plain_auth(username, password))
    raw.close()
    return outcome


@pytest.fixture
async def users(harness: Harness) -> Harness:
    for name in ("alice", "bob", "carol", "dave", "erin", "witness"):
        await harness.add_user(name)
    return harness


# Inbound byte rate

RATE = 4096
# Pings of 61 bytes each: enough to owe the bucket a little over a second.
FLOOD = 150


@pytest.mark.server_config(**PLAINTEXT, limits={"bytes_per_second": RATE, "burst_bytes": RATE})
async def test_a_flooder_is_slowed_not_cut_off_and_others_are_served(users: Harness) -> None:
    loop = asyncio.get_running_loop()
    flooder, _jid = await raw_session(users, "alice")
    bystander, _jid = await raw_session(users, "bob")
    pings = [f"<iq type='get' id='f{n}'><ping xmlns='urn:xmpp:ping'/></iq>" for n in range(FLOOD)]
    flood = "".join(pings).encode()
    # Whatever the bucket saved up, it holds no more than the burst.
    least_delay = (len(flood) - RATE) / RATE
    assert least_delay >= 1.0

    started = loop.time()
    flooder.send(flood)
    answered = asyncio.ensure_future(flooder.expect(rf"id=\"f{FLOOD - 1}\""))
    # The other client is not queued behind the flooder.
    await ping(bystander, "meanwhile")
    assert not answered.done()
    await answered
    elapsed = loop.time() - started
    assert elapsed >= least_delay - 0.01, f"answered after {elapsed:.3f}s"
    # Slowed, not dropped: every ping was answered and the stream goes on.
    await ping(flooder, "after")
    ids = {s.get("id") for s in stanzas(flooder.received, "iq")}
    assert {f"f{n}" for n in range(FLOOD)} <= ids
    await still_serving(users)


# Subscription requests


@pytest.mark.server_config(**PLAINTEXT, limits={"subscriptions_per_minute": 3})
async def test_subscription_requests_past_the_rate_get_policy_violation(users: Harness) -> None:
    erin, _jid = await raw_session(users, "erin")
    erin.send("<presence/>")
    await ping(erin, "erin-ready")
    alice, _jid = await raw_session(users, "alice", "one")
    other_alice, _jid = await raw_session(users, "alice", "two")
    for number, contact in enumerate(("bob", "carol", "dave", "erin")):
        alice.send(f"<presence type='subscribe' id='s{number}' to='{contact}@{DOMAIN}'/>")
    await ping(alice)
    # The same account on another stream shares the allowance.
    other_alice.send(f"<presence type='subscribe' id='s4' to='witness@{DOMAIN}'/>")
    await ping(other_alice)
    errors = stanzas(alice.received, "presence") + stanzas(other_alice.received, "presence")
    refused = {s.get("id"): error_condition(s) for s in errors if s.get("type") == "error"}
    assert refused == {"s3": ("wait", "policy-violation"), "s4": ("wait", "policy-violation")}
    # The refused request went nowhere: erin never hears of it.
    await ping(erin)
    assert b"subscribe" not in erin.received
    # Other accounts have their own allowance.
    bob, _jid = await raw_session(users, "bob")
    bob.send(f"<presence type='subscribe' id='b1' to='erin@{DOMAIN}'/>")
    await erin.expect(rb"<presence [^>]*type=\"subscribe\"")
    await ping(bob)
    assert b'type="error"' not in bob.received


# Connections per address


@pytest.mark.server_config(limits={"connections_per_address": 2})
async def test_concurrent_connections_per_address_are_capped(users: Harness) -> None:
    first, second = await users.raw(), await users.raw()
    await features(first)
    await features(second)
    extra = await users.raw()
    data = await extra.expect_stream_error("policy-violation")
    assert data.startswith(b"<?xml version='1.0'?><stream:stream")
    # Another address is not affected.
    elsewhere = await raw_from(users, "127.0.0.2")
    await features(elsewhere)
    # A connection that ends frees its place.
    first.send("</stream:stream>")
    await first.read_to_close()
    again = await users.raw()
    await features(again)


@pytest.mark.server_config(limits={"connection_rate": 0.5})
async def test_new_connections_per_address_are_rate_limited(users: Harness) -> None:
    # A rate of 0.5 a second allows a burst of one; the next token comes two seconds later.
    first = await users.raw()
    await features(first)
    first.send("</stream:stream>")
    await first.read_to_close()
    second = await users.raw()
    await second.expect_stream_error("policy-violation")
    elsewhere = await raw_from(users, "127.0.0.2")
    await features(elsewhere)


# Failed logins


@pytest.mark.server_config(**PLAINTEXT, auth={"max_failures": 10}, limits={"auth_failures": 3})
async def test_failed_logins_throttle_the_address(users: Harness) -> None:
    raw = await raw_from(users, "127.0.0.2")
    await features(raw)
    # Three different accounts, so that only the address adds up to the limit.
    for name in ("nobody1", "nobody2", "nobody3"):
        assert await sasl_outcome(raw, plain_auth(name, "guess")) == "not-authorized"
    # Now even the right password for a real account is refused from there, on any stream.
    assert await sasl_outcome(raw, plain_auth("alice")) == "temporary-auth-failure"
    assert await attempt(users, "127.0.0.2", "bob") == "temporary-auth-failure"
    # The same accounts from another address are fine.
    assert await attempt(users, "127.0.0.3", "alice") == "success"
    assert await attempt(users, "127.0.0.3", "bob") == "success"


@pytest.mark.server_config(
    **PLAINTEXT,
    auth={"max_failures": 10},
    limits={"auth_failures": 3, "auth_account_failures": 3},
)
async def test_failed_logins_throttle_the_account(users: Harness) -> None:
    # Three wrong passwords for alice from three addresses, none of which reaches the
    # per-address limit (nor its own back-off) on its own: the per-account ceiling does.
    first = await raw_from(users, "127.0.0.2")
    await features(first)
    assert await sasl_outcome(first, plain_auth("alice", "guess")) == "not-authorized"
    for address in ("127.0.0.3", "127.0.0.6"):
        other = await raw_from(users, address)
        await features(other)
        assert await sasl_outcome(other, plain_auth("alice", "guess")) == "not-authorized"
    # alice is throttled wherever she comes from, whatever the mechanism...
    assert await attempt(users, "127.0.0.4", "alice") == "temporary-auth-failure"
    scram = await raw_from(users, "127.0.0.5")
    await features(scram)
    first_message = base64.b64encode(b"n,,n=alice,r=abcdefghijkl").decode()
    outcome = await sasl_outcome(
        scram, f"<auth xmlns='{SASL}' mechanism='SCRAM-SHA-256'>{first_message}</auth>"
    )
    assert outcome == "temporary-auth-failure"
    # ...while bob, from the same addresses and streams, is not.
    assert await attempt(users, "127.0.0.4", "bob") == "success"
    assert await sasl_outcome(first, plain_auth("bob")) == "success"


# Slow clients


async def trickle(raw: RawClient, data: bytes, pieces: int, pause: float) -> None:
    """Send `data` in `pieces`, `pause` seconds apart: each gap shorter than any idle
    timeout, the whole slower than the deadline."""
    size = -(-len(data) // pieces)
    for start in range(0, len(data), size):
        raw.send(data[start : start + size])
        await asyncio.sleep(pause)


class HeaderWaitedFor(Exception):
    """The server answered a header that took longer than header_timeout to arrive."""


@pytest.mark.server_config(limits={"header_timeout": 0.3})
async def test_a_trickled_stream_header_times_out(users: Harness) -> None:
    raw = await users.raw()
    sending = asyncio.ensure_future(trickle(raw, STREAM_HEADER.encode(), 8, 0.12))
    try:
        # Either the deadline ends the stream, or the header arrives whole and is answered.
        await raw.expect(rb"<stream:features|</stream:stream>")
    finally:
        sending.cancel()
    if b"<stream:features" in raw.received:
        raise HeaderWaitedFor(raw.received)
    await raw.expect_stream_error("connection-timeout")
    await still_serving(users, tls=True)


@pytest.mark.server_config(**PLAINTEXT, limits={"auth_timeout": 0.5})
async def test_a_trickled_authentication_times_out(users: Harness) -> None:
    loop = asyncio.get_running_loop()
    raw = await users.raw()
    started = loop.time()
    await features(raw)
    # Keepalives and a few bytes of <auth/> at a time: traffic, but never a login.
    sending = asyncio.ensure_future(trickle(raw, b" \n " + plain_auth("alice").encode(), 40, 0.1))
    try:
        await raw.expect_stream_error("connection-timeout")
    finally:
        sending.cancel()
    assert loop.time() - started >= 0.5
    assert b"<success" not in raw.received
    await still_serving(users)


class StreamNeverEnded(Exception):
    """The server dropped a connection but its stream never finished ending."""


class StreamEnds(logging.Handler):
    """The server's "stream ... ended" log lines, as events a test can await."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.ended: asyncio.Queue[str] = asyncio.Queue()

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg == "stream %s ended: %s":
            self.ended.put_nowait(str(record.args[1]))


@pytest.fixture
def stream_ends(caplog: pytest.LogCaptureFixture) -> Iterator[StreamEnds]:
    caplog.set_level(logging.INFO, logger=c2s.__name__)
    handler = StreamEnds()
    logger = logging.getLogger(c2s.__name__)
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


@pytest.mark.server_config(limits={"header_timeout": 0.5})
async def test_a_trickled_tls_handshake_is_dropped(users: Harness, stream_ends: StreamEnds) -> None:
    raw = await users.raw()
    await features(raw)
    raw.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
    await raw.expect(b"<proceed[^>]*/>")
    raw.received = b""
    # The start of a TLS handshake record announcing 512 bytes, then a byte at a time.
    record = b"\x16\x03\x01\x02\x00" + b"\x01" * 512
    sending = asyncio.ensure_future(trickle(raw, record, len(record), 0.05))
    try:
        # No stream error can be sent inside an unfinished handshake: the server hangs up.
        assert await raw.read_to_close() == b""
        await still_serving(users, tls=True)
        # Both streams, the stalled one and the witness's, are over and done with.
        try:
            async with asyncio.timeout(2):
                for _ in range(2):
                    await stream_ends.ended.get()
        except TimeoutError:
            raise StreamNeverEnded from None
    finally:
        sending.cancel()


@pytest.mark.server_config(**PLAINTEXT, limits={"auth_timeout": 0.3})
async def test_a_bound_session_is_not_subject_to_the_negotiation_deadline(
    users: Harness,
) -> None:
    """The deadline covers negotiation only: a client that binds in time stays."""
    loop = asyncio.get_running_loop()
    raw = await users.raw()
    await features(raw)
    raw.send(plain_auth("alice"))
    await raw.expect(b"<success")
    raw.received = b""
    await features(raw)
    await bind(raw, "stays")
    started = loop.time()
    # Pings well past the deadline, each answered.
    number = 0
    while loop.time() - started < 0.5:
        await ping(raw, f"p{number}")
        number += 1
        await asyncio.sleep(0.1)
    assert users.ctx.sessions.all()
