"""Hardening of logins: the failed-login throttles of `chorus_presence.core.limits` on a clock
the tests move by hand, and the SCRAM first step doing the same work for every username.

`FailureThrottle` and `FailureBackoff` take the clock as an argument. The SCRAM tests count the
work a real account repository is asked for, and the HMACs computed, rather than time it.
"""

from __future__ import annotations

import base64
import hmac
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from chorus_presence.config import Config, ConfigError, load_config
from chorus_presence.core import limits
from chorus_presence.core.bus import Bus
from chorus_presence.core.limits import (
    MAX_KEYS,
    FailureBackoff,
    FailureThrottle,
    Limits,
    LoginThrottle,
)
from chorus_presence.server.sasl import SaslExchange
from chorus_presence.services.accounts import AccountService
from chorus_presence.storage.accounts import AccountRepository
from chorus_presence.storage.database import Database

ITERATIONS = 4096
DOMAIN = "chorus.test"
SECRET = b"s" * 32
WINDOW = 300.0


class Clock:
    """Seconds that pass only when a test says so."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


def login_throttle(
    clock: Clock,
    *,
    per_address: int = 10,
    per_account: int = 50,
    base: float = 1.0,
    cap: float = 300.0,
) -> LoginThrottle:
    return LoginThrottle(
        FailureThrottle(per_address, WINDOW, clock),
        FailureThrottle(per_account, WINDOW, clock),
        FailureBackoff(base, cap, forget_after=WINDOW, clock=clock),
    )


def fail(throttle: LoginThrottle, account: str, address: str) -> None:
    attempt = throttle.begin(account, address)
    assert attempt is not None, f"{account} from {address} was refused"
    attempt.failed()


# FailureThrottle: counted before the outcome


def test_a_reserved_attempt_counts_before_its_outcome_is_known(clock: Clock) -> None:
    throttle = FailureThrottle(allowed=3, window=WINDOW, clock=clock)
    # Three attempts in flight at once fill the allowance; a fourth is refused unchecked.
    stamps = [throttle.reserve("alice") for _ in range(3)]
    assert None not in stamps
    assert throttle.reserve("alice") is None
    assert throttle.throttled("alice")
    assert not throttle.throttled("bob")


def test_releasing_a_successful_attempt_gives_its_place_back(clock: Clock) -> None:
    throttle = FailureThrottle(allowed=2, window=WINDOW, clock=clock)
    first = throttle.reserve("alice")
    clock.advance(1)
    assert throttle.reserve("alice") is not None
    assert first is not None
    throttle.release("alice", first)
    assert not throttle.throttled("alice")
    assert throttle.reserve("alice") is not None
    assert throttle.throttled("alice")


def test_successful_logins_never_push_out_counted_failures(clock: Clock) -> None:
    throttle = FailureThrottle(allowed=2, window=WINDOW, clock=clock)
    throttle.failed("victim")
    throttle.failed("victim")
    # More accounts than the throttle remembers log in successfully.
    for number in range(MAX_KEYS):
        stamp = throttle.reserve(f"user{number}")
        assert stamp is not None
        throttle.release(f"user{number}", stamp)
    assert throttle.throttled("victim")


def test_reserved_failures_leave_with_the_window(clock: Clock) -> None:
    throttle = FailureThrottle(allowed=2, window=WINDOW, clock=clock)
    throttle.reserve("alice")
    throttle.failed("alice")
    assert throttle.reserve("alice") is None
    clock.advance(WINDOW)
    assert throttle.reserve("alice") is not None


# FailureBackoff: base * 2**(n - 1), capped


def test_each_failure_doubles_the_wait_up_to_the_cap(clock: Clock) -> None:
    backoff = FailureBackoff(base=2.0, cap=60.0, forget_after=WINDOW, clock=clock)
    waits = []
    for _ in range(7):
        assert backoff.wait("pair") == 0
        assert backoff.reserve("pair")
        backoff.failed("pair")
        waits.append(backoff.wait("pair"))
        # Not a moment before the wait is over...
        clock.advance(waits[-1] - 0.001)
        assert not backoff.reserve("pair")
        clock.advance(0.001)
    assert waits == [2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]


def test_the_wait_runs_from_when_the_failure_was_known(clock: Clock) -> None:
    backoff = FailureBackoff(base=1.0, cap=60.0, forget_after=WINDOW, clock=clock)
    assert backoff.reserve("pair")
    # A slow check: the failure is known ten seconds after the attempt began.
    clock.advance(10)
    backoff.failed("pair")
    assert backoff.wait("pair") == 1.0


def test_attempts_in_flight_from_one_pair_go_one_at_a_time(clock: Clock) -> None:
    backoff = FailureBackoff(base=1.0, cap=60.0, forget_after=WINDOW, clock=clock)
    assert backoff.reserve("pair")
    assert not backoff.reserve("pair")
    assert backoff.reserve("other pair")


def test_a_success_forgets_the_failures(clock: Clock) -> None:
    backoff = FailureBackoff(base=1.0, cap=60.0, forget_after=WINDOW, clock=clock)
    for _ in range(4):
        backoff.reserve("pair")
        backoff.failed("pair")
        clock.advance(backoff.wait("pair"))
    assert backoff.reserve("pair")
    backoff.forgive("pair")
    assert backoff.wait("pair") == 0
    backoff.reserve("pair")
    backoff.failed("pair")
    assert backoff.wait("pair") == 1.0


def test_a_quiet_pair_starts_again_from_one_failure(clock: Clock) -> None:
    backoff = FailureBackoff(base=1.0, cap=60.0, forget_after=WINDOW, clock=clock)
    for _ in range(3):
        backoff.reserve("pair")
        backoff.failed("pair")
        clock.advance(backoff.wait("pair"))
    # Still remembered just before the quiet period is over: the next failure waits 8 s.
    clock.advance(WINDOW - 1)
    backoff.reserve("pair")
    backoff.failed("pair")
    assert backoff.wait("pair") == 8.0
    clock.advance(8.0 + WINDOW)
    backoff.reserve("pair")
    backoff.failed("pair")
    assert backoff.wait("pair") == 1.0


def test_the_back_off_remembers_at_most_max_keys(clock: Clock) -> None:
    backoff = FailureBackoff(base=1.0, cap=60.0, forget_after=WINDOW, clock=clock)
    backoff.reserve("victim")
    for number in range(MAX_KEYS):
        backoff.reserve(f"other{number}")
    assert backoff.wait("victim") == 0
    assert backoff.wait(f"other{MAX_KEYS - 1}") == 1.0


# LoginThrottle: per address, per (account, address), and the account's ceiling


def test_a_stranger_failing_makes_the_stranger_wait_not_the_owner(clock: Clock) -> None:
    throttle = login_throttle(clock)
    fail(throttle, "alice", "192.0.2.66")
    assert throttle.begin("alice", "192.0.2.66") is None
    # The owner, elsewhere, and another account from the stranger's address, get through.
    assert throttle.begin("alice", "198.51.100.1") is not None
    assert throttle.begin("bob", "192.0.2.66") is not None
    clock.advance(1.0)
    assert throttle.begin("alice", "192.0.2.66") is not None


def test_the_account_ceiling_stops_guesses_from_many_addresses(clock: Clock) -> None:
    throttle = login_throttle(clock, per_address=3, per_account=20)
    for number in range(20):
        fail(throttle, "alice", f"192.0.2.{number}")
    assert throttle.begin("alice", "198.51.100.1") is None
    assert throttle.begin("bob", "198.51.100.1") is not None
    clock.advance(WINDOW)
    assert throttle.begin("alice", "198.51.100.1") is not None


def test_the_owner_gets_in_until_the_ceiling_is_reached(clock: Clock) -> None:
    throttle = login_throttle(clock, per_address=3, per_account=20)
    for number in range(19):
        fail(throttle, "alice", f"192.0.2.{number}")
    owner = throttle.begin("alice", "198.51.100.1")
    assert owner is not None
    # The owner's own attempt counted while in flight, and is given back on success.
    assert throttle.begin("alice", "198.51.100.2") is None
    owner.succeeded()
    assert throttle.begin("alice", "198.51.100.2") is not None


def test_concurrent_attempts_are_counted_before_any_outcome(clock: Clock) -> None:
    throttle = login_throttle(clock, per_address=5, per_account=8)
    # From one address at many accounts: the address's allowance.
    started = [throttle.begin(f"user{n}", "192.0.2.1") for n in range(30)]
    assert sum(attempt is not None for attempt in started) == 5
    # From many addresses at one account: the account's ceiling.
    started = [throttle.begin("alice", f"198.51.100.{n}") for n in range(30)]
    assert sum(attempt is not None for attempt in started) == 8
    # From one address at one account: one at a time.
    started = [throttle.begin("bob", "203.0.113.1") for _ in range(30)]
    assert sum(attempt is not None for attempt in started) == 1


def test_a_refused_attempt_is_counted_nowhere(clock: Clock) -> None:
    throttle = login_throttle(clock, per_address=2, per_account=2)
    fail(throttle, "alice", "192.0.2.1")
    fail(throttle, "alice", "192.0.2.2")
    # Refused by alice's ceiling: 192.0.2.3 has used none of its allowance.
    for _ in range(5):
        assert throttle.begin("alice", "192.0.2.3") is None
    fail(throttle, "bob", "192.0.2.3")
    fail(throttle, "carol", "192.0.2.3")
    assert throttle.begin("dave", "192.0.2.3") is None


def test_a_success_from_the_pair_clears_its_back_off(clock: Clock) -> None:
    throttle = login_throttle(clock)
    fail(throttle, "alice", "192.0.2.1")
    clock.advance(1.0)
    fail(throttle, "alice", "192.0.2.1")
    clock.advance(2.0)
    attempt = throttle.begin("alice", "192.0.2.1")
    assert attempt is not None
    attempt.succeeded()
    # Calling again changes nothing: an attempt ends once.
    attempt.failed()
    fail(throttle, "alice", "192.0.2.1")
    assert throttle.backoff_wait("alice", "192.0.2.1") == 1.0


# Limits and the configuration


def test_limits_build_the_login_throttles_from_the_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clock: Clock
) -> None:
    monkeypatch.setattr(limits, "monotonic", clock)
    config = replace(
        Config.defaults(tmp_path).limits,
        auth_failures=2,
        auth_account_failures=3,
        auth_failure_window=60.0,
        auth_backoff_base=5.0,
        auth_backoff_max=20.0,
    )
    throttle = Limits(config).logins
    assert throttle.by_address.allowed == 2
    assert throttle.by_account.allowed == 3
    fail(throttle, "alice", "192.0.2.1")
    assert throttle.backoff_wait("alice", "192.0.2.1") == 5.0
    fail(throttle, "bob", "192.0.2.1")
    assert throttle.address_throttled("192.0.2.1")
    fail(throttle, "alice", "192.0.2.2")
    fail(throttle, "alice", "192.0.2.3")
    assert throttle.begin("alice", "192.0.2.4") is None
    clock.advance(60.0)
    assert throttle.begin("alice", "192.0.2.4") is not None


def test_the_login_throttle_keys_have_defaults_and_are_checked(tmp_path: Path) -> None:
    defaults = Config.defaults(tmp_path).limits
    assert (defaults.auth_failures, defaults.auth_account_failures) == (10, 50)
    assert (defaults.auth_backoff_base, defaults.auth_backoff_max) == (1.0, 300.0)
    path = tmp_path / "chorus.toml"
    path.write_text("[limits]\nauth_account_failures = 80\nauth_backoff_base = 0.5\n")
    loaded = load_config(path).limits
    assert (loaded.auth_account_failures, loaded.auth_backoff_base) == (80, 0.5)
    for bad in ("auth_backoff_base = 10.0\nauth_backoff_max = 5.0", "auth_backoff_base = 0"):
        path.write_text(f"[limits]\n{bad}\n")
        with pytest.raises(ConfigError, match="auth_backoff"):
            load_config(path)


# SCRAM: the same work for every username


class CountingRepository:
    """A real account repository that notes the name of every method called on it."""

    def __init__(self, inner: AccountRepository, log: list[str]) -> None:
        self._inner = inner
        self._log = log

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._inner, name)
        if not callable(attribute):
            return attribute

        def counted(*args: Any, **kwargs: Any) -> Any:
            self._log.append(f"repo.{name}")
            return attribute(*args, **kwargs)

        return counted


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = await Database.open(tmp_path / "chorus.db")
    yield database
    await database.close()


@pytest.fixture
def work() -> list[str]:
    return []


@pytest.fixture
def service(db: Database, work: list[str], monkeypatch: pytest.MonkeyPatch) -> AccountService:
    original: Callable[..., bytes] = hmac.digest

    def digest(*args: Any, **kwargs: Any) -> bytes:
        work.append("hmac")
        return original(*args, **kwargs)

    monkeypatch.setattr(hmac, "digest", digest)
    repo = CountingRepository(AccountRepository(db, DOMAIN), work)
    return AccountService(repo, Bus(), domain=DOMAIN, iterations=ITERATIONS)  # type: ignore[arg-type]


def exchange(service: AccountService) -> SaslExchange:
    return SaslExchange(
        "SCRAM-SHA-256",
        accounts=service,
        domain=DOMAIN,
        secret=SECRET,
        throttle=login_throttle(Clock()),
        address="192.0.2.1",
    )


async def server_first(service: AccountService, username: str) -> dict[str, str]:
    step = await exchange(service).start(f"n,,n={username},r=clientnonce".encode())
    assert step.kind == "challenge", step
    return dict(part.split("=", 1) for part in step.data.decode().split(","))


async def test_the_scram_first_step_does_the_same_work_for_every_user(
    service: AccountService, work: list[str]
) -> None:
    await service.create("alice", "pw")
    await service.create("dora", "pw")
    assert await service.set_disabled("dora", True)
    seen: dict[str, list[str]] = {}
    answers: dict[str, dict[str, str]] = {}
    for username in ("alice", "ghost", "dora"):
        work.clear()
        answers[username] = await server_first(service, username)
        seen[username] = list(work)
    assert seen["ghost"] == seen["alice"] == seen["dora"], seen
    assert {answer["i"] for answer in answers.values()} == {str(ITERATIONS)}
    lengths = {len(base64.b64decode(answer["s"])) for answer in answers.values()}
    assert len(lengths) == 1


async def test_disabling_an_account_does_not_change_its_salt(service: AccountService) -> None:
    await service.create("dora", "pw")
    before = (await server_first(service, "dora"))["s"]
    assert await service.set_disabled("dora", True)
    assert (await server_first(service, "dora"))["s"] == before
