"""The SQLite database: durability settings, migrations and transaction serialisation; account
removal, atomic roster changes and opening storage through the factory."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from chorus_presence.config import ConfigError, StorageConfig, load_config
from chorus_presence.storage.accounts import AccountRepository, RemovedAccount
from chorus_presence.storage.blocks import BlockRepository
from chorus_presence.storage.database import Database, SchemaError, migrations
from chorus_presence.storage.factory import open_repositories
from chorus_presence.storage.rosters import (
    PendingRequest,
    Roster,
    RosterChanges,
    RosterItem,
    RosterRepository,
)
from chorus_presence.storage.settings import SettingsRepository, UserSettings
from chorus_presence.storage.visibility import PresenceBlockRepository

DOMAIN = "chorus.test"
ALICE = f"alice@{DOMAIN}"
USERS = ("alice", "bob", "carol", "dave")


async def pragma(db: Database, name: str) -> Any:
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


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = await Database.open(tmp_path / "chorus.db")
    accounts = AccountRepository(database, DOMAIN)
    for name in USERS:
        await accounts.create(name, {})
    yield database
    await database.close()


async def rows_naming(db: Database, username: str) -> dict[str, int]:
    """Rows, by table and column, that still belong to or point at the account."""
    jid = f"{username}@{DOMAIN}"
    checks = [
        ("accounts", "username", username),
        ("roster_versions", "owner", username),
        ("user_settings", "owner", username),
        ("roster_items", "owner", username),
        ("roster_items", "contact", jid),
        ("subscription_requests", "owner", username),
        ("subscription_requests", "contact", jid),
        ("presence_blocks", "owner", username),
        ("presence_blocks", "contact", jid),
        ("blocks", "owner", username),
        ("blocks", "jid", jid),
    ]
    found = {}
    async with db.read() as conn:
        for table, column, value in checks:
            sql = f"SELECT count(*) FROM {table} WHERE {column} = ?"
            async with conn.execute(sql, (value,)) as cursor:
                row = await cursor.fetchone()
            assert row is not None
            if row[0]:
                found[f"{table}.{column}"] = row[0]
    return found


async def surround_alice(db: Database) -> tuple[RosterItem, RosterItem]:
    """Rows naming alice on others' side (items in bob's and carol's rosters, a request waiting
    for dave, dave's block list, bob's presence blocked list) and rows of her own; returns the
    items bob and carol hold for her."""
    bob_item = RosterItem(ALICE, "Alice", "both", groups=("Friends",))
    carol_item = RosterItem(ALICE, subscription="none", pending_out=True)
    await RosterRepository(db).apply(
        RosterChanges(
            upserts=[
                ("bob", bob_item),
                ("carol", carol_item),
                ("alice", RosterItem(f"bob@{DOMAIN}", subscription="both")),
            ],
            pending_add=[
                ("dave", PendingRequest(ALICE, "let me see")),
                ("alice", PendingRequest(f"carol@{DOMAIN}")),
            ],
            presence_blocks_add=[("bob", ALICE), ("alice", f"dave@{DOMAIN}")],
            settings=[("alice", {"away_when_offline": True})],
        )
    )
    await BlockRepository(db).add("dave", [ALICE, "spam.example"])
    await BlockRepository(db).add("alice", [f"carol@{DOMAIN}"])
    return bob_item, carol_item


async def test_removal_takes_every_row_naming_the_account(db: Database) -> None:
    bob_item, carol_item = await surround_alice(db)
    assert await rows_naming(db, "alice") != {}

    removed = await AccountRepository(db, DOMAIN).delete("alice")

    # Bob's and carol's rosters were at version 1; losing alice's item moves them on.
    assert removed == RemovedAccount(
        username="alice",
        roster_items={"bob": (bob_item, 2), "carol": (carol_item, 2)},
        pending_owners=("dave",),
        block_list_owners=("dave",),
        presence_block_owners=("bob",),
    )
    assert await rows_naming(db, "alice") == {}
    rosters = RosterRepository(db)
    assert await rosters.load("bob") == Roster("bob", version=2)
    assert await rosters.load("carol") == Roster("carol", version=2)
    # What named someone else stays.
    assert await BlockRepository(db).load_all() == {"dave": {"spam.example"}}
    assert await rows_naming(db, "bob") == {"accounts.username": 1, "roster_versions.owner": 1}


async def test_a_recreated_account_inherits_nothing(db: Database) -> None:
    await surround_alice(db)
    accounts = AccountRepository(db, DOMAIN)
    assert await accounts.delete("alice") is not None
    await accounts.create("alice", {})

    assert await rows_naming(db, "alice") == {"accounts.username": 1}
    assert await RosterRepository(db).load("alice") == Roster("alice")
    assert await SettingsRepository(db).get("alice") == UserSettings()
    assert not await PresenceBlockRepository(db).contains("bob", ALICE)


async def test_removing_no_account_changes_nothing(db: Database) -> None:
    ghost = RosterItem(f"ghost@{DOMAIN}")
    await RosterRepository(db).apply(RosterChanges(upserts=[("bob", ghost)]))
    assert await AccountRepository(db, DOMAIN).delete("ghost") is None
    assert await RosterRepository(db).load("bob") == Roster("bob", 1, {ghost.contact: ghost})


async def test_contact_lookups_are_indexed(db: Database) -> None:
    async with (
        db.read() as conn,
        conn.execute("SELECT tbl_name, sql FROM sqlite_master WHERE type = 'index'") as cursor,
    ):
        indexes = {(row[0], row[1]) for row in await cursor.fetchall() if row[1]}
    for table, column in [
        ("roster_items", "contact"),
        ("subscription_requests", "contact"),
        ("presence_blocks", "contact"),
        ("blocks", "jid"),
    ]:
        assert any(t == table and sql.endswith(f"({column})") for t, sql in indexes), table


async def test_roster_changes_carry_presence_blocks_and_settings(db: Database) -> None:
    blocks = PresenceBlockRepository(db)
    await blocks.add("bob", f"carol@{DOMAIN}")
    changes = RosterChanges(
        upserts=[("bob", RosterItem(ALICE, subscription="from"))],
        presence_blocks_add=[("bob", f"dave@{DOMAIN}")],
        presence_blocks_remove=[("bob", f"carol@{DOMAIN}")],
        settings=[("bob", {"visibility_policy": "nobody", "away_when_offline": True})],
    )
    assert await RosterRepository(db).apply(changes) == {"bob": 1}
    assert await blocks.list("bob") == [f"dave@{DOMAIN}"]
    assert await SettingsRepository(db).get("bob") == UserSettings(
        visibility_policy="nobody", away_when_offline=True
    )


async def test_a_failing_statement_rolls_back_every_change(db: Database) -> None:
    blocks = PresenceBlockRepository(db)
    await blocks.add("bob", f"carol@{DOMAIN}")
    rosters = RosterRepository(db)
    changes = RosterChanges(
        upserts=[("bob", RosterItem(ALICE))],
        pending_add=[("bob", PendingRequest(ALICE))],
        presence_blocks_add=[("bob", f"dave@{DOMAIN}")],
        presence_blocks_remove=[("bob", f"carol@{DOMAIN}")],
        # The column's CHECK constraint refuses this, after everything above was written.
        settings=[("bob", {"visibility_policy": "bogus"})],
    )
    with pytest.raises(sqlite3.IntegrityError):
        await rosters.apply(changes)
    assert await rosters.load("bob") == Roster("bob")
    assert await blocks.list("bob") == [f"carol@{DOMAIN}"]
    assert await SettingsRepository(db).get("bob") == UserSettings()


async def test_an_unknown_setting_is_refused_before_anything_is_written(db: Database) -> None:
    rosters = RosterRepository(db)
    changes = RosterChanges(
        upserts=[("bob", RosterItem(ALICE))], settings=[("bob", {"colour": "blue"})]
    )
    with pytest.raises(ValueError, match="unknown settings: colour"):
        await rosters.apply(changes)
    assert await rosters.load("bob") == Roster("bob")


async def test_presence_blocks_and_settings_count_as_changes_but_not_as_roster_state() -> None:
    assert not RosterChanges()
    assert RosterChanges(presence_blocks_add=[("bob", ALICE)])
    assert RosterChanges(presence_blocks_remove=[("bob", ALICE)])
    assert RosterChanges(settings=[("bob", {"away_when_offline": True})])
    roster = Roster("bob", 3)
    RosterChanges(
        presence_blocks_add=[("bob", ALICE)], settings=[("bob", {"away_when_offline": True})]
    ).apply_to(roster, None)
    assert roster == Roster("bob", 3)


async def test_empty_settings_leave_the_defaults(db: Database) -> None:
    settings = SettingsRepository(db)
    assert await settings.update("bob") == UserSettings()
    await RosterRepository(db).apply(RosterChanges(settings=[("bob", {})]))
    assert await settings.get("bob") == UserSettings()


async def test_the_factory_opens_sqlite_behind_the_interfaces(tmp_path: Path) -> None:
    repos = await open_repositories(StorageConfig(tmp_path / "data" / "chorus.db"), DOMAIN)
    try:
        await repos.accounts.create("alice", {})
        await repos.accounts.create("bob", {})
        await repos.block_lists.add("bob", [ALICE])
        await repos.presence_blocks.add("bob", ALICE)
        removed = await repos.accounts.delete("alice")
        assert removed is not None
        assert removed.block_list_owners == ("bob",)
        assert removed.presence_block_owners == ("bob",)
        assert await repos.block_lists.load_all() == {}
        assert await repos.presence_blocks.list("bob") == []
        assert await repos.accounts.list_with_status() == [("bob", False)]
    finally:
        await repos.close()


async def test_the_factory_refuses_an_unknown_backend(tmp_path: Path) -> None:
    path = tmp_path / "chorus.toml"
    path.write_text('[storage]\nbackend = "SQLite"\n', encoding="utf-8")
    assert load_config(path).storage.backend == "sqlite"
    path.write_text('[storage]\nbackend = "mysql"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"'storage\.backend' must be one of sqlite, postgresql"):
        load_config(path)
    # A StorageConfig built by hand skips that check; the factory still refuses it.
    with pytest.raises(ValueError, match="unknown storage backend 'mysql'"):
        await open_repositories(StorageConfig(tmp_path / "chorus.db", "mysql"), DOMAIN)
    assert not (tmp_path / "chorus.db").exists()
