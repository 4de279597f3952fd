"""The block list repository on a real SQLite file."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from chorus_presence.storage.accounts import AccountRepository
from chorus_presence.storage.blocks import BlockRepository
from chorus_presence.storage.database import Database


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = await Database.open(tmp_path / "chorus.db")
    accounts = AccountRepository(database, "chorus.test")
    for name in ("alice", "bob"):
        await accounts.create(name, {})
    yield database
    await database.close()


async def test_lists_are_kept_per_owner_and_committed(db: Database, tmp_path: Path) -> None:
    repo = BlockRepository(db)
    assert await repo.load_all() == {}
    await repo.add("alice", ["carol@chorus.test", "spam.example"])
    await repo.add("alice", ["spam.example"])
    await repo.add("bob", ["alice@chorus.test"])

    # Another connection sees the lists: each change was committed when the call returned.
    other = await Database.open(tmp_path / "chorus.db")
    try:
        assert await BlockRepository(other).load_all() == {
            "alice": {"carol@chorus.test", "spam.example"},
            "bob": {"alice@chorus.test"},
        }
    finally:
        await other.close()


async def test_remove_takes_only_the_named_items(db: Database) -> None:
    repo = BlockRepository(db)
    await repo.add("alice", ["carol@chorus.test", "spam.example"])
    await repo.add("bob", ["spam.example"])
    await repo.remove("alice", ["spam.example", "never@blocked.example"])
    assert await repo.load_all() == {"alice": {"carol@chorus.test"}, "bob": {"spam.example"}}
    await repo.remove("alice", ["carol@chorus.test"])
    assert await repo.load_all() == {"bob": {"spam.example"}}


async def test_deleting_an_account_deletes_its_list(db: Database) -> None:
    repo = BlockRepository(db)
    await repo.add("alice", ["spam.example"])
    await repo.add("bob", ["spam.example"])
    assert await AccountRepository(db, "chorus.test").delete("alice") is not None
    assert await repo.load_all() == {"bob": {"spam.example"}}
