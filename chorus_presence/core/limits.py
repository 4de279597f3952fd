"""Abuse limits: inbound byte rate per session, connections per address, failed logins per
address and per account, subscription requests per account.

All in memory and bounded: keyed tables forget their oldest keys past a fixed size, so a flood
of distinct addresses cannot grow the server's memory.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable
from time import monotonic

from chorus_presence.config import LimitsConfig

MAX_KEYS = 10_000


class TokenBucket:
    """`rate` units per second, at most `burst` saved up."""

    def __init__(self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic):
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = burst
        self._stamp = clock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def take(self, amount: float) -> float:
        """Spend `amount` (going into debt if need be); seconds to wait before going on."""
        self._refill()
        self._tokens -= amount
        return 0.0 if self._tokens >= 0 else -self._tokens / self.rate

    def available(self) -> float:
        self._refill()
        return self._tokens

    def try_take(self, amount: float = 1.0) -> bool:
        """Spend `amount` only if it is there."""
        self._refill()
        if self._tokens < amount:
            return False
        self._tokens -= amount
        return True


class KeyedBuckets:
    """One token bucket per key (an address, an account), the least recently used forgotten."""

    def __init__(self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic):
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def bucket(self, key: str) -> TokenBucket:
        bucket = self._buckets.pop(key, None)
        if bucket is None:
            bucket = TokenBucket(self.rate, self.burst, self._clock)
            if len(self._buckets) >= MAX_KEYS:
                self._buckets.popitem(last=False)
        self._buckets[key] = bucket
        return bucket

    def allow(self, key: str) -> bool:
        return self.bucket(key).try_take()


class ConnectionLimiter:
    """Concurrent connections and new connections per second, per address."""

    def __init__(self, *, concurrent: int, rate: float, burst: float) -> None:
        self.concurrent = concurrent
        self._open: dict[str, int] = {}
        self._rate = KeyedBuckets(rate, burst)

    def admit(self, address: str) -> bool:
        if self._open.get(address, 0) >= self.concurrent or not self._rate.allow(address):
            return False
        self._open[address] = self._open.get(address, 0) + 1
        return True

    def release(self, address: str) -> None:
        count = self._open.get(address, 0) - 1
        if count > 0:
            self._open[address] = count
        else:
            self._open.pop(address, None)


class FailureThrottle:
    """At most `allowed` failed logins per key within any `window` seconds; past that, none
    succeed until the oldest failure leaves the window, whatever the password."""

    def __init__(self, allowed: int, window: float) -> None:
        self.allowed = allowed
        self.window = window
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def throttled(self, key: str) -> bool:
        failures = self._failures.get(key)
        if failures is None:
            return False
        self._expire(failures)
        return len(failures) >= self.allowed

    def failed(self, key: str) -> None:
        failures = self._failures.pop(key, None)
        if failures is None:
            # The oldest `allowed` failures are all that matter.
            failures = deque(maxlen=self.allowed)
            if len(self._failures) >= MAX_KEYS:
                self._failures.popitem(last=False)
        failures.append(monotonic())
        self._failures[key] = failures

    def _expire(self, failures: deque[float]) -> None:
        horizon = monotonic() - self.window
        while failures and failures[0] <= horizon:
            failures.popleft()


class Limits:
    """The server's limiters, built from `[limits]`."""

    def __init__(self, config: LimitsConfig) -> None:
        self.config = config
        self.connections = ConnectionLimiter(
            concurrent=config.connections_per_address,
            rate=config.connection_rate,
            burst=config.connection_rate * 2,
        )
        self.failed_logins_by_address = FailureThrottle(
            config.auth_failures, config.auth_failure_window
        )
        self.failed_logins_by_account = FailureThrottle(
            config.auth_failures, config.auth_failure_window
        )
        self.subscriptions = KeyedBuckets(
            config.subscriptions_per_minute / 60, config.subscriptions_per_minute
        )

    def inbound_bucket(self) -> TokenBucket:
        return TokenBucket(self.config.bytes_per_second, self.config.burst_bytes)
