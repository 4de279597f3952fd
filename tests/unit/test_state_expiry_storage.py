"""The expiring-state store and the time zone setting, on every backend, through the factory
and the interfaces: one row per user, replaced whole, removed on request and with its account;
nothing stored for an account that is gone; the time zone defaults to UTC and keeps what it is
given."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from chorus_presence.storage.factory import Repositories
from chorus_presence.storage.state_expiry import ExpiringState
from tests.engines.stores import StoreUnderTest


@pytest.fixture
async def repos(store: StoreUnderTest) -> AsyncIterator[Repositories]:
    opened = await store.open()
    for name in ("alice", "bob"):
        await opened.accounts.create(name, {})
    try:
        yield opened
    finally:
        await opened.close()


async def test_expiring_states_round_trip_and_are_replaced(repos: Repositories) -> None:
    store = repos.state_expiries
    assert await store.all() == []
    busy = ExpiringState("alice", "busy", "Review", 1_800_000_000)
    away = ExpiringState("bob", "away", None, 1_800_003_600)
    await store.put(busy)
    await store.put(away)
    assert await store.all() == [busy, away]
    later = ExpiringState("alice", "dnd", None, 1_800_007_200)
    await store.put(later)
    assert await store.all() == [later, away]
    assert await store.get("alice") == later
    await store.remove("bob")
    await store.remove("bob")
    assert await store.all() == [later]
    assert await store.get("bob") is None


async def test_an_expiring_state_goes_with_its_account(repos: Repositories) -> None:
    store = repos.state_expiries
    await store.put(ExpiringState("alice", "busy", None, 1_800_000_000))
    await repos.accounts.delete("alice")
    assert await store.all() == []
    await store.put(ExpiringState("alice", "busy", None, 1_800_000_000))
    await store.put(ExpiringState("nobody", "busy", None, 1_800_000_000))
    assert await store.all() == []


async def test_the_time_zone_defaults_to_utc(repos: Repositories) -> None:
    assert (await repos.settings.get("alice")).time_zone == "UTC"
    changed = await repos.settings.update("alice", time_zone="Europe/Paris")
    assert changed.time_zone == "Europe/Paris"
    assert (await repos.settings.get("alice")).time_zone == "Europe/Paris"
    assert (await repos.settings.get("bob")).time_zone == "UTC"
