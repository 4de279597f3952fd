"""The SQLite database: durability settings, migrations and transaction serialisation."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from chorus_presence.storage.database import Database, SchemaError, migrations


async def pragma(db: Database, name: str) -> object:
    async with db.conn.execute(f"PRAGMA {name}") as cursor:
        row = await cursor.fetchone()
    assert row is not None
    return row[0]


async def test_open_creates_the_directory_and_sets_pragmas(tmp_path: Path) -> None:
    db = await Database.open(tmp_path / "nested" / "dir" / "chorus.db")
    try:
        assert (tmp_path / "nested" / "dir" / "chorus.db").exists()
        assert await pragma(db, "journal_mode") == "wal"
        assert await pragma(db, "foreign_keys") == 1
        assert await pragma(db, "synchronous") == 2  # FULL
        assert await pragma(db, "busy_timeout") > 0
    finally:
        await db.close()


async def test_migrations_are_recorded_and_applied_once(tmp_path: Path) -> None:
    path = tmp_path / "chorus.db"
    latest = len(migrations())
    assert latest >= 1
    db = await Database.open(path)
    assert await db.schema_version() == latest
    await db.close()

    db = await Database.open(path)
    try:
        assert await db.schema_version() == latest
        async with db.read() as conn, conn.execute("SELECT version FROM schema_version") as cur:
            versions = [row[0] for row in await cur.fetchall()]
        assert versions == list(range(1, latest + 1))
    finally:
        await db.close()


async def test_a_newer_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "chorus.db"
    db = await Database.open(path)
    await db.close()
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO schema_version (version, name) VALUES (999, 'future')")
    with pytest.raises(SchemaError, match="schema version 999, newer"):
        await Database.open(path)


async def test_migration_files_are_numbered_in_order() -> None:
    found = migrations()
    assert [m.version for m in found] == list(range(1, len(found) + 1))
    assert found[0].name == "accounts"


async def test_transaction_commits_or_rolls_back(tmp_path: Path) -> None:
    db = await Database.open(tmp_path / "chorus.db")
    try:
        async with db.transaction() as conn:
            await conn.execute("CREATE TABLE t (x INTEGER)")
            await conn.execute("INSERT INTO t VALUES (1)")
        with pytest.raises(RuntimeError, match="boom"):
            async with db.transaction() as conn:
                await conn.execute("INSERT INTO t VALUES (2)")
                raise RuntimeError("boom")
        async with db.read() as conn, conn.execute("SELECT x FROM t") as cursor:
            assert [row[0] for row in await cursor.fetchall()] == [1]
    finally:
        await db.close()


async def test_concurrent_transactions_do_not_interleave(tmp_path: Path) -> None:
    db = await Database.open(tmp_path / "chorus.db")
    try:
        async with db.transaction() as conn:
            await conn.execute("CREATE TABLE counter (n INTEGER NOT NULL)")
            await conn.execute("INSERT INTO counter VALUES (0)")

        async def increment() -> None:
            async with db.transaction() as conn:
                async with conn.execute("SELECT n FROM counter") as cursor:
                    row = await cursor.fetchone()
                assert row is not None
                # Yield mid-transaction: without the lock another task would read the same n.
                await asyncio.sleep(0)
                await conn.execute("UPDATE counter SET n = ?", (row[0] + 1,))

        await asyncio.gather(*(increment() for _ in range(20)))
        async with db.read() as conn, conn.execute("SELECT n FROM counter") as cursor:
            row = await cursor.fetchone()
        assert row is not None and row[0] == 20
    finally:
        await db.close()


async def test_nested_transactions_fail_instead_of_hanging(tmp_path: Path) -> None:
    db = await Database.open(tmp_path / "chorus.db")
    try:
        async with db.transaction():
            with pytest.raises(RuntimeError, match="do not nest"):
                async with db.read():
                    pass
    finally:
        await db.close()


async def test_foreign_keys_are_enforced(tmp_path: Path) -> None:
    db = await Database.open(tmp_path / "chorus.db")
    try:
        with pytest.raises(sqlite3.IntegrityError):
            async with db.transaction() as conn:
                await conn.execute(
                    "INSERT INTO scram_credentials"
                    " VALUES ('ghost', 'SCRAM-SHA-1', x'00', 1, x'00', x'00')"
                )
    finally:
        await db.close()


async def test_processes_opening_a_fresh_database_together_both_succeed(tmp_path: Path) -> None:
    path = tmp_path / "chorus.db"
    # Each Database runs its own SQLite thread, so the migrations really do race.
    dbs = await asyncio.gather(*(Database.open(path) for _ in range(4)))
    try:
        for db in dbs:
            assert await db.schema_version() == len(migrations())
    finally:
        for db in dbs:
            await db.close()
