"""Abuse limits: inbound byte rate per session, connections per address and on the whole
server (with the warnings about refusals held to one a minute), failed logins (per address,
a ceiling per account, and a back-off per account and address), subscription requests per
account.

All in memory and bounded: keyed tables forget their oldest keys past a fixed size, so a flood
of distinct addresses cannot grow the server's memory.

What the logins and the subscription service ask of the limits is an interface (`LoginGuard`,
`RequestLimit`), async because the counts may be kept outside the process: a cluster keeps
those that must hold per account or per address in Redis (`SharedCounters`), so that a client
cannot multiply its allowance by the number of nodes.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from time import monotonic
from typing import Protocol

from chorus_presence.config import LimitsConfig

MAX_KEYS = 10_000


class TokenBucket:
    """`rate` units per second, at most `burst` saved up."""

    # One per connection (its inbound bytes): no instance dict.
    __slots__ = ("_clock", "_stamp", "_tokens", "burst", "rate")

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

    async def admit(self, key: str) -> bool:
        """`allow`, as a `RequestLimit`."""
        return self.allow(key)


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


class WarningThrottle:
    """At most one warning every `every` seconds about something that can happen thousands of
    times a second (a full server, no descriptors left); the ones held back are counted, so the
    next warning can say how many there were."""

    def __init__(self, every: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.every = every
        self._clock = clock
        self._last: float | None = None
        self._held = 0

    def due(self) -> int:
        """One more occurrence: how many there were since the last warning (this one
        included) when a warning is due now, else 0."""
        self._held += 1
        now = self._clock()
        if self._last is not None and now - self._last < self.every:
            return 0
        self._last = now
        count, self._held = self._held, 0
        return count


class ConnectionCap:
    """Connections open at once on the whole server, so that it never runs out of descriptors
    (`limits.max_connections`); refusals are for one warning a minute, not one each."""

    def __init__(self, maximum: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.maximum = maximum
        self.open = 0
        self.refusals = WarningThrottle(60.0, clock)

    def admit(self) -> bool:
        if self.open >= self.maximum:
            return False
        self.open += 1
        return True

    def release(self) -> None:
        self.open = max(0, self.open - 1)


class FailureThrottle:
    """At most `allowed` failed logins per key within any `window` seconds; past that, none
    succeed until the oldest failure leaves the window, whatever the password.

    A login whose password is about to be checked counts as a failure at once (`reserve`), and
    gives its place back only if it succeeds (`release`): guesses that arrive together would
    otherwise all be checked before the first of them was counted.
    """

    def __init__(
        self, allowed: int, window: float, clock: Callable[[], float] | None = None
    ) -> None:
        self.allowed = allowed
        self.window = window
        # None: this module's `monotonic`, looked up at each call so that tests can replace it.
        self._clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def throttled(self, key: str) -> bool:
        failures = self._failures.get(key)
        if failures is None:
            return False
        self._expire(failures)
        return len(failures) >= self.allowed

    def failed(self, key: str) -> None:
        """Count a failure that was not reserved (one that got as far as naming no account)."""
        self._count(key)

    def reserve(self, key: str) -> float | None:
        """Count an attempt as failed before its outcome is known: the stamp to `release` it
        with, or None, with nothing counted, when the key is throttled."""
        if self.throttled(key):
            return None
        return self._count(key)

    def release(self, key: str, stamp: float) -> None:
        """Take back the failure `reserve` counted for an attempt that succeeded."""
        failures = self._failures.get(key)
        if failures is not None and stamp in failures:
            failures.remove(stamp)
            if not failures:
                # A key with no failures is no key: every account logged in would otherwise
                # keep one, and push out the keys that do count failures.
                del self._failures[key]

    def _count(self, key: str) -> float:
        failures = self._failures.pop(key, None)
        if failures is None:
            # The oldest `allowed` failures are all that matter.
            failures = deque(maxlen=self.allowed)
            if len(self._failures) >= MAX_KEYS:
                self._failures.popitem(last=False)
        stamp = self._now()
        failures.append(stamp)
        self._failures[key] = failures
        return stamp

    def _expire(self, failures: deque[float]) -> None:
        horizon = self._now() - self.window
        while failures and failures[0] <= horizon:
            failures.popleft()

    def _now(self) -> float:
        return (self._clock or monotonic)()


@dataclass(slots=True)
class _Backoff:
    failures: int
    # When the key may try again.
    until: float


class FailureBackoff:
    """Exponential back-off per key, an (account, address) pair: after the key's n-th failure
    in a row, its next attempt must wait `base * 2**(n - 1)` seconds, at most `cap`.

    An attempt counts as the next failure from the moment it starts (`reserve`), so attempts
    sent together from one key are checked one at a time; once it has failed (`failed`), its
    wait runs from then; a success forgets the key (`forgive`). A key that stays quiet for
    `forget_after` seconds once its wait is over starts again from one failure, and the least
    recently used keys are forgotten past MAX_KEYS.
    """

    def __init__(
        self,
        base: float,
        cap: float,
        forget_after: float,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.base = base
        self.cap = cap
        self.forget_after = forget_after
        # None: this module's `monotonic`, looked up at each call so that tests can replace it.
        self._clock = clock
        self._keys: OrderedDict[str, _Backoff] = OrderedDict()

    def delay(self, failures: int) -> float:
        """The wait after `failures` failures in a row."""
        # The cap is reached long before 2**64; a bigger power would overflow a float.
        return min(self.cap, self.base * 2 ** min(failures - 1, 64))

    def wait(self, key: str) -> float:
        """Seconds before `key` may try again; 0 when it may now."""
        now = self._now()
        entry = self._current(key, now)
        return 0.0 if entry is None else max(0.0, entry.until - now)

    def reserve(self, key: str) -> bool:
        """Count an attempt as the key's next failure and start its wait; False, with nothing
        counted, while the key must still wait."""
        now = self._now()
        entry = self._current(key, now)
        if entry is not None and now < entry.until:
            return False
        if entry is None:
            entry = _Backoff(0, now)
            if len(self._keys) >= MAX_KEYS:
                self._keys.popitem(last=False)
        self._keys.pop(key, None)
        self._keys[key] = entry
        entry.failures += 1
        entry.until = now + self.delay(entry.failures)
        return True

    def failed(self, key: str) -> None:
        """The reserved attempt failed: its wait runs from now."""
        entry = self._keys.get(key)
        if entry is None:
            # Forgotten while its password was being checked (a flood of other keys).
            self.reserve(key)
            return
        entry.until = self._now() + self.delay(entry.failures)

    def forgive(self, key: str) -> None:
        """The key got in: its failures no longer count."""
        self._keys.pop(key, None)

    def _current(self, key: str, now: float) -> _Backoff | None:
        entry = self._keys.get(key)
        if entry is not None and now - entry.until >= self.forget_after:
            del self._keys[key]
            return None
        return entry

    def _now(self) -> float:
        return (self._clock or monotonic)()


class LoginAttempt:
    """A login whose password is being checked, already counted as failed by every throttle:
    `succeeded` takes that back, `failed` confirms it. Only the first call counts."""

    def __init__(
        self,
        throttle: LoginThrottle,
        account: str,
        address: str,
        stamps: tuple[float | None, float | None],
    ) -> None:
        self._throttle = throttle
        self._account = account
        self._address = address
        self._stamps = stamps
        self._over = False

    def succeeded(self) -> None:
        if self._over:
            return
        self._over = True
        throttle = self._throttle
        address_stamp, account_stamp = self._stamps
        if address_stamp is not None:
            throttle.by_address.release(self._address, address_stamp)
        if account_stamp is not None:
            throttle.by_account.release(self._account, account_stamp)
        throttle.backoff.forgive(backoff_key(self._account, self._address))

    def failed(self) -> None:
        if self._over:
            return
        self._over = True
        self._throttle.backoff.failed(backoff_key(self._account, self._address))


class Attempt(Protocol):
    """A login being checked, counted as failed until `succeeded` says otherwise."""

    def succeeded(self) -> None: ...

    def failed(self) -> None: ...


class LoginGuard(Protocol):
    """The failed-login throttles as the logins use them, wherever the counts are kept.

    What reports an outcome is synchronous (the stream answers at once); an implementation
    that keeps its counts elsewhere sends those on and checks them in before its next answer.
    """

    async def address_refused(self, address: str) -> bool:
        """Whether `address` has failed too often to try at all now."""
        ...

    def address_failed(self, address: str) -> None:
        """A failure before any account was named (a malformed request, a bad username)."""
        ...

    async def admit(self, account: str, address: str) -> Attempt | None:
        """Count a login for `account` from `address` as failed before its password is
        checked; None, with nothing counted anywhere, when any throttle refuses it."""
        ...


class RequestLimit(Protocol):
    async def admit(self, key: str) -> bool:
        """Take one request of `key` from its allowance; False, taking nothing, when over."""
        ...


class LoginThrottle:
    """The failed-login throttles as one: per address; per account, a ceiling above what any
    one address may fail, against guessing spread over many addresses; and a back-off per
    (account, address) pair, so that a stranger's failures hold up the stranger rather than the
    account's owner, who logs in from elsewhere until the ceiling is reached."""

    def __init__(
        self, by_address: FailureThrottle, by_account: FailureThrottle, backoff: FailureBackoff
    ) -> None:
        self.by_address = by_address
        self.by_account = by_account
        self.backoff = backoff

    def address_throttled(self, address: str) -> bool:
        return self.by_address.throttled(address)

    def backoff_wait(self, account: str, address: str) -> float:
        """Seconds before `address` may try `account` again; 0 when it may now."""
        return self.backoff.wait(backoff_key(account, address))

    def address_failed(self, address: str) -> None:
        """A failure before any account was named (a malformed request, a bad username)."""
        self.by_address.failed(address)

    def begin(self, account: str, address: str) -> LoginAttempt | None:
        """Count a login for `account` from `address` as failed before its password is checked;
        None, with nothing counted anywhere, when any throttle refuses it."""
        pair = backoff_key(account, address)
        if (
            self.by_address.throttled(address)
            or self.by_account.throttled(account)
            or self.backoff.wait(pair) > 0
        ):
            return None
        # Nothing is awaited between the checks and the counting: no other login slips between.
        stamps = (self.by_address.reserve(address), self.by_account.reserve(account))
        self.backoff.reserve(pair)
        return LoginAttempt(self, account, address, stamps)

    async def address_refused(self, address: str) -> bool:
        return self.address_throttled(address)

    async def admit(self, account: str, address: str) -> LoginAttempt | None:
        return self.begin(account, address)


def backoff_key(account: str, address: str) -> str:
    """The back-off's key for `account` tried from `address`, here and in a cluster's Redis."""
    # Neither a nodeprep'd localpart nor an address can hold a NUL.
    return f"{account}\0{address}"


class RegistrationLimiter:
    """In-band registration attempts: at most `per_hour` from one address in any hour.

    The sliding window of the login throttle, so "5 an hour" never lets 9 through in the hour
    after a burst; a refused attempt counts nothing.
    """

    WINDOW = 3600.0

    def __init__(self, per_hour: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._attempts = FailureThrottle(per_hour, self.WINDOW, clock)

    def allow(self, address: str) -> bool:
        """Count one attempt from `address`; False, counting nothing, when over the limit."""
        return self._attempts.reserve(address) is not None


class SharedCounters(Protocol):
    """Counts kept outside the process, for every node of a cluster to share; each limit
    falls back to its in-process counterpart (`local`) while they cannot be reached."""

    def logins(self, local: LoginThrottle) -> LoginGuard: ...

    def subscriptions(self, local: KeyedBuckets) -> RequestLimit: ...

    async def close(self) -> None: ...


class Limits:
    """The server's limiters, built from `[limits]`; the failed logins and the subscription
    requests counted in `shared` when given, else here."""

    def __init__(self, config: LimitsConfig, shared: SharedCounters | None = None) -> None:
        self.config = config
        self._shared = shared
        self.connections = ConnectionLimiter(
            concurrent=config.connections_per_address,
            rate=config.connection_rate,
            burst=config.connection_rate * 2,
        )
        self.failed_logins_by_address = FailureThrottle(
            config.auth_failures, config.auth_failure_window
        )
        self.failed_logins_by_account = FailureThrottle(
            config.auth_account_failures, config.auth_failure_window
        )
        self.login_backoff = FailureBackoff(
            config.auth_backoff_base,
            config.auth_backoff_max,
            forget_after=config.auth_failure_window,
        )
        self.logins = LoginThrottle(
            self.failed_logins_by_address, self.failed_logins_by_account, self.login_backoff
        )
        self.subscriptions = KeyedBuckets(
            config.subscriptions_per_minute / 60, config.subscriptions_per_minute
        )
        self.server_connections = ConnectionCap(config.max_connections)
        self.login_guard: LoginGuard = self.logins
        self.subscription_requests: RequestLimit = self.subscriptions
        if shared is not None:
            self.login_guard = shared.logins(self.logins)
            self.subscription_requests = shared.subscriptions(self.subscriptions)

    async def close(self) -> None:
        if self._shared is not None:
            await self._shared.close()

    def inbound_bucket(self) -> TokenBucket:
        return TokenBucket(self.config.bytes_per_second, self.config.burst_bytes)
