"""The abuse limiters of `chorus_presence.core.limits`, on a clock the tests move by hand.

`TokenBucket` and `KeyedBuckets` take the clock as an argument. `ConnectionLimiter`,
`FailureThrottle` and `Limits` build their buckets (or read the time) themselves, so the `clock`
fixture also swaps the module's bucket classes and clock for ones bound to the same clock.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chorus_presence.config import Config, LimitsConfig
from chorus_presence.core import limits
from chorus_presence.core.limits import (
    MAX_KEYS,
    ConnectionLimiter,
    FailureThrottle,
    KeyedBuckets,
    Limits,
    TokenBucket,
)

# Set CHORUS_LONG_TESTS=1 for many more property examples.
LONG = os.environ.get("CHORUS_LONG_TESTS") == "1"


class Clock:
    """Seconds that pass only when a test says so."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()

    def token_bucket(rate: float, burst: float, clock: Clock = fake) -> TokenBucket:
        return TokenBucket(rate, burst, clock)

    def keyed_buckets(rate: float, burst: float, clock: Clock = fake) -> KeyedBuckets:
        return KeyedBuckets(rate, burst, clock)

    monkeypatch.setattr(limits, "TokenBucket", token_bucket)
    monkeypatch.setattr(limits, "KeyedBuckets", keyed_buckets)
    monkeypatch.setattr(limits, "monotonic", fake)
    return fake


# TokenBucket


def test_a_bucket_starts_full_and_lets_a_burst_through() -> None:
    clock = Clock()
    bucket = TokenBucket(100, 500, clock)
    assert bucket.available() == 500
    assert bucket.take(300) == 0.0
    assert bucket.take(200) == 0.0
    assert bucket.available() == 0


def test_going_past_the_burst_costs_the_debt_at_the_rate() -> None:
    clock = Clock()
    bucket = TokenBucket(100, 500, clock)
    assert bucket.take(500) == 0.0
    # 250 units in debt at 100 per second: two and a half seconds to wait.
    assert bucket.take(250) == pytest.approx(2.5)
    clock.advance(2.5)
    # The debt is paid off by then, and nothing more was saved.
    assert bucket.available() == pytest.approx(0)
    assert bucket.take(50) == pytest.approx(0.5)


def test_a_bucket_refills_at_its_rate_up_to_the_burst() -> None:
    clock = Clock()
    bucket = TokenBucket(100, 500, clock)
    bucket.take(500)
    clock.advance(1.5)
    assert bucket.available() == pytest.approx(150)
    clock.advance(3600)
    assert bucket.available() == 500


def test_try_take_spends_only_what_is_there() -> None:
    clock = Clock()
    bucket = TokenBucket(1, 2, clock)
    assert bucket.try_take()
    assert bucket.try_take()
    assert not bucket.try_take()
    # A refusal costs nothing: half a second later there is half a token, a second later one.
    clock.advance(0.5)
    assert not bucket.try_take()
    clock.advance(0.5)
    assert bucket.try_take()
    assert not bucket.try_take(0.5)


@settings(max_examples=5000 if LONG else 200, deadline=None)
@given(
    rate=st.integers(1, 10_000),
    burst=st.integers(1, 10_000),
    steps=st.lists(st.tuples(st.integers(1, 20_000), st.floats(0, 5, allow_nan=False)), min_size=1),
)
def test_a_reader_that_waits_as_told_never_beats_the_rate(
    rate: int, burst: int, steps: list[tuple[int, float]]
) -> None:
    """However the bytes are split and whatever pauses the sender takes, a reader that waits
    as the bucket says has spent at least (total - burst) / rate seconds: the guarantee the
    inbound limit gives against a flooder."""
    clock = Clock()
    bucket = TokenBucket(rate, burst, clock)
    start, total = clock(), 0
    for amount, pause in steps:
        clock.advance(pause)
        total += amount
        clock.advance(bucket.take(amount))
    assert clock() - start >= (total - burst) / rate - 1e-6


# KeyedBuckets


def test_each_key_has_its_own_bucket() -> None:
    clock = Clock()
    buckets = KeyedBuckets(1, 2, clock)
    assert buckets.allow("a") and buckets.allow("a")
    assert not buckets.allow("a")
    assert buckets.allow("b")
    clock.advance(1)
    assert buckets.allow("a")


def test_keyed_buckets_remember_at_most_max_keys() -> None:
    """A flood of distinct keys cannot grow the table: past MAX_KEYS the least recently used
    key is forgotten (and comes back with a full bucket), and not before."""
    clock = Clock()
    buckets = KeyedBuckets(0.001, 1, clock)
    assert buckets.allow("victim")
    for number in range(MAX_KEYS - 1):
        buckets.allow(f"other{number}")
    # MAX_KEYS keys so far, the victim among them: still remembered, still empty. Asking
    # about it made it the most recently used, so the oldest "other" key goes next.
    assert not buckets.allow("victim")
    buckets.allow("newcomer")
    assert not buckets.allow("victim")
    for number in range(MAX_KEYS):
        buckets.allow(f"more{number}")
    assert buckets.allow("victim")


# ConnectionLimiter


def test_concurrent_connections_are_capped_per_address(clock: Clock) -> None:
    limiter = ConnectionLimiter(concurrent=2, rate=1000, burst=1000)
    assert limiter.admit("192.0.2.1")
    assert limiter.admit("192.0.2.1")
    assert not limiter.admit("192.0.2.1")
    assert limiter.admit("192.0.2.2")
    limiter.release("192.0.2.1")
    assert limiter.admit("192.0.2.1")
    assert not limiter.admit("192.0.2.1")


def test_releasing_an_address_never_admitted_changes_nothing(clock: Clock) -> None:
    limiter = ConnectionLimiter(concurrent=1, rate=1000, burst=1000)
    limiter.release("192.0.2.9")
    assert limiter.admit("192.0.2.9")
    assert not limiter.admit("192.0.2.9")


def test_new_connections_are_rate_limited_per_address(clock: Clock) -> None:
    limiter = ConnectionLimiter(concurrent=100, rate=2, burst=3)
    for _ in range(3):
        assert limiter.admit("192.0.2.1")
        limiter.release("192.0.2.1")
    assert not limiter.admit("192.0.2.1")
    assert limiter.admit("192.0.2.2")
    clock.advance(0.5)
    assert limiter.admit("192.0.2.1")
    assert not limiter.admit("192.0.2.1")


def test_a_refusal_at_the_cap_costs_no_rate(clock: Clock) -> None:
    limiter = ConnectionLimiter(concurrent=1, rate=1, burst=2)
    assert limiter.admit("192.0.2.1")
    for _ in range(10):
        assert not limiter.admit("192.0.2.1")
    limiter.release("192.0.2.1")
    assert limiter.admit("192.0.2.1")


# FailureThrottle


def test_failures_throttle_a_key_after_the_allowed_number(clock: Clock) -> None:
    throttle = FailureThrottle(allowed=3, window=300)
    for _ in range(3):
        assert not throttle.throttled("alice")
        throttle.failed("alice")
    assert throttle.throttled("alice")
    assert not throttle.throttled("bob")


def test_the_throttle_lifts_once_the_window_has_passed(clock: Clock) -> None:
    throttle = FailureThrottle(allowed=3, window=300)
    for _ in range(3):
        throttle.failed("alice")
    clock.advance(300)
    for _ in range(3):
        assert not throttle.throttled("alice")
        throttle.failed("alice")
    assert throttle.throttled("alice")


def test_no_more_than_the_allowed_failures_within_any_window(clock: Clock) -> None:
    allowed, window = 3, 300.0
    throttle = FailureThrottle(allowed, window)
    failures: list[float] = []
    # A guesser who tries again the moment the throttle allows, for three windows.
    end = clock() + 3 * window
    while clock() < end:
        if not throttle.throttled("alice"):
            throttle.failed("alice")
            failures.append(clock())
        clock.advance(1)
    busiest = max(
        sum(1 for other in failures if start <= other < start + window) for start in failures
    )
    assert busiest <= allowed


# Limits, from the configuration


def limits_config(tmp_path: Path, **values: float) -> LimitsConfig:
    return replace(Config.defaults(tmp_path).limits, **values)


def test_limits_take_their_numbers_from_the_config(clock: Clock, tmp_path: Path) -> None:
    config = limits_config(
        tmp_path,
        bytes_per_second=2048,
        burst_bytes=4096,
        connections_per_address=2,
        connection_rate=1.5,
        auth_failures=2,
        auth_account_failures=2,
        auth_failure_window=60.0,
        subscriptions_per_minute=4,
    )
    built = Limits(config)

    inbound = built.inbound_bucket()
    assert inbound.take(4096) == 0.0
    assert inbound.take(1024) == pytest.approx(0.5)

    # Two open at once; and, with a burst of twice the per-second rate, three new ones.
    address = "192.0.2.1"
    assert built.connections.admit(address)
    assert built.connections.admit(address)
    assert not built.connections.admit(address)
    built.connections.release(address)
    built.connections.release(address)
    assert built.connections.admit(address)
    built.connections.release(address)
    assert not built.connections.admit(address)

    for throttle in (built.failed_logins_by_address, built.failed_logins_by_account):
        throttle.failed("x")
        assert not throttle.throttled("x")
        throttle.failed("x")
        assert throttle.throttled("x")

    for _ in range(4):
        assert built.subscriptions.allow("alice")
    assert not built.subscriptions.allow("alice")
    clock.advance(15)
    assert built.subscriptions.allow("alice")
    assert not built.subscriptions.allow("alice")


def test_each_session_gets_its_own_inbound_bucket(clock: Clock, tmp_path: Path) -> None:
    built = Limits(limits_config(tmp_path, bytes_per_second=1024, burst_bytes=1024))
    first, second = built.inbound_bucket(), built.inbound_bucket()
    assert first.take(4096) > 0
    assert second.take(1024) == 0.0
