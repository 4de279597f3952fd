"""The real server on `[storage] backend = "postgresql"`, with real slixmpp clients: logins,
rosters and the subscription exchange land in PostgreSQL and survive a restart; a database
that goes away while the server runs costs `resource-constraint` answers, not the stream, and
service comes back with it; `init` applies the migrations; a database that cannot be reached at
start stops `serve` and the admin commands with one line naming `storage.url` and exit code 2.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from slixmpp.exceptions import IqError

from chorus_presence.storage.postgres.schema import migrations
from tests.engines.postgres import PostgresServer, free_port
from tests.integration.harness import (
    DOMAIN,
    TIMEOUT,
    Harness,
    befriend,
    fails,
    ok,
    online,
    quiet_slixmpp,
    roster_of,
    start_server,
    write_config,
)

ALICE, BOB, CAROL = f"alice@{DOMAIN}", f"bob@{DOMAIN}", f"carol@{DOMAIN}"


def postgres_config(tmp_path: Path, tls_files: tuple[Path, Path], url: str) -> Path:
    return write_config(tmp_path, tls_files, storage={"backend": "postgresql", "url": url})


async def started(config: Path, tls_files: tuple[Path, Path]) -> Harness:
    quiet_slixmpp()
    harness = await start_server(config, tls_files[0])
    for name in ("alice", "bob", "carol"):
        await harness.add_user(name)
    return harness


@pytest.fixture
async def on_postgres(
    tmp_path: Path, tls_files: tuple[Path, Path], postgres_url: str
) -> AsyncIterator[Harness]:
    harness = await started(postgres_config(tmp_path, tls_files, postgres_url), tls_files)
    try:
        yield harness
    finally:
        await harness.close()


async def stored_items(url: str) -> dict[tuple[str, str], tuple[str, str | None, list[str]]]:
    """(owner, contact) -> (subscription, name, groups) of every roster item in the database."""
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT owner, contact, subscription, name, groups FROM roster_items"
        )
    finally:
        await conn.close()
    return {(r["owner"], r["contact"]): (r["subscription"], r["name"], r["groups"]) for r in rows}


async def test_login_roster_and_subscriptions_live_in_postgresql(
    on_postgres: Harness, postgres_url: str, tmp_path: Path
) -> None:
    alice, alice_in = await online(on_postgres, "alice")
    bob, bob_in = await online(on_postgres, "bob")
    await alice.update_roster(BOB, name="Bob", groups=["Friends"], timeout=TIMEOUT)
    await befriend(alice, alice_in, bob, bob_in)

    assert (await roster_of(alice))[BOB] == {
        "subscription": "both",
        "ask": None,
        "approved": None,
        "name": "Bob",
        "groups": ["Friends"],
    }
    assert (await roster_of(bob))[ALICE]["subscription"] == "both"
    # Both sides are rows of the PostgreSQL database, and no SQLite file was made.
    assert await stored_items(postgres_url) == {
        ("alice", BOB): ("both", "Bob", ["Friends"]),
        ("bob", ALICE): ("both", None, []),
    }
    assert not (tmp_path / "chorus.db").exists()

    # A new server on the same database knows everything.
    await on_postgres.restart()
    alice = await on_postgres.login("alice")
    assert (await roster_of(alice))[BOB]["subscription"] == "both"


@pytest.fixture
def own_server() -> Iterator[PostgresServer]:
    """A private PostgreSQL server of the test's own, to stop and start at will."""
    server = PostgresServer.start()
    try:
        yield server
    finally:
        server.stop()


async def test_a_database_outage_costs_answers_not_streams(
    tmp_path: Path, tls_files: tuple[Path, Path], own_server: PostgresServer
) -> None:
    url = own_server.create_database("chorus")
    harness = await started(postgres_config(tmp_path, tls_files, url), tls_files)
    try:
        alice, _ = await online(harness, "alice")
        own_server.halt()
        with pytest.raises(IqError) as refused:
            await alice.update_roster(CAROL, name="Carol", timeout=TIMEOUT)
        error = refused.value.iq["error"]
        assert (error["type"], error["condition"]) == ("wait", "resource-constraint")
        # Nothing was acknowledged, and nothing was kept in memory as if it had been.
        assert CAROL not in await roster_of(alice)

        own_server.resume()
        await alice.update_roster(CAROL, name="Carol", timeout=TIMEOUT)
        assert (await roster_of(alice))[CAROL]["name"] == "Carol"
        assert await stored_items(url) == {("alice", CAROL): ("none", "Carol", [])}
    finally:
        await harness.close()


async def test_init_applies_the_migrations(
    tmp_path: Path, tls_files: tuple[Path, Path], empty_postgres_url: str
) -> None:
    config = postgres_config(tmp_path, tls_files, empty_postgres_url)
    latest = len(migrations())
    first = await ok(config, "init")
    assert (
        f"created  PostgreSQL database {empty_postgres_url} (schema version {latest})" in first.out
    )
    again = await ok(config, "init")
    assert (
        f"exists  PostgreSQL database {empty_postgres_url} (schema version {latest})" in again.out
    )
    # The admin commands work on it with the server stopped.
    await ok(config, "user", "add", "alice", "--password-stdin", stdin="s3cret\n")
    listed = (await ok(config, "user", "list", "--json")).json()
    assert [user["username"] for user in listed] == ["alice"]
    assert not (tmp_path / "chorus.db").exists()


@pytest.mark.parametrize("command", [["serve"], ["init"], ["user", "list"]])
async def test_an_unreachable_database_stops_with_one_line_naming_the_key(
    tmp_path: Path, tls_files: tuple[Path, Path], command: list[str]
) -> None:
    url = f"postgresql://chorus:hunter2@127.0.0.1:{free_port()}/chorus"
    config = postgres_config(tmp_path, tls_files, url)
    run = await fails(config, 2, *command, needle="(storage.url)")
    # `serve` logs its start-up before; the error is one line, the last.
    line = run.err.strip().splitlines()[-1]
    assert line.startswith("chorus-presence: Cannot connect")
    assert "Traceback" not in run.err
    assert "Cannot connect to PostgreSQL at postgresql://chorus:***@127.0.0.1:" in line
    assert "hunter2" not in run.err
