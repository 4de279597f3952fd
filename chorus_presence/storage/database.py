"""The SQLite connection: opening it durably, migrating its schema and serialising its use.

There is one connection per process. Migrations are the numbered `NNN_name.sql` files in the
`migrations` package directory, applied in order, each in its own transaction, and recorded in
the `schema_version` table. All reads and writes go through `transaction()` or `read()`, which
take an in-process lock so coroutines sharing the connection never see or interleave each
other's half-finished transactions.

The database holds every account's SCRAM keys, so what `open` creates is private: the directory
0700 and the file 0600 whatever the umask (SQLite gives -wal and -shm the file's mode). A write
the database cannot take now (the disk is full, another process holds the lock) raises
`StorageUnavailable`, which the stanza router answers with resource-constraint.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import sqlite3
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import aiosqlite

from chorus_presence.storage.errors import StorageUnavailable

log = logging.getLogger(__name__)

# How long to wait for another process (the admin command line, say) to release its lock.
BUSY_TIMEOUT_MS = 5000
# The pause between two tries at switching a database that another process holds to WAL.
WAL_RETRY_SECONDS = 0.02

_MIGRATION_NAME = re.compile(r"(\d{3})_([a-z0-9_]+)\.sql")


class SchemaError(Exception):
    """The database cannot be brought to the state this code expects: the schema version
    (or a migration failed), or the journal mode."""


# Primary result codes (the low byte of an extended code) that mean "not now" rather than a
# fault: SQLITE_BUSY, SQLITE_LOCKED, SQLITE_FULL.
_UNAVAILABLE_CODES = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_FULL})


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def migrations(package: str = "chorus_presence.storage") -> list[Migration]:
    """The migrations packaged in `package`'s `migrations` directory, in order; their numbers
    must run 1, 2, 3... without gaps."""
    found = []
    for entry in resources.files(package).joinpath("migrations").iterdir():
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
        _create_private(path)
        # isolation_level=None: transactions are begun and ended here, never implicitly.
        conn = await aiosqlite.connect(path, isolation_level=None)
        try:
            conn.row_factory = sqlite3.Row
            # First, so that every later statement waits out other processes' locks.
            await conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            mode = await _enable_wal(conn)
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
            with _unavailable_as_such():
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
            with _unavailable_as_such():
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


def _create_private(path: Path) -> None:
    """Create the database's directory (0700) and an empty database file (0600) where they are
    missing, whatever the umask, before SQLite or any secret touches them.

    What exists already keeps its mode: a directory the operator made is theirs to set, and a
    database created by an older version is only reported."""
    directory = path.parent
    if not directory.is_dir():
        # Only the last directory is the data directory; parents get the usual mode.
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        # mkdir's mode is filtered through the umask; chmod is not.
        os.chmod(directory, 0o700)
    try:
        # O_EXCL: a file some other process (or the operator) created is left as it is. SQLite
        # takes an empty file for an empty database.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            log.warning(
                "database %s is open to other users (mode %03o): chmod 600 it and its -wal"
                " and -shm files",
                path,
                mode,
            )
        return
    try:
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


@contextmanager
def _unavailable_as_such() -> Iterator[None]:
    """Raise StorageUnavailable for the driver's "busy", "locked" and "full" errors."""
    try:
        yield
    except StorageUnavailable:
        raise
    except sqlite3.OperationalError as exc:
        if _primary_code(exc) not in _UNAVAILABLE_CODES:
            raise
        raise StorageUnavailable(str(exc)) from exc


def _primary_code(exc: sqlite3.Error) -> int | None:
    """The primary result code (the low byte of the extended one) of a driver error."""
    code = getattr(exc, "sqlite_errorcode", None)
    return None if code is None else code & 0xFF


async def _enable_wal(conn: aiosqlite.Connection) -> str:
    """Switch to WAL and return the journal mode. The switch needs the database to itself, and
    SQLite answers "locked" at once, without its busy handler, while another process makes the
    same switch (as on a fresh database opened by several at once), so it is tried again for
    as long as the busy timeout."""
    deadline = asyncio.get_running_loop().time() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            return await _pragma(conn, "journal_mode=WAL")
        except sqlite3.OperationalError as exc:
            busy = _primary_code(exc) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
            if not busy or asyncio.get_running_loop().time() >= deadline:
                raise
        await asyncio.sleep(WAL_RETRY_SECONDS)


async def _pragma(conn: aiosqlite.Connection, setting: str) -> str:
    async with conn.execute(f"PRAGMA {setting}") as cursor:
        row = await cursor.fetchone()
    return str(row[0]) if row else ""


async def _current_version(conn: aiosqlite.Connection) -> int:
    async with conn.execute("SELECT coalesce(max(version), 0) FROM schema_version") as cursor:
        row = await cursor.fetchone()
    return int(row[0]) if row else 0
