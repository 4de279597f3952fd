"""What only the PostgreSQL backend has, on a private server: `[storage]` keys for it, its own
numbered migrations applied once however many nodes start together, a one-line error naming
`storage.url` when the database cannot be reached at start, `StorageUnavailable` while it is
gone and service again when it is back, and lock keys every process computes alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from chorus_presence.config import ConfigError, StorageConfig, load_config
from chorus_presence.storage.database import SchemaError
from chorus_presence.storage.errors import StorageUnavailable
from chorus_presence.storage.factory import open_repositories, prepare
from chorus_presence.storage.postgres.pool import DatabaseUnreachable, lock_key
from chorus_presence.storage.postgres.schema import migrations
from chorus_presence.storage.rosters import RosterChanges, RosterItem
from tests.engines.postgres import PostgresServer, free_port

DOMAIN = "chorus.test"


def pg(url: str) -> StorageConfig:
    return StorageConfig(Path("unused.db"), "postgresql", url)


def config_file(tmp_path: Path, storage: str) -> Path:
    path = tmp_path / "chorus.toml"
    path.write_text(f"[storage]\n{storage}\n", encoding="utf-8")
    return path


# Configuration


def test_the_postgresql_backend_takes_a_url(tmp_path: Path) -> None:
    url = "postgresql://chorus@127.0.0.1:5432/chorus"
    storage = load_config(config_file(tmp_path, f'backend = "postgresql"\nurl = "{url}"')).storage
    assert (storage.backend, storage.url) == ("postgresql", url)
    short = "postgres://db.example/chorus"
    assert (
        load_config(config_file(tmp_path, f'backend = "postgresql"\nurl = "{short}"')).storage.url
        == short
    )
    # SQLite stays the default, and needs no URL.
    default = load_config(config_file(tmp_path, "")).storage
    assert (default.backend, default.url) == ("sqlite", None)


@pytest.mark.parametrize(
    ("storage", "message"),
    [
        ('backend = "postgresql"', r"'storage\.url' is required with backend = \"postgresql\""),
        ('backend = "postgresql"\nurl = ""', r"'storage\.url' must not be empty"),
        ('backend = "postgresql"\nurl = 5432', r"'storage\.url' must be a string"),
        (
            'backend = "postgresql"\nurl = "mysql://root:hunter2@db/chorus"',
            r"'storage\.url' must be a URL such as postgresql://user@host:5432/database,"
            r" not 'mysql://root:\*\*\*@db/chorus'$",
        ),
        ('backend = "postgresql"\nurl = "localhost:5432"', r"'storage\.url' must be a URL"),
    ],
)
def test_storage_url_errors_name_the_key(tmp_path: Path, storage: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        load_config(config_file(tmp_path, storage))
    assert "\n" not in str(info.value)
    assert "hunter2" not in str(info.value)


# Migrations


def test_migration_files_are_numbered_in_order() -> None:
    found = migrations()
    assert [m.version for m in found] == list(range(1, len(found) + 1))
    assert found[0].name == "accounts"


async def schema_versions(url: str) -> list[int]:
    conn = await asyncpg.connect(url)
    try:
        return [row[0] for row in await conn.fetch("SELECT version FROM schema_version ORDER BY 1")]
    finally:
        await conn.close()


async def test_nodes_starting_together_apply_each_migration_once(empty_postgres_url: str) -> None:
    opened = await asyncio.gather(
        *(open_repositories(pg(empty_postgres_url), DOMAIN) for _ in range(4))
    )
    for repos in opened:
        await repos.close()
    assert await schema_versions(empty_postgres_url) == list(range(1, len(migrations()) + 1))


async def test_prepare_creates_the_schema_then_finds_it(empty_postgres_url: str) -> None:
    latest = len(migrations())
    first = await prepare(pg(empty_postgres_url))
    assert first.created
    assert first.description.startswith("PostgreSQL database postgresql://")
    assert first.description.endswith(f"(schema version {latest})")
    again = await prepare(pg(empty_postgres_url))
    assert not again.created
    assert again.description == first.description
    assert await schema_versions(empty_postgres_url) == list(range(1, latest + 1))


async def test_a_newer_database_is_refused(postgres_url: str) -> None:
    conn = await asyncpg.connect(postgres_url)
    try:
        await conn.execute("INSERT INTO schema_version (version, name) VALUES (999, 'future')")
    finally:
        await conn.close()
    with pytest.raises(SchemaError, match="schema version 999, newer"):
        await open_repositories(pg(postgres_url), DOMAIN)


# Start-up errors


@pytest.mark.parametrize(
    "url",
    [
        # Nothing listens there.
        "postgresql://chorus:hunter2@127.0.0.1:{free}/chorus",
        # The server answers, but has no such database.
        "postgresql://chorus:hunter2@127.0.0.1:{port}/no_such_database",
        # Not a port.
        "postgresql://chorus:hunter2@127.0.0.1:port/chorus",
    ],
)
async def test_a_database_that_cannot_be_reached_is_one_line_naming_the_key(
    postgres_server: PostgresServer, url: str
) -> None:
    url = url.format(free=free_port(), port=postgres_server.port)
    with pytest.raises(DatabaseUnreachable) as info:
        await open_repositories(pg(url), DOMAIN)
    message = str(info.value)
    # A ConfigError: the command line prints it as it is and exits with 2.
    assert isinstance(info.value, ConfigError)
    assert message.startswith("Cannot connect to PostgreSQL at postgresql://chorus:***@127.0.0.1:")
    assert "(storage.url): " in message
    assert "\n" not in message
    assert "hunter2" not in message
    assert not message.endswith(".")


# The database going away and coming back


@pytest.fixture
def own_server() -> Iterator[PostgresServer]:
    """A private server of the test's own, to stop and start without disturbing the rest."""
    server = PostgresServer.start()
    try:
        yield server
    finally:
        server.stop()


async def test_a_database_gone_away_is_unavailable_until_it_is_back(
    own_server: PostgresServer,
) -> None:
    url = own_server.create_database("chorus")
    repos = await open_repositories(pg(url), DOMAIN)
    try:
        await repos.accounts.create("alice", {})
        await repos.accounts.create("bob", {})
        own_server.halt()
        # Writes and reads alike: nothing is acknowledged that was not committed.
        change = RosterChanges(upserts=[("alice", RosterItem(f"bob@{DOMAIN}"))])
        with pytest.raises(StorageUnavailable):
            await repos.rosters.apply(change)
        with pytest.raises(StorageUnavailable):
            await repos.accounts.get("alice")
        with pytest.raises(StorageUnavailable):
            await repos.rosters.load("alice")

        own_server.resume()
        # The same repositories serve again: the pool replaced its broken connections.
        assert (await repos.rosters.load("alice")).items == {}
        assert await repos.rosters.apply(change) == {"alice": 1}
        assert await repos.accounts.list_usernames() == ["alice", "bob"]
    finally:
        await repos.close()


async def test_connections_cut_by_the_server_are_replaced(postgres_url: str) -> None:
    repos = await open_repositories(pg(postgres_url), DOMAIN)
    try:
        await repos.accounts.create("alice", {})
        admin = await asyncpg.connect(postgres_url)
        try:
            cut = await admin.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        finally:
            await admin.close()
        assert cut >= 1
        # A statement on a cut connection is unavailable, never another error; then the pool
        # has connected again.
        with contextlib.suppress(StorageUnavailable):
            await repos.accounts.list_usernames()
        assert await repos.accounts.list_usernames() == ["alice"]
    finally:
        await repos.close()


# Locks


def test_lock_keys_are_the_same_in_every_process() -> None:
    # Python's own hash() of a string changes from one process to the next; the lock keys
    # must not, or two nodes would lock different keys for the same user.
    code = (
        "from chorus_presence.storage.postgres.pool import lock_key; print(lock_key('user alice'))"
    )
    for seed in ("1", "2"):
        environment = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            env=environment,
            check=True,
        )
        assert int(done.stdout) == lock_key("user alice")
    assert lock_key("user alice") != lock_key("user bob")
