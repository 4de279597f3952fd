"""The priority list store on every backend, through the factory and the interfaces: contacts
added once and listed in order, removed on request, nothing stored for an account that is gone,
and each row gone with either of its accounts."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from chorus_presence.storage.factory import Repositories
from tests.engines.stores import StoreUnderTest


@pytest.fixture
async def repos(store: StoreUnderTest) -> AsyncIterator[Repositories]:
    opened = await store.open()
    for name in ("alice", "bob", "carol"):
        await opened.accounts.create(name, {})
    try:
        yield opened
    finally:
        await opened.close()


async def test_contacts_are_added_once_and_removed(repos: Repositories) -> None:
    store = repos.priority_contacts
    assert await store.list("alice") == []
    assert await store.add("alice", "carol")
    assert await store.add("alice", "bob")
    assert not await store.add("alice", "bob")
    assert await store.list("alice") == ["bob", "carol"]
    assert await store.contains("alice", "bob")
    assert not await store.contains("bob", "alice")
    assert await store.remove("alice", "bob")
    assert not await store.remove("alice", "bob")
    assert await store.list("alice") == ["carol"]


async def test_nothing_is_stored_for_an_account_that_is_gone(repos: Repositories) -> None:
    store = repos.priority_contacts
    assert not await store.add("alice", "nobody")
    assert not await store.add("nobody", "alice")
    assert await store.list("alice") == []
    assert await store.list("nobody") == []


async def test_rows_go_with_either_account(repos: Repositories) -> None:
    store = repos.priority_contacts
    await store.add("alice", "bob")
    await store.add("alice", "carol")
    await store.add("bob", "alice")
    await store.add("carol", "bob")
    assert await repos.accounts.delete("bob") is not None
    assert await store.list("alice") == ["carol"]
    assert await store.list("carol") == []
    assert await store.list("bob") == []
