"""The SQLite write path and read pool: group commit of concurrent transactions, each body in
its own savepoint, durability on return, and reads on connections of their own."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from chorus_presence.storage.database import Database
from chorus_presence.storage.last_activity import LastActivityRepository, LastLogout

# Guards against a hang only; nothing here measures time.
HANG = 10


async def with_items(path: Path) -> Database:
    database = await Database.open(path)
    async with database.transaction() as conn:
        await conn.execute("CREATE TABLE item (n INTEGER PRIMARY KEY)")
    return database


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = await with_items(tmp_path / "chorus.db")
    yield database
    await database.close()


class HeldBody:
    """A transaction inserting `n` whose body, once the row is in, waits to be released."""

    def __init__(self, db: Database, n: int) -> None:
        self.started = asyncio.Event()
        self.release = asyncio.Event()
        self.task = asyncio.create_task(self._run(db, n))

    async def _run(self, db: Database, n: int) -> None:
        async with db.transaction() as conn:
            await conn.execute("INSERT INTO item (n) VALUES (?)", (n,))
            self.started.set()
            await self.release.wait()

    async def entered(self) -> None:
        await asyncio.wait_for(self.started.wait(), HANG)


async def commits(db: Database) -> list[str]:
    """The COMMITs the write connection issues from now on."""
    seen: list[str] = []
    await db.conn.set_trace_callback(
        lambda sql: seen.append(sql) if sql.strip().upper() == "COMMIT" else None
    )
    return seen


async def items(path: Path) -> set[int]:
    """The rows as a separate process would see them: on disk, committed."""
    with sqlite3.connect(path) as other:
        return {row[0] for row in other.execute("SELECT n FROM item")}


async def insert(db: Database, n: int, fail: bool = False) -> None:
    async with db.transaction() as conn:
        await conn.execute("INSERT INTO item (n) VALUES (?)", (n,))
        if fail:
            raise ValueError(f"Item {n} fails")


async def test_concurrent_transactions_share_commits(db: Database) -> None:
    seen = await commits(db)
    await asyncio.wait_for(asyncio.gather(*(insert(db, n) for n in range(50))), HANG)
    assert await items(db.path) == set(range(50))
    # Bodies arriving while a COMMIT is in flight join the next one.
    assert 1 <= len(seen) < 50


async def test_a_failing_body_undoes_only_its_own_work(db: Database) -> None:
    seen = await commits(db)
    results = await asyncio.gather(
        insert(db, 1), insert(db, 2, fail=True), insert(db, 3), return_exceptions=True
    )
    assert results[0] is None and results[2] is None
    assert isinstance(results[1], ValueError)
    assert await items(db.path) == {1, 3}
    assert len(seen) == 1


async def test_a_failed_body_alone_does_not_keep_the_write_lock(db: Database) -> None:
    with pytest.raises(ValueError):
        await insert(db, 1, fail=True)
    # Another process can write at once: no transaction was left open.
    with sqlite3.connect(db.path, timeout=0) as other:
        other.execute("INSERT INTO item (n) VALUES (7)")
    async with db.read() as conn, conn.execute("SELECT n FROM item") as cursor:
        assert [row[0] for row in await cursor.fetchall()] == [7]


async def test_a_transaction_returns_once_its_work_is_on_disk(db: Database) -> None:
    for n in range(5):
        await insert(db, n)
        assert n in await items(db.path)


async def test_reads_do_not_wait_for_a_writer(db: Database) -> None:
    await insert(db, 1)
    writer = HeldBody(db, 2)
    await writer.entered()

    async def read() -> list[int]:
        async with db.read(snapshot=False) as conn, conn.execute("SELECT n FROM item") as cur:
            return [row[0] for row in await cur.fetchall()]

    # The writer's uncommitted row is invisible; the acknowledged one is there.
    assert await asyncio.wait_for(read(), HANG) == [1]
    writer.release.set()
    await asyncio.wait_for(writer.task, HANG)
    assert await read() == [1, 2]


async def test_a_snapshot_read_sees_one_state(db: Database) -> None:
    await insert(db, 1)
    async with db.read() as conn:
        async with conn.execute("SELECT count(*) FROM item") as cursor:
            before = await cursor.fetchone()
        await insert(db, 2)
        async with conn.execute("SELECT count(*) FROM item") as cursor:
            after = await cursor.fetchone()
    assert before is not None and after is not None
    assert before[0] == after[0] == 1


async def test_read_connections_refuse_writes(db: Database) -> None:
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        async with db.read() as conn:
            await conn.execute("INSERT INTO item (n) VALUES (1)")
    assert await items(db.path) == set()


async def test_close_commits_a_body_that_ended_while_it_waited(tmp_path: Path) -> None:
    db = await with_items(tmp_path / "chorus.db")
    writer = HeldBody(db, 1)
    await writer.entered()
    closing = asyncio.create_task(db.close())
    writer.release.set()
    await asyncio.wait_for(asyncio.gather(writer.task, closing), HANG)
    assert await items(tmp_path / "chorus.db") == {1}


async def test_logouts_that_arrive_together_share_commits(db: Database) -> None:
    users = [f"user{n}" for n in range(30)]
    async with db.transaction() as conn:
        await conn.executemany("INSERT INTO accounts (username) VALUES (?)", [(u,) for u in users])
    repo = LastActivityRepository(db)
    seen = await commits(db)
    await asyncio.wait_for(
        asyncio.gather(*(repo.record(u, float(n), "Gone") for n, u in enumerate(users))), HANG
    )
    assert 1 <= len(seen) < len(users)
    # Acknowledged means durable: a second opening of the file reads them all.
    reopened = await Database.open(db.path)
    try:
        again = LastActivityRepository(reopened)
        assert [await again.get(u) for u in users] == [
            LastLogout(float(n), "Gone") for n in range(len(users))
        ]
    finally:
        await reopened.close()
