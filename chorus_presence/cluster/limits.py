"""The limits that must hold per account or per address across the cluster, counted in Redis:
failed logins (per address, the account's ceiling, the back-off per account and address) and
subscription requests per account. Same thresholds, windows and refusals as the in-process
throttles of `core.limits`, which they stand in for, so that alternating between nodes gains
a client nothing.

Each check and its count are one Lua script, atomic in Redis, timed by Redis's clock (the
nodes' clocks need not agree): a failure window is a sorted set of attempts scored by when
they were made, a back-off a hash (failures in a row, when the next attempt may come), a
subscription allowance a token bucket in a hash. Every key expires once it no longer holds
anything that counts, so Redis keeps no more than the in-process tables would.

Outcomes are reported synchronously by the logins (`Attempt.succeeded`, `failed`,
`address_failed`); they go to Redis in the background, and this node's next check waits for
them first.

While Redis cannot be reached (logged once, its return once), each limit is counted by this
node alone, by its in-process counterpart: an outage must not lock every user out.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Sequence

from redis.commands.core import AsyncScript

from chorus_presence.cluster.keys import Keys
from chorus_presence.cluster.link import FAILURES, redis_client
from chorus_presence.config import LimitsConfig, display_url
from chorus_presence.core.limits import Attempt, KeyedBuckets, LoginThrottle, backoff_key

log = logging.getLogger(__name__)

# Times are whole milliseconds of Redis's clock: exact in a Lua number, and in the strings
# Lua makes of numbers (14 significant digits).
_COMMON = """
local function now()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
-- Failures still in the window; those older than it (or just as old) no longer count.
local function failures(key, window, t)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', t - window)
  return redis.call('ZCARD', key)
end
-- Only the newest `allowed` failures matter.
local function count(key, member, allowed, window, t)
  redis.call('ZADD', key, t, member)
  redis.call('ZREMRANGEBYRANK', key, 0, -allowed - 1)
  redis.call('PEXPIRE', key, window)
end
local function delay(n, base, cap)
  return math.min(cap, base * 2 ^ math.min(n - 1, 64))
end
local function back_off(key, n, t, base, cap, forget)
  local until_ = t + delay(n, base, cap)
  redis.call('HSET', key, 'failures', n, 'until', until_)
  redis.call('PEXPIRE', key, until_ - t + forget)
end
"""

# KEYS: address window, account window, back-off. ARGV: member, allowed per address, per
# account, window, back-off base, cap, forget after. 1 when counted, 0 when refused.
_BEGIN = (
    _COMMON
    + """
local t = now()
local window = tonumber(ARGV[4])
if failures(KEYS[1], window, t) >= tonumber(ARGV[2])
    or failures(KEYS[2], window, t) >= tonumber(ARGV[3]) then
  return 0
end
local forget = tonumber(ARGV[7])
local state = redis.call('HMGET', KEYS[3], 'failures', 'until')
local n = 0
if state[1] then
  if t - tonumber(state[2]) >= forget then
    n = 0
  elseif t < tonumber(state[2]) then
    return 0
  else
    n = tonumber(state[1])
  end
end
count(KEYS[1], ARGV[1], tonumber(ARGV[2]), window, t)
count(KEYS[2], ARGV[1], tonumber(ARGV[3]), window, t)
back_off(KEYS[3], n + 1, t, tonumber(ARGV[5]), tonumber(ARGV[6]), forget)
return 1
"""
)

# KEYS: back-off. ARGV: base, cap, forget after. The attempt's wait runs from now.
_FAILED = (
    _COMMON
    + """
local n = tonumber(redis.call('HGET', KEYS[1], 'failures')) or 1
back_off(KEYS[1], n, now(), tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]))
return 1
"""
)

# KEYS: address window, account window, back-off. ARGV: member.
_SUCCEEDED = """
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('DEL', KEYS[3])
return 1
"""

# KEYS: address window. ARGV: allowed, window. 1 when throttled.
_REFUSED = (
    _COMMON
    + """
if failures(KEYS[1], tonumber(ARGV[2]), now()) >= tonumber(ARGV[1]) then
  return 1
end
return 0
"""
)

# KEYS: address window. ARGV: member, allowed, window.
_ADDRESS_FAILED = (
    _COMMON
    + """
local t = now()
failures(KEYS[1], tonumber(ARGV[3]), t)
count(KEYS[1], ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), t)
return 1
"""
)

# KEYS: bucket. ARGV: tokens per millisecond, burst. 1 when a token was taken. The key expires
# when the bucket would be full again: a missing bucket is a full one.
_TAKE = (
    _COMMON
    + """
local t = now()
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'stamp')
local tokens = burst
if state[1] then
  tokens = math.min(burst, tonumber(state[1]) + (t - tonumber(state[2])) * rate)
end
local taken = 0
if tokens >= 1 then
  tokens = tokens - 1
  taken = 1
end
redis.call('HSET', KEYS[1], 'tokens', tokens, 'stamp', t)
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / rate) + 1)
return taken
"""
)


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


class RedisCounters:
    """The Redis of `cluster.redis`, for the limits (`core.limits.SharedCounters`)."""

    def __init__(self, url: str, config: LimitsConfig, *, timeout: float) -> None:
        self.url = url
        self.config = config
        # As the node's link: a login never waits long for an answer.
        self._client = redis_client(url, timeout)
        database = int(self._client.connection_pool.connection_kwargs.get("db", 0))
        self.prefix = f"{Keys.for_database(database).prefix}limits:"
        self._scripts: dict[str, AsyncScript] = {}
        self._reported: set[asyncio.Task[object]] = set()
        self.up = True

    def logins(self, local: LoginThrottle) -> RedisLogins:
        return RedisLogins(self, local)

    def subscriptions(self, local: KeyedBuckets) -> RedisRequests:
        return RedisRequests(self, local)

    async def close(self) -> None:
        await self.settled()
        await self._client.aclose()

    def key(self, kind: str, name: str) -> str:
        return f"{self.prefix}{kind}:{name}"

    async def run(
        self, source: str, keys: Sequence[str], args: Sequence[str | int | float]
    ) -> bool | None:
        """Run a script: its answer as a bool, or None when Redis cannot be reached."""
        script = self._scripts.get(source)
        if script is None:
            script = self._scripts[source] = self._client.register_script(source)
        try:
            answer = await script(keys=list(keys), args=list(args))
        except FAILURES as exc:
            self._lost(exc)
            return None
        self._back()
        return bool(answer)

    def report(self, outcome: Awaitable[object]) -> None:
        """Send an outcome on in the background; the next check here waits for it."""
        task: asyncio.Task[object] = asyncio.ensure_future(outcome)
        self._reported.add(task)
        task.add_done_callback(self._reported.discard)

    async def settled(self) -> None:
        """Every outcome reported so far is in Redis (or was given up with it)."""
        if self._reported:
            await asyncio.gather(*self._reported)

    def _lost(self, exc: BaseException) -> None:
        if not self.up:
            return
        self.up = False
        log.error(
            "Redis at %s cannot be reached (%s): failed logins and subscription requests are"
            " counted by this node alone until it is back",
            display_url(self.url),
            exc or type(exc).__name__,
        )

    def _back(self) -> None:
        if self.up:
            return
        self.up = True
        log.warning(
            "Redis at %s is reachable again: failed logins and subscription requests are"
            " counted across the cluster again",
            display_url(self.url),
        )


class RedisAttempt:
    """A login counted as failed in Redis, for each throttle, under one member."""

    def __init__(self, counters: RedisCounters, keys: tuple[str, str, str], member: str) -> None:
        self._counters = counters
        self._keys = keys
        self._member = member
        self._over = False

    def succeeded(self) -> None:
        if self._over:
            return
        self._over = True
        self._counters.report(self._counters.run(_SUCCEEDED, self._keys, [self._member]))

    def failed(self) -> None:
        if self._over:
            return
        self._over = True
        config = self._counters.config
        self._counters.report(
            self._counters.run(
                _FAILED,
                self._keys[2:],
                [
                    _ms(config.auth_backoff_base),
                    _ms(config.auth_backoff_max),
                    _ms(config.auth_failure_window),
                ],
            )
        )


class RedisLogins:
    """`core.limits.LoginGuard` in Redis: the semantics of `core.limits.LoginThrottle`."""

    def __init__(self, counters: RedisCounters, local: LoginThrottle) -> None:
        self._counters = counters
        self._local = local

    async def address_refused(self, address: str) -> bool:
        counters, config = self._counters, self._counters.config
        await counters.settled()
        refused = await counters.run(
            _REFUSED,
            [counters.key("address", address)],
            [config.auth_failures, _ms(config.auth_failure_window)],
        )
        return self._local.address_throttled(address) if refused is None else refused

    def address_failed(self, address: str) -> None:
        self._counters.report(self._address_failed(address))

    async def _address_failed(self, address: str) -> None:
        counters, config = self._counters, self._counters.config
        counted = await counters.run(
            _ADDRESS_FAILED,
            [counters.key("address", address)],
            [secrets.token_hex(8), config.auth_failures, _ms(config.auth_failure_window)],
        )
        if counted is None:
            self._local.address_failed(address)

    async def admit(self, account: str, address: str) -> Attempt | None:
        counters, config = self._counters, self._counters.config
        await counters.settled()
        keys = (
            counters.key("address", address),
            counters.key("account", account),
            counters.key("backoff", backoff_key(account, address)),
        )
        member = secrets.token_hex(8)
        counted = await counters.run(
            _BEGIN,
            keys,
            [
                member,
                config.auth_failures,
                config.auth_account_failures,
                _ms(config.auth_failure_window),
                _ms(config.auth_backoff_base),
                _ms(config.auth_backoff_max),
                _ms(config.auth_failure_window),
            ],
        )
        if counted is None:
            return self._local.begin(account, address)
        return RedisAttempt(counters, keys, member) if counted else None


class RedisRequests:
    """`core.limits.RequestLimit` in Redis: the token bucket of `core.limits.KeyedBuckets`."""

    def __init__(self, counters: RedisCounters, local: KeyedBuckets) -> None:
        self._counters = counters
        self._local = local

    async def admit(self, key: str) -> bool:
        counters = self._counters
        taken = await counters.run(
            _TAKE,
            [counters.key("subscriptions", key)],
            [repr(self._local.rate / 1000), repr(self._local.burst)],
        )
        return self._local.allow(key) if taken is None else taken
