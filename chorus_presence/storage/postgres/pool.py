"""The connection pool: opening it, transactions with per-user locks, and storage errors.

Every write runs in `transaction(*users)`, which takes the transaction-scoped advisory lock of
each named user before the caller's first statement. Locks are taken in ascending key order,
whatever order the users were named in, so two processes changing the same pair of users wait
for each other instead of deadlocking; no lock is held between transactions or inside the
process. Reads of several tables go through `read()`, one repeatable-read snapshot; a single
statement goes through `fetch`, `fetchrow` or `fetchval`.

The database going away (connection refused or lost, the server shutting down, too many
connections, a full disk, a lock that could not be had in time) raises `StorageUnavailable`:
nothing was committed and trying later may succeed. The pool replaces broken connections on
the next use, so service resumes by itself once the database answers again.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from chorus_presence.config import ConfigError, display_url
from chorus_presence.storage.errors import StorageUnavailable

# A string: asyncpg's classes are generic only to type checkers.
Connection: TypeAlias = "PoolConnectionProxy[asyncpg.Record]"

# Connections kept open by one process. A cluster node's writes are short, so a few suffice.
MIN_CONNECTIONS = 1
MAX_CONNECTIONS = 10
# Seconds to open one connection, to wait for a free one, and for one statement: past them the
# database is taken to be unavailable rather than slow.
CONNECT_TIMEOUT = 10.0
ACQUIRE_TIMEOUT = 10.0
COMMAND_TIMEOUT = 30.0

# SQLSTATE classes and codes that mean "not now" rather than a fault in the request:
# connection exceptions, insufficient resources (disk full, too many connections), operator
# intervention (shutdown, cancelled by timeout), system errors (I/O).
_UNAVAILABLE_CLASSES = frozenset({"08", "53", "57", "58"})
# Serialisation failure, deadlock detected, lock not available.
_UNAVAILABLE_CODES = frozenset({"40001", "40P01", "55P03"})


class DatabaseUnreachable(ConfigError):
    """The database named by `storage.url` cannot be opened at start: the URL is wrong, or
    the server does not answer or refuses the connection. The message is one line."""


def lock_key(name: str) -> int:
    """The advisory lock key for `name`: 64 bits of a hash, the same in every process."""
    digest = hashlib.blake2b(name.encode(), digest_size=8, person=b"chorus-lock").digest()
    return int.from_bytes(digest, "big", signed=True)


def user_lock(username: str) -> str:
    """The lock name of a user's rows. A username never holds a space, so no user's lock is a
    server-wide one such as "migrations"."""
    return f"user {username}"


async def lock(conn: Connection, *names: str) -> None:
    """Take the transaction-scoped advisory locks of `names`, in ascending key order."""
    for key in sorted({lock_key(name) for name in names}):
        await conn.execute("SELECT pg_advisory_xact_lock($1)", key)


class Pool:
    """An asyncpg connection pool with the transactions and error mapping storage relies on."""

    def __init__(self, pool: asyncpg.Pool[asyncpg.Record], url: str) -> None:
        self._pool = pool
        self.url = url

    @classmethod
    async def open(cls, url: str) -> Pool:
        """Connect to `url`; DatabaseUnreachable, naming the key, when that fails."""
        try:
            pool = await asyncpg.create_pool(
                url,
                min_size=MIN_CONNECTIONS,
                max_size=MAX_CONNECTIONS,
                timeout=CONNECT_TIMEOUT,
                command_timeout=COMMAND_TIMEOUT,
                server_settings={"application_name": "chorus-presence"},
            )
        except (OSError, TimeoutError, ValueError, asyncpg.PostgresError) as exc:
            reason = _reason(exc)
            if isinstance(exc, ValueError):
                reason = f"the URL cannot be read: {reason}"
            raise DatabaseUnreachable(
                f"Cannot connect to PostgreSQL at {display_url(url)} (storage.url): {reason}"
            ) from None
        return cls(pool, url)

    async def close(self) -> None:
        await self._pool.close()

    @asynccontextmanager
    async def transaction(self, *users: str) -> AsyncIterator[Connection]:
        """A write transaction holding the lock of each of `users`; committed on normal exit,
        rolled back on an exception."""
        async with self._connection() as conn, conn.transaction():
            await lock(conn, *(user_lock(user) for user in users))
            yield conn

    @asynccontextmanager
    async def read(self) -> AsyncIterator[Connection]:
        """One consistent snapshot for several queries; nothing can be written in it."""
        async with (
            self._connection() as conn,
            conn.transaction(isolation="repeatable_read", readonly=True),
        ):
            yield conn

    async def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        async with self._connection() as conn:
            return await conn.fetch(sql, *args)

    async def fetchrow(self, sql: str, *args: Any) -> asyncpg.Record | None:
        async with self._connection() as conn:
            return await conn.fetchrow(sql, *args)

    async def fetchval(self, sql: str, *args: Any) -> Any:
        async with self._connection() as conn:
            return await conn.fetchval(sql, *args)

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[Connection]:
        try:
            async with self._pool.acquire(timeout=ACQUIRE_TIMEOUT) as conn:
                try:
                    yield conn
                except asyncpg.exceptions.InternalClientError as exc:
                    # The driver's protocol state was broken under it, as when the server ends
                    # the connection while a statement starts: the connection is unusable, so
                    # it goes and the pool opens a new one.
                    conn.terminate()
                    raise _unavailable_error(exc) from exc
                except _DRIVER_ERRORS as exc:
                    # A connection that closed under the statement was lost, whatever the
                    # error says.
                    if _lost(conn):
                        raise _unavailable_error(exc) from exc
                    raise
        except _DRIVER_ERRORS as exc:
            if not unavailable(exc):
                raise
            raise _unavailable_error(exc) from exc


_DRIVER_ERRORS = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)


def _lost(conn: Connection) -> bool:
    try:
        return conn.is_closed()
    except asyncpg.InterfaceError:
        # The pool takes a connection back from its user as soon as it closes.
        return True


def _unavailable_error(exc: BaseException) -> StorageUnavailable:
    return StorageUnavailable(f"PostgreSQL is unavailable: {_reason(exc)}")


def unavailable(exc: BaseException) -> bool:
    """Whether `exc` means the database cannot serve now, rather than a fault in the request."""
    if isinstance(exc, OSError | TimeoutError):
        return True
    if isinstance(exc, asyncpg.PostgresError):
        code = str(exc.sqlstate or "")
        return code[:2] in _UNAVAILABLE_CLASSES or code in _UNAVAILABLE_CODES
    return False


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    if not text:
        text = "no answer in time" if isinstance(exc, TimeoutError) else type(exc).__name__
    return " ".join(text.split()).rstrip(".")
