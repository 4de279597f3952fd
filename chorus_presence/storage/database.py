"""The SQLite connection: opening it durably, migrating its schema and serialising its use.

There is one write connection per process, and a small pool of read connections. Migrations are
the numbered `NNN_name.sql` files in the `migrations` package directory, applied in order, each
in its own transaction, and recorded in the `schema_version` table. Writes go through
`transaction()`: bodies run one at a time on the write connection, each in a savepoint, and the
bodies that arrive while a COMMIT is in flight share the next one (group commit), so one fsync
makes many callers' work durable. Reads go through `read()` on a read connection of their own,
never waiting for the writer.

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
# Read connections beside the one write connection; WAL lets them read while it writes.
READERS = 4

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


class _Batch:
    """The transaction that the bodies run since the last COMMIT share, and its outcome."""

    def __init__(self) -> None:
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        # Retrieved here so that a batch whose callers were all cancelled logs nothing.
        self.done.add_done_callback(lambda f: f.cancelled() or f.exception())
        self.committing = False


class Database:
    def __init__(self, conn: aiosqlite.Connection, path: Path) -> None:
        self.conn = conn
        self.path = path
        # Held by one transaction body, or by the COMMIT of the batch, at a time.
        self._lock = asyncio.Lock()
        self._holder: asyncio.Task[object] | None = None
        self._batch: _Batch | None = None
        self._committers: set[asyncio.Task[None]] = set()
        self._readers: asyncio.Queue[aiosqlite.Connection] = asyncio.Queue()
        self._all_readers: list[aiosqlite.Connection] = []

    @classmethod
    async def open(cls, path: Path, readers: int = READERS) -> Database:
        """Open (creating if needed) the database at `path`, apply pending migrations and open
        `readers` read connections beside the write connection."""
        _create_private(path)
        # isolation_level=None: transactions are begun and ended here, never implicitly.
        conn = await aiosqlite.connect(path, isolation_level=None)
        db: Database | None = None
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
            for _ in range(readers):
                await db._open_reader()
        except BaseException:
            await conn.close()
            if db is not None:
                for reader in db._all_readers:
                    await reader.close()
            raise
        return db

    async def _open_reader(self) -> None:
        reader = await aiosqlite.connect(self.path, isolation_level=None)
        self._all_readers.append(reader)
        reader.row_factory = sqlite3.Row
        await reader.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        # A read connection never writes; a statement that tries fails instead.
        await reader.execute("PRAGMA query_only=ON")
        self._readers.put_nowait(reader)

    async def close(self) -> None:
        # Every acknowledged-to-be batch is committed before the connection goes.
        while self._committers:
            await asyncio.gather(*self._committers, return_exceptions=True)
        async with self._lock:
            # A body that ended while close waited for the lock has its commit still queued.
            if self._batch is not None:
                await self._commit_locked(self._batch)
            await self.conn.close()
        for reader in self._all_readers:
            await reader.close()

    async def schema_version(self) -> int:
        async with self.read() as conn:
            return await _current_version(conn)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """A write transaction: its work is kept on normal exit and undone on an exception,
        and the call returns once the COMMIT holding the work is durable.

        Bodies run one at a time on the write connection, each in its own SAVEPOINT inside a
        transaction shared with the bodies that ran while the previous COMMIT was in flight;
        one COMMIT (one fsync) then makes them all durable. A failing body rolls back only to
        its savepoint and raises only to its caller. The batch is bounded: its COMMIT queues
        for the lock as soon as its first body ends, so bodies arriving later wait for the
        next batch. BEGIN IMMEDIATE takes the database's write lock up front, so a
        transaction never fails half-way because another process wrote first.
        """
        task = asyncio.current_task()
        self._refuse_nesting(task)
        failure: Exception | None = None
        async with self._lock:
            self._holder = task
            try:
                with _unavailable_as_such():
                    batch = await self._join_batch()
                    try:
                        await self.conn.execute("SAVEPOINT body")
                        try:
                            yield self.conn
                        except Exception as exc:
                            await self._undo_body(batch)
                            failure = exc
                        except BaseException:
                            await self._undo_body(batch)
                            raise
                        else:
                            await self.conn.execute("RELEASE body")
                    finally:
                        # Even after a failed body: the batch must not hold the write lock
                        # until some later caller happens along.
                        self._schedule_commit(batch)
            finally:
                self._holder = None
        # Shielded: a caller that gives up waiting does not undo the others' commit. A failed
        # caller waits too, so that once it hears of its failure the write lock is free.
        try:
            await asyncio.shield(batch.done)
        except Exception:
            if failure is None:
                raise
        if failure is not None:
            with _unavailable_as_such():
                raise failure

    def _schedule_commit(self, batch: _Batch) -> None:
        if batch.committing or batch.done.done():
            return
        batch.committing = True
        committer = asyncio.create_task(self._commit(batch))
        self._committers.add(committer)
        committer.add_done_callback(self._committers.discard)

    async def _join_batch(self) -> _Batch:
        if self._batch is None:
            await self.conn.execute("BEGIN IMMEDIATE")
            self._batch = _Batch()
        return self._batch

    async def _undo_body(self, batch: _Batch) -> None:
        if self.conn.in_transaction:
            await self.conn.execute("ROLLBACK TO body")
            await self.conn.execute("RELEASE body")
            return
        # SQLite rolled the whole transaction back itself (after SQLITE_FULL, say): the
        # earlier bodies of the batch are lost too, and their callers must hear so.
        self._batch = None
        batch.done.set_exception(StorageUnavailable("The transaction was rolled back"))

    async def _commit(self, batch: _Batch) -> None:
        async with self._lock:
            # Gone already when close committed it, or when SQLite rolled it back.
            if self._batch is batch:
                await self._commit_locked(batch)

    async def _commit_locked(self, batch: _Batch) -> None:
        self._batch = None
        try:
            with _unavailable_as_such():
                await self.conn.commit()
        except Exception as exc:
            await self._rollback()
            batch.done.set_exception(exc)
        else:
            batch.done.set_result(None)

    @asynccontextmanager
    async def read(self, snapshot: bool = True) -> AsyncIterator[aiosqlite.Connection]:
        """A read connection of its own, which sees every commit acknowledged before it.

        With `snapshot` the queries share one consistent snapshot (a read transaction);
        without it each statement reads the latest commit, which is all a single-statement
        read needs and spares the BEGIN and ROLLBACK; the caller then closes its cursor, as an
        unfinished statement would keep the connection's snapshot open.
        """
        self._refuse_nesting(asyncio.current_task())
        conn = await self._readers.get()
        try:
            with _unavailable_as_such():
                if not snapshot:
                    yield conn
                    return
                await conn.execute("BEGIN")
                try:
                    yield conn
                finally:
                    if conn.in_transaction:
                        await conn.rollback()
        finally:
            self._readers.put_nowait(conn)

    def _refuse_nesting(self, task: asyncio.Task[object] | None) -> None:
        if task is not None and task is self._holder:
            # The lock is not reentrant, and a read beside the body would not see its writes.
            raise RuntimeError("database transactions do not nest")

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
