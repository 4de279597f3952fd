"""This node's connection to Redis: commands written in the order they were given, this node's
channel read, and whether Redis can be reached.

Writes (directory changes and publications) queue up and go out in pipelines, one at a time,
so what one node publishes reaches every other in the order it was put, and a burst costs one
round trip. Losing Redis is logged loudly once, with how much was dropped in the meantime, and
its return once; the node is told of both (`on_lost`, `on_restored`) so that it can refuse what
needs Redis and then join again. Nothing waits for Redis while it is away: writes are dropped,
not kept without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.retry import Retry

from chorus_presence.config import ConfigError, display_url

log = logging.getLogger(__name__)

Write = Callable[[Pipeline], object]
# Failures of Redis, or of the connection to it.
FAILURES = (RedisError, OSError)
# Connections one client keeps to Redis: the link's pub/sub and its writes, or the limits'
# checks of the logins in flight.
MAX_CONNECTIONS = 32


def redis_client(url: str, timeout: float) -> aioredis.Redis:
    """A client of the Redis at `url` that retries once, at once and on a new connection, a
    connection Redis closed (it restarted): a failure of Redis itself must be seen at once, and
    is retried by whoever knows what to do after one. Commands beyond the pool's connections
    wait for one (for `timeout` at most) instead of failing, as a login storm's would."""
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=MAX_CONNECTIONS,
        timeout=timeout,
        socket_connect_timeout=timeout,
        socket_timeout=timeout,
        retry=Retry(NoBackoff(), 1),
        retry_on_error=[RedisConnectionError],
    )
    return aioredis.Redis.from_pool(pool)


class RedisLink:
    def __init__(
        self,
        url: str,
        *,
        timeout: float,
        retry_every: float,
        on_lost: Callable[[], None],
        on_restored: Callable[[], None],
    ) -> None:
        self.url = url
        self.client = redis_client(url, timeout)
        self.database = int(self.client.connection_pool.connection_kwargs.get("db", 0))
        self._retry_every = retry_every
        self._on_lost = on_lost
        self._on_restored = on_restored
        self._queue: list[Write | asyncio.Future[None]] = []
        self._pending = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self.up = False
        # Set when the node stops: the loops end at their next turn.
        self.closing = False
        self._dropped = 0
        # Set while this node's channel is subscribed: only then does a peer's answer arrive.
        self.listening = asyncio.Event()

    async def connect(self) -> None:
        """Reach Redis once at start; a ConfigError naming `cluster.redis` if it cannot."""
        try:
            await self.client.ping()
        except FAILURES as exc:
            await self.close()
            raise ConfigError(
                f"Cannot connect to Redis at {display_url(self.url)} (cluster.redis): {exc}"
            ) from None
        self.up = True

    async def close(self) -> None:
        await self.client.aclose()

    # Health

    def failed(self, exc: BaseException, *, dropped: int = 0) -> None:
        self._dropped += dropped
        if not self.up:
            return
        self.up = False
        log.error(
            "Redis at %s cannot be reached (%s): messages to other nodes are dropped, and"
            " stanzas for their users refused, until it is back",
            display_url(self.url),
            exc or type(exc).__name__,
        )
        self._on_lost()

    def succeeded(self) -> None:
        if self.up:
            return
        self.up = True
        log.warning(
            "Redis at %s is reachable again (%d writes dropped meanwhile): rejoining the cluster",
            display_url(self.url),
            self._dropped,
        )
        self._dropped = 0
        self._on_restored()

    # Writes, in order

    def write(self, command: Write) -> None:
        if not self.up:
            self._dropped += 1
            return
        self._queue.append(command)
        self._idle.clear()
        self._pending.set()

    def written(self) -> asyncio.Future[None]:
        """Done once everything written so far went out (or was dropped): Redis has executed
        it, so a publication is on its way to every subscriber."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if not self.up:
            future.set_result(None)
            return future
        self._queue.append(future)
        self._idle.clear()
        self._pending.set()
        return future

    async def run_writer(self) -> None:
        try:
            while not self.closing:
                await self._pending.wait()
                self._pending.clear()
                while self._queue:
                    await self._execute()
                self._idle.set()
        finally:
            # Nobody waits on a writer that stopped.
            self._settle([item for item in self._queue if isinstance(item, asyncio.Future)])

    async def _execute(self) -> None:
        batch, self._queue = self._queue, []
        commands = [item for item in batch if not isinstance(item, asyncio.Future)]
        try:
            if commands:
                pipe = self.client.pipeline(transaction=False)
                for command in commands:
                    command(pipe)
                try:
                    await pipe.execute()
                except FAILURES as exc:
                    cancelled_meanwhile()
                    self.failed(exc, dropped=len(commands))
                else:
                    self.succeeded()
        finally:
            self._settle([item for item in batch if isinstance(item, asyncio.Future)])

    @staticmethod
    def _settle(futures: list[asyncio.Future[None]]) -> None:
        for future in futures:
            if not future.done():
                future.set_result(None)

    async def drain(self, timeout: float) -> None:
        """Wait, up to `timeout`, until everything written so far went out (or was dropped)."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            log.warning("%d Redis writes still waiting at shutdown", len(self._queue))

    # This node's channel

    async def listen(self, channel: str, handle: Callable[[bytes], Awaitable[None]]) -> None:
        """Read `channel` for ever, handing each message to `handle` in order. After a break
        the channel is subscribed again every `retry_every` seconds until Redis answers;
        what was published meanwhile is lost, so the node is told (`on_restored`) once the
        channel is back, even if Redis itself never went away."""
        gap = False
        while not self.closing:
            pubsub = self.client.pubsub()
            try:
                await pubsub.subscribe(channel)
                self.listening.set()
                if gap and self.up:
                    self._on_restored()
                gap = False
                while not self.closing:
                    message = await pubsub.get_message(
                        ignore_subscribe_messages=True, timeout=self._retry_every
                    )
                    if message is not None and message.get("type") == "message":
                        await handle(message["data"])
            except FAILURES as exc:
                cancelled_meanwhile()
                gap = True
                await self._check(exc)
            finally:
                self.listening.clear()
                with contextlib.suppress(*FAILURES):
                    await pubsub.aclose()
            await asyncio.sleep(self._retry_every)

    async def _check(self, exc: BaseException) -> None:
        """The channel broke: Redis is lost unless it still answers."""
        try:
            await self.client.ping()
        except FAILURES:
            cancelled_meanwhile()
            self.failed(exc)
        else:
            log.warning("this node's channel broke (%s): subscribing again", exc)


def cancelled_meanwhile() -> None:
    """Raise CancelledError if the running task was cancelled: the Redis client may turn a
    cancellation in the middle of a command into a connection error, which a loop here would
    otherwise take for a failure of Redis and carry on."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
