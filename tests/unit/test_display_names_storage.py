"""The display name store, on SQLite and on PostgreSQL, through the factory and the interface
only: names round-trip and replace each other, clearing takes one owner's name, a name for an
account that does not exist is refused, several are read at once, and removing an account
takes its name, so a reused username starts without one."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from chorus_presence.storage.factory import Repositories
from tests.engines.stores import STORE_DOMAIN, StoreUnderTest

DOMAIN = STORE_DOMAIN


@pytest.fixture
async def repos(store: StoreUnderTest) -> AsyncIterator[Repositories]:
    opened = await store.open()
    try:
        for name in ("alice", "bob"):
            await opened.accounts.create(name, {})
        yield opened
    finally:
        await opened.close()


async def test_names_round_trip_and_replace(repos: Repositories, store: StoreUnderTest) -> None:
    names = repos.display_names
    assert await names.get("alice") is None
    assert await names.set("alice", "Alice Liddell")
    assert await names.set("bob", "Bob")
    assert await names.set("alice", "Alice Pleasance Liddell")
    assert await names.get("alice") == "Alice Pleasance Liddell"
    assert await names.all() == {"alice": "Alice Pleasance Liddell", "bob": "Bob"}
    # Committed when the call returned: another connection reads it.
    assert await store.rows("SELECT owner, name FROM display_names ORDER BY owner") == [
        ("alice", "Alice Pleasance Liddell"),
        ("bob", "Bob"),
    ]


async def test_clearing_takes_only_the_owners_name(repos: Repositories) -> None:
    names = repos.display_names
    await names.set("alice", "Alice")
    await names.set("bob", "Bob")
    await names.clear("alice")
    await names.clear("alice")
    assert await names.get("alice") is None
    assert await names.all() == {"bob": "Bob"}


async def test_several_names_at_once(repos: Repositories) -> None:
    names = repos.display_names
    await names.set("alice", "Alice")
    await names.set("bob", "Bob")
    assert await names.get_many(["alice", "bob", "nobody"]) == {"alice": "Alice", "bob": "Bob"}
    assert await names.get_many(["bob"]) == {"bob": "Bob"}
    assert await names.get_many([]) == {}


async def test_no_name_for_an_account_that_does_not_exist(repos: Repositories) -> None:
    assert not await repos.display_names.set("nobody", "Nobody")
    assert await repos.display_names.all() == {}


async def test_a_reused_username_does_not_inherit_the_name(repos: Repositories) -> None:
    names = repos.display_names
    await names.set("alice", "Alice")
    await names.set("bob", "Bob")
    assert await repos.accounts.delete("alice") is not None
    assert await names.get("alice") is None
    await repos.accounts.create("alice", {})
    assert await names.get("alice") is None
    assert await names.all() == {"bob": "Bob"}
