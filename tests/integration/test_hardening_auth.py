"""Hardening of logins on a real server: the failed-login throttles hold when guesses arrive all
at once, a stranger's guesses do not lock the owner out, and SCRAM probes cost a guess.

Guesses are sent concurrently (asyncio.gather over raw connections) so that they are all in
flight before any answer: a throttle that counts a failure only after the password check lets
them all through. Other loopback addresses (127.0.0.2, ...) stand for other machines. Each test
counts what was really checked (calls of the password check, or `not-authorized` answers, as
opposed to `temporary-auth-failure`, which the throttles give without checking anything).
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from typing import Any

import pytest
from scramp import ScramClient

from tests.integration.harness import (
    PASSWORD,
    Harness,
    RawClient,
    features,
    plain_token,
)

SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
PLAINTEXT = {"tls": {"required": False}}
# Plenty of connections from one address, so that only the login throttles refuse anything.
OPEN_DOORS = {"connections_per_address": 500, "connection_rate": 10000.0}
# A back-off no test outlives: the pair's next attempt is refused for the rest of the test.
LONG_BACKOFF = {"auth_backoff_base": 3600.0, "auth_backoff_max": 3600.0}
GUESSES = 120
ANSWER = rb"<success|<challenge[^>]*>([^<]*)</challenge>|<failure[^>]*><([a-z-]+)/>"


def loopback_addresses() -> Iterator[str]:
    """Distinct source addresses, all loopback on Linux; 127.0.0.1 (the default) left out."""
    for number in range(2, 65536):
        yield f"127.0.{number // 254}.{number % 254 + 1}"


async def connect_from(harness: Harness, address: str) -> RawClient:
    """A raw connection from `address` that has the stream's features."""
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", harness.port, local_addr=(address, 0)
    )
    raw = RawClient(reader, writer)
    harness.raw_connections.append(raw)
    await features(raw)
    return raw


async def answer(raw: RawClient) -> tuple[str, bytes]:
    """The next SASL answer: ('success' | 'challenge' | a failure condition, challenge data)."""
    match = await raw.expect(ANSWER)
    raw.received = raw.received[match.end() :]
    if match[0].startswith(b"<success"):
        return "success", b""
    if match[0].startswith(b"<challenge"):
        return "challenge", base64.b64decode(match[1])
    return match[2].decode(), b""


async def plain(raw: RawClient, username: str, password: str = PASSWORD) -> str:
    raw.send(f"<auth xmlns='{SASL}' mechanism='PLAIN'>{plain_token(username, password)}</auth>")
    return (await answer(raw))[0]


async def scram_first(raw: RawClient, client: ScramClient) -> tuple[str, bytes]:
    first = base64.b64encode(client.get_client_first().encode()).decode()
    raw.send(f"<auth xmlns='{SASL}' mechanism='SCRAM-SHA-256'>{first}</auth>")
    return await answer(raw)


async def scram(raw: RawClient, username: str, password: str = PASSWORD) -> str:
    """A whole SCRAM-SHA-256 exchange: 'success' or the failure condition."""
    client = ScramClient(["SCRAM-SHA-256"], username, password)
    outcome, challenge = await scram_first(raw, client)
    if outcome != "challenge":
        return outcome
    client.set_server_first(challenge.decode())
    final = base64.b64encode(client.get_client_final().encode()).decode()
    raw.send(f"<response xmlns='{SASL}'>{final}</response>")
    return (await answer(raw))[0]


async def scram_probe(raw: RawClient, username: str) -> str:
    """SCRAM up to the server's first message, then <abort/>: the server's last answer."""
    outcome, _challenge = await scram_first(raw, ScramClient(["SCRAM-SHA-256"], username, "x"))
    if outcome != "challenge":
        return outcome
    raw.send(f"<abort xmlns='{SASL}'/>")
    return (await answer(raw))[0]


async def login(
    harness: Harness, address: str, mechanism: str, username: str, password: str
) -> str:
    """One login on a new connection from `address`: 'success' or the failure condition."""
    raw = await connect_from(harness, address)
    outcome = await (plain if mechanism == "PLAIN" else scram)(raw, username, password)
    raw.close()
    return outcome


def count_password_checks(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The usernames whose PLAIN password the server really checked, in order."""
    accounts = harness.ctx.accounts
    check = accounts.check_plain
    checked: list[str] = []

    async def counted(username: str, password: str) -> Any:
        checked.append(username)
        return await check(username, password)

    monkeypatch.setattr(accounts, "check_plain", counted)
    return checked


def ceiling(harness: Harness) -> int:
    """Failed logins any one account may have within the window, from all addresses."""
    return harness.ctx.limits.failed_logins_by_account.allowed


@pytest.fixture
async def users(harness: Harness) -> Harness:
    for name in ("alice", "bob"):
        await harness.add_user(name)
    return harness


# The race: every guess in flight before any answer


@pytest.mark.server_config(**PLAINTEXT, auth={"max_failures": 10}, limits=OPEN_DOORS)
@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256"])
async def test_concurrent_guesses_from_many_addresses_stop_at_the_account_ceiling(
    users: Harness, monkeypatch: pytest.MonkeyPatch, mechanism: str
) -> None:
    checked = count_password_checks(users, monkeypatch)
    addresses = loopback_addresses()
    raws = await asyncio.gather(*(connect_from(users, next(addresses)) for _ in range(GUESSES)))
    guess = plain if mechanism == "PLAIN" else scram
    outcomes = await asyncio.gather(
        *(guess(raw, "alice", f"guess {n}") for n, raw in enumerate(raws))
    )
    allowed = ceiling(users)
    assert outcomes.count("not-authorized") == allowed, outcomes
    assert outcomes.count("temporary-auth-failure") == GUESSES - allowed
    if mechanism == "PLAIN":
        assert len(checked) == allowed


@pytest.mark.server_config(
    **PLAINTEXT, auth={"max_failures": 10}, limits={**OPEN_DOORS, "auth_failures": 5}
)
async def test_concurrent_guesses_from_one_address_stop_at_the_address_limit(
    users: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    checked = count_password_checks(users, monkeypatch)
    raws = await asyncio.gather(*(connect_from(users, "127.0.0.2") for _ in range(GUESSES)))
    # A different account each time, so that only the address adds up.
    outcomes = await asyncio.gather(
        *(plain(raw, f"nobody{n}", "guess") for n, raw in enumerate(raws))
    )
    assert len(checked) == 5
    assert outcomes.count("not-authorized") == 5
    assert outcomes.count("temporary-auth-failure") == GUESSES - 5
    # The same accounts from another address are not affected.
    assert await login(users, "127.0.0.3", "PLAIN", "alice", PASSWORD) == "success"


# Back-off per (account, address) and the owner


@pytest.mark.server_config(
    **PLAINTEXT, auth={"max_failures": 10}, limits={**OPEN_DOORS, **LONG_BACKOFF}
)
async def test_a_failure_makes_that_address_wait_before_trying_that_account_again(
    users: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    checked = count_password_checks(users, monkeypatch)
    raws = await asyncio.gather(*(connect_from(users, "127.0.0.2") for _ in range(30)))
    outcomes = await asyncio.gather(*(plain(raw, "alice", "guess") for raw in raws))
    # Guesses from one address at one account go one at a time: the first is checked, and
    # the others must wait for its back-off, whatever their mechanism or password.
    assert checked == ["alice"]
    assert outcomes.count("not-authorized") == 1
    assert await login(users, "127.0.0.2", "PLAIN", "alice", PASSWORD) == "temporary-auth-failure"
    assert (
        await login(users, "127.0.0.2", "SCRAM-SHA-256", "alice", PASSWORD)
        == "temporary-auth-failure"
    )
    # Another account from that address, and that account from elsewhere, are not held up.
    assert await login(users, "127.0.0.2", "PLAIN", "bob", PASSWORD) == "success"
    assert await login(users, "127.0.0.3", "SCRAM-SHA-256", "alice", PASSWORD) == "success"


@pytest.mark.server_config(**PLAINTEXT, auth={"max_failures": 10}, limits=OPEN_DOORS)
async def test_the_owner_logs_in_while_strangers_guess_until_the_ceiling(users: Harness) -> None:
    addresses = loopback_addresses()
    # More strangers than any one address may fail, each on an address of its own.
    strangers = 20

    async def guesses(count: int) -> list[str]:
        return list(
            await asyncio.gather(
                *(login(users, next(addresses), "PLAIN", "alice", "guess") for _ in range(count))
            )
        )

    assert await guesses(strangers) == ["not-authorized"] * strangers
    # The owner, from an address with no failures, is let in with the right password.
    assert await login(users, next(addresses), "SCRAM-SHA-256", "alice", PASSWORD) == "success"
    assert await login(users, next(addresses), "PLAIN", "alice", PASSWORD) == "success"
    # Once the account's ceiling is reached, nobody is let in to it for a while...
    await guesses(ceiling(users) - strangers)
    assert await login(users, next(addresses), "PLAIN", "alice", PASSWORD) == (
        "temporary-auth-failure"
    )
    # ...but other accounts are.
    assert await login(users, next(addresses), "PLAIN", "bob", PASSWORD) == "success"


# SCRAM probes


@pytest.mark.server_config(**PLAINTEXT, auth={"max_failures": 10}, limits=OPEN_DOORS)
async def test_aborted_scram_exchanges_count_towards_the_ceiling(users: Harness) -> None:
    addresses = loopback_addresses()
    allowed = ceiling(users)
    raws = await asyncio.gather(*(connect_from(users, next(addresses)) for _ in range(allowed)))
    probes = await asyncio.gather(*(scram_probe(raw, "alice") for raw in raws))
    assert probes == ["aborted"] * allowed
    registry = users.ctx.metrics.registry
    assert registry.get_sample_value("chorus_auth_failures_total") == allowed
    # Every probe got the salt and cost a guess: the account is at its ceiling.
    assert await login(users, next(addresses), "SCRAM-SHA-256", "alice", PASSWORD) == (
        "temporary-auth-failure"
    )


@pytest.mark.server_config(**PLAINTEXT, auth={"max_failures": 10}, limits=LONG_BACKOFF)
async def test_an_aborted_scram_exchange_is_a_failure_for_the_back_off(users: Harness) -> None:
    raw = await connect_from(users, "127.0.0.2")
    # Aborted before the server said anything about the account: nothing was tried.
    raw.send(f"<auth xmlns='{SASL}' mechanism='SCRAM-SHA-256'/>")
    assert (await answer(raw))[0] == "challenge"
    raw.send(f"<abort xmlns='{SASL}'/>")
    assert (await answer(raw))[0] == "aborted"
    # Aborted after the salt came back: a failure like a wrong password.
    assert await scram_probe(raw, "ghost") == "aborted"
    assert await scram_probe(raw, "ghost") == "temporary-auth-failure"
    assert await scram(raw, "alice") == "success"
    assert users.ctx.metrics.registry.get_sample_value("chorus_auth_failures_total") == 2
