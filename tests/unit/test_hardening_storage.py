"""Hardening of the SQLite storage, on real database files:

- the data directory is created 0700 and the database with its -wal and -shm files 0600,
  whatever the umask, since the database holds every account's SCRAM keys;
- opening storage repairs presence blocks left half-done by older versions (the contact still
  subscribed to the owner's presence): the block wins, on both sides, in one transaction.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import stat
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import pytest

from chorus_presence.config import StorageConfig
from chorus_presence.storage.accounts import AccountRepository
from chorus_presence.storage.database import Database
from chorus_presence.storage.factory import open_repositories

DOMAIN = "chorus.test"


@contextmanager
def umask(mask: int) -> Iterator[None]:
    previous = os.umask(mask)
    try:
        yield
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# File modes


@pytest.mark.parametrize("mask", [0o022, 0o002, 0o000])
async def test_database_files_are_private_whatever_the_umask(tmp_path: Path, mask: int) -> None:
    data = tmp_path / "data"
    path = data / "chorus.db"
    with umask(mask):
        db = await Database.open(path)
        try:
            # A write, so that the write-ahead log exists too.
            await AccountRepository(db, DOMAIN).create("alice", {})
            modes = {
                name: mode(data / name) for name in ("chorus.db", "chorus.db-wal", "chorus.db-shm")
            }
        finally:
            await db.close()
    assert mode(data) == 0o700
    assert modes == {"chorus.db": 0o600, "chorus.db-wal": 0o600, "chorus.db-shm": 0o600}


async def test_an_existing_directory_keeps_its_mode(tmp_path: Path) -> None:
    # A directory the operator made (/var/lib/chorus, say) is theirs to set; only what the
    # server creates is made private.
    tmp_path.chmod(0o750)
    db = await Database.open(tmp_path / "chorus.db")
    await db.close()
    assert mode(tmp_path) == 0o750
    assert mode(tmp_path / "chorus.db") == 0o600


# The start-up repair of half-done presence blocks


async def fresh_database(path: Path, users: list[str]) -> None:
    db = await Database.open(path)
    try:
        accounts = AccountRepository(db, DOMAIN)
        for name in users:
            await accounts.create(name, {})
    finally:
        await db.close()


def rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    with closing(sqlite3.connect(path)) as connection:
        return [tuple(row) for row in connection.execute(sql)]


def items(path: Path) -> dict[tuple[str, str], tuple[str, int, int]]:
    """(owner, contact) -> (subscription, pending_out, approved) of every roster item."""
    return {
        (str(owner), str(contact)): (str(subscription), int(pending), int(approved))
        for owner, contact, subscription, pending, approved in rows(
            path,
            "SELECT owner, contact, subscription, pending_out, approved FROM roster_items",
        )
    }


def versions(path: Path) -> dict[str, int]:
    return {
        str(owner): int(version)
        for owner, version in rows(path, "SELECT owner, version FROM roster_versions")
    }


@pytest.fixture
async def half_done(tmp_path: Path) -> Path:
    """A database with presence blocks an older version left half-done, and healthy rows."""
    path = tmp_path / "chorus.db"
    await fresh_database(path, ["alice", "bob", "carol", "dave", "erin"])
    with closing(sqlite3.connect(path)) as connection, connection:
        connection.executemany(
            "INSERT INTO roster_items (owner, contact, subscription, pending_out, approved)"
            " VALUES (?, ?, ?, ?, ?)",
            [
                # alice blocked bob, but each still sees the other.
                ("alice", f"bob@{DOMAIN}", "both", 0, 0),
                ("bob", f"alice@{DOMAIN}", "both", 0, 0),
                # alice blocked carol, who still sees her, with a pre-approval left over.
                ("alice", f"carol@{DOMAIN}", "from", 0, 1),
                ("carol", f"alice@{DOMAIN}", "to", 0, 0),
                # alice blocked someone on another server, who still sees her.
                ("alice", "mallory@remote.example", "from", 0, 0),
                # Consistent: dave blocked erin and erin's subscription went with it.
                ("dave", f"erin@{DOMAIN}", "to", 0, 0),
                ("erin", f"dave@{DOMAIN}", "from", 1, 0),
                # Not blocked at all.
                ("dave", f"bob@{DOMAIN}", "both", 0, 0),
                ("bob", f"dave@{DOMAIN}", "both", 0, 0),
            ],
        )
        connection.executemany(
            "INSERT INTO presence_blocks (owner, contact) VALUES (?, ?)",
            [
                ("alice", f"bob@{DOMAIN}"),
                ("alice", f"carol@{DOMAIN}"),
                ("alice", "mallory@remote.example"),
                ("dave", f"erin@{DOMAIN}"),
            ],
        )
        connection.executemany(
            "INSERT INTO roster_versions (owner, version) VALUES (?, ?)",
            [("alice", 7), ("bob", 3), ("carol", 1), ("dave", 2), ("erin", 4)],
        )
    return path


async def test_opening_storage_repairs_half_done_presence_blocks(
    half_done: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="chorus_presence")
    repositories = await open_repositories(StorageConfig(database=half_done), DOMAIN)
    await repositories.close()

    assert items(half_done) == {
        # The block wins: alice's presence is no longer sent to those she blocked...
        ("alice", f"bob@{DOMAIN}"): ("to", 0, 0),
        ("alice", f"carol@{DOMAIN}"): ("none", 0, 0),
        ("alice", "mallory@remote.example"): ("none", 0, 0),
        # ...and their side of the same subscriptions says so.
        ("bob", f"alice@{DOMAIN}"): ("from", 0, 0),
        ("carol", f"alice@{DOMAIN}"): ("none", 0, 0),
        # Untouched.
        ("dave", f"erin@{DOMAIN}"): ("to", 0, 0),
        ("erin", f"dave@{DOMAIN}"): ("from", 1, 0),
        ("dave", f"bob@{DOMAIN}"): ("both", 0, 0),
        ("bob", f"dave@{DOMAIN}"): ("both", 0, 0),
    }
    # Clients holding a cached roster see the change: every changed roster has a new version.
    assert versions(half_done) == {"alice": 8, "bob": 4, "carol": 2, "dave": 2, "erin": 4}
    # The blocks themselves stay.
    assert len(rows(half_done, "SELECT 1 FROM presence_blocks")) == 4
    repairs = [record for record in caplog.records if "presence block" in record.getMessage()]
    assert len(repairs) == 1, [record.getMessage() for record in repairs]
    assert repairs[0].levelno == logging.WARNING
    assert "3" in repairs[0].getMessage()

    # Once repaired, the database is consistent: opening it again changes and logs nothing.
    before = (items(half_done), versions(half_done))
    caplog.clear()
    repositories = await open_repositories(StorageConfig(database=half_done), DOMAIN)
    await repositories.close()
    assert (items(half_done), versions(half_done)) == before
    assert not [record for record in caplog.records if "presence block" in record.getMessage()]
