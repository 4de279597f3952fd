"""The SQLite connection: opening it durably, migrating its schema and serialising its use.

There is one connection per process. Migrations are the numbered `NNN_name.sql` files in the
`migrations` package directory, applied in order, each in its own transaction, and recorded in
the `schema_version` table. All reads and writes go through `transaction()` or `read()`, which
take an in-process lock so coroutines sharing the connection never see or interleave each
other's half-finished transactions.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import aiosqlite

# How long to wait for another process (the admin command line, say) to release its lock.
BUSY_TIMEOUT_MS = 5000

_MIGRATION_NAME = re.compile(r"(\d{3})_([a-z0-9_]+)\.sql")


class SchemaError(Exception):
    """The database cannot be brought to the state this code expects: the schema version
    (or a migration failed), or the journal mode."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def migrations() -> list[Migration]:
    """The packaged migrations in order; their numbers must run 1, 2, 3... without gaps."""
    found = []
    for entry in resources.files("chorus_presence.storage").joinpath("migrations").iterdir():
        match = _MIGRATION_NAME.fullmatch(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text("utf-8")))
    found.sort(key=lambda m: m.version)
    numbers = [m.version for m in found]
    if numbers != list(range(1, len(found) + 1)):
        raise SchemaError(f"migrations are not numbered 1..{len(found)}: {numbers}")
    return found


class Database:
    def __init__(self, conn: aiosqlite.Connection, path: Path) -> None:
        self.conn = conn
        self.path = path
        self._lock = asyncio.Lock()
        self._holder: asyncio.Task[object] | None = None

    @classmethod
    async def open(cls, path: Path) -> Database:
        """Open (creating if needed) the database at `path` and apply pending migrations."""
        path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: transactions are begun and ended here, never implicitly.
        conn = await aiosqlite.connect(path, isolation_level=None)
        try:
            conn.row_factory = sqlite3.Row
            # First, so that every later statement waits out other processes' locks.
            await conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            mode = await _pragma(conn, "journal_mode=WAL")
            if mode != "wal":
                raise SchemaError(f"database {path}: cannot use WAL journal mode (got {mode})")
            # FULL, not NORMAL: in WAL mode NORMAL may lose the last commits on power loss.
            await conn.execute("PRAGMA synchronous=FULL")
            await conn.execute("PRAGMA foreign_keys=ON")
            db = cls(conn, path)
            await db._migrate()
        except BaseException:
            await conn.close()
            raise
        return db

    async def close(self) -> None:
        async with self._lock:
            await self.conn.close()

    async def schema_version(self) -> int:
        async with self.read() as conn:
            return await _current_version(conn)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """A write transaction, committed on normal exit and rolled back on an exception.

        BEGIN IMMEDIATE takes the database's write lock up front, so a transaction never
        fails half-way because another process wrote first.
        """
        async with self._exclusive():
            await self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
                await self.conn.commit()
            except BaseException:
                await self._rollback()
                raise

    @asynccontextmanager
    async def read(self) -> AsyncIterator[aiosqlite.Connection]:
        """A consistent snapshot for queries; it ends in a rollback, undoing any write."""
        async with self._exclusive():
            await self.conn.execute("BEGIN")
            try:
                yield self.conn
            finally:
                await self._rollback()

    @asynccontextmanager
    async def _exclusive(self) -> AsyncIterator[None]:
        task = asyncio.current_task()
        if task is not None and task is self._holder:
            # asyncio.Lock is not reentrant: waiting here would hang the task forever.
            raise RuntimeError("database transactions do not nest")
        async with self._lock:
            self._holder = task
            try:
                yield
            finally:
                self._holder = None

    async def _rollback(self) -> None:
        # SQLite itself rolls back after some errors; a second ROLLBACK would then fail.
        if self.conn.in_transaction:
            await self.conn.rollback()

    async def _migrate(self) -> None:
        await self.conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_version ("
            " version INTEGER PRIMARY KEY,"
            " name TEXT NOT NULL,"
            " applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')))"
        )
        known = migrations()
        current = await _current_version(self.conn)
        if current > len(known):
            raise SchemaError(
                f"database {self.path} has schema version {current}, newer than the"
                f" {len(known)} this version of chorus-presence knows; upgrade it"
            )
        for migration in known[current:]:
            await self._apply(migration)

    async def _apply(self, migration: Migration) -> None:
        # executescript commits any open transaction before it starts, so the transaction
        # has to be part of the script. The name is safe to splice in: the file name
        # pattern allows only [a-z0-9_].
        script = (
            "BEGIN IMMEDIATE;\n"
            f"{migration.sql}\n;\n"
            "INSERT INTO schema_version (version, name)"
            f" VALUES ({migration.version}, '{migration.name}');\n"
            "COMMIT;\n"
        )
        try:
            await self.conn.executescript(script)
        except sqlite3.Error as exc:
            await self._rollback()
            # Another process may have applied it first; that is success, not failure.
            if await _current_version(self.conn) >= migration.version:
                return
            raise SchemaError(
                f"database {self.path}: migration {migration.version:03d}_{migration.name}"
                f" failed: {exc}"
            ) from exc


async def _pragma(conn: aiosqlite.Connection, setting: str) -> str:
    async with conn.execute(f"PRAGMA {setting}") as cursor:
        row = await cursor.fetchone()
    return str(row[0]) if row else ""


async def _current_version(conn: aiosqlite.Connection) -> int:
    async with conn.execute("SELECT coalesce(max(version), 0) FROM schema_version") as cursor:
        row = await cursor.fetchone()
    return int(row[0]) if row else 0
