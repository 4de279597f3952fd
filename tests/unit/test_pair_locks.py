"""Per-account locks: changes to disjoint accounts run side by side, changes sharing an account
take turns, opposite orders do not deadlock, and no lock outlives its last user; first on the
locks themselves, then on subscription exchanges as `composition.build` wires them.

An exchange is held half-way by a handler of `subscription/request`, which the exchange fires
with its locks held; every wait is on an asyncio event, with a timeout, never a sleep.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from chorus_presence.core import topics
from chorus_presence.core.account_locks import AccountLocks
from chorus_presence.core.events import SubscriptionRequest
from chorus_presence.xmpp.jid import JID
from tests.unit.fakes import DOMAIN, World, open_world

TIMEOUT = 5.0
USERS = ("alice", "bob", "carol", "dave", "erin")


class Holder:
    """A task that holds some accounts' locks until told to let go."""

    def __init__(self, locks: AccountLocks, *accounts: str) -> None:
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        self.task = asyncio.create_task(self._run(locks, accounts))

    async def _run(self, locks: AccountLocks, accounts: tuple[str, ...]) -> None:
        async with locks.hold(*accounts):
            self.entered.set()
            await self.release.wait()

    async def done(self) -> None:
        self.release.set()
        await asyncio.wait_for(self.task, TIMEOUT)


async def entered(holder: Holder) -> None:
    await asyncio.wait_for(holder.entered.wait(), TIMEOUT)


async def test_disjoint_accounts_hold_their_locks_at_once() -> None:
    locks = AccountLocks()
    first = Holder(locks, "alice", "bob")
    await entered(first)
    second = Holder(locks, "carol", "dave")
    # Entered while the first still holds alice and bob.
    await entered(second)
    assert not first.task.done()
    await second.done()
    await first.done()
    assert len(locks) == 0


async def test_a_shared_account_makes_the_second_wait_for_the_first() -> None:
    locks = AccountLocks()
    first = Holder(locks, "alice", "bob")
    await entered(first)
    sharing = Holder(locks, "bob", "carol")
    # Created after `sharing`, so by the time it is in, `sharing` has asked for bob's lock.
    disjoint = Holder(locks, "dave", "erin")
    await entered(disjoint)
    assert not sharing.entered.is_set()
    # Bob's lock comes before carol's, so the waiter holds nobody's meanwhile.
    assert not locks.held("carol")
    await first.done()
    await entered(sharing)
    await sharing.done()
    await disjoint.done()
    assert len(locks) == 0


async def test_opposite_orders_do_not_deadlock() -> None:
    locks = AccountLocks()
    forward = Holder(locks, "alice", "bob")
    await entered(forward)
    backward = Holder(locks, "bob", "alice")
    other = Holder(locks, "carol")
    await entered(other)
    # Waiting for alice, the first in order, holding nothing the forward holder needs.
    assert not backward.entered.is_set()
    await forward.done()
    await entered(backward)
    await backward.done()
    await other.done()
    assert len(locks) == 0


async def test_a_waiter_that_gives_up_leaves_no_lock_behind() -> None:
    locks = AccountLocks()
    first = Holder(locks, "alice")
    await entered(first)
    waiter = Holder(locks, "alice", "bob")
    other = Holder(locks, "carol")
    await entered(other)
    waiter.task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter.task
    await other.done()
    assert len(locks) == 1 and locks.held("alice")
    await first.done()
    assert len(locks) == 0
    # The lock still works for whoever comes next.
    again = Holder(locks, "alice")
    await entered(again)
    await again.done()


# Subscription exchanges


class Gate:
    """Holds each subscription request, inside its exchange, until that one is let through."""

    def __init__(self) -> None:
        self.reached: dict[tuple[str, str], asyncio.Event] = {}
        self.opened: dict[tuple[str, str], asyncio.Event] = {}

    def _events(self, requester: str, owner: str) -> tuple[asyncio.Event, asyncio.Event]:
        key = (requester, owner)
        return (
            self.reached.setdefault(key, asyncio.Event()),
            self.opened.setdefault(key, asyncio.Event()),
        )

    async def handler(self, request: SubscriptionRequest) -> None:
        assert request.requester.local is not None and request.owner.local is not None
        reached, opened = self._events(request.requester.local, request.owner.local)
        reached.set()
        await opened.wait()

    async def reach(self, requester: str, owner: str) -> None:
        await asyncio.wait_for(self._events(requester, owner)[0].wait(), TIMEOUT)

    def has_reached(self, requester: str, owner: str) -> bool:
        return self._events(requester, owner)[0].is_set()

    def open(self, requester: str, owner: str) -> None:
        self._events(requester, owner)[1].set()


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    async with open_world(tmp_path) as opened:
        for name in USERS:
            await opened.add_user(name)
        yield opened


def start(world: World, requester: str, owner: str) -> asyncio.Task[None]:
    exchange = world.components.subscriptions.exchange
    return asyncio.create_task(exchange(world.jid(requester), world.jid(owner), "subscribe"))


def gated(world: World) -> Gate:
    gate = Gate()
    # Above the visibility policy's handler, which answers for the owner.
    world.components.bus.on(topics.SUBSCRIPTION_REQUEST, gate.handler, priority=100)
    return gate


async def finish(*tasks: asyncio.Task[None]) -> None:
    await asyncio.wait_for(asyncio.gather(*tasks), TIMEOUT)


async def test_exchanges_between_disjoint_pairs_run_at_once(world: World) -> None:
    gate = gated(world)
    alice_bob = start(world, "alice", "bob")
    await gate.reach("alice", "bob")
    carol_dave = start(world, "carol", "dave")
    # Carol's request is worked out while alice's is still half-way.
    await gate.reach("carol", "dave")
    gate.open("carol", "dave")
    await finish(carol_dave)
    assert not alice_bob.done()
    assert await world.subscription("carol", "dave") == "none"
    assert (await world.components.rosters.roster("dave")).pending.keys() == {
        str(JID("carol", DOMAIN))
    }
    gate.open("alice", "bob")
    await finish(alice_bob)
    assert len(world.components.rosters.locks) == 0


async def test_exchanges_sharing_an_account_take_turns(world: World) -> None:
    gate = gated(world)
    alice_bob = start(world, "alice", "bob")
    await gate.reach("alice", "bob")
    erin_bob = start(world, "erin", "bob")
    carol_dave = start(world, "carol", "dave")
    await gate.reach("carol", "dave")
    # Erin's exchange was started before carol's, yet waits for alice's to end.
    assert not gate.has_reached("erin", "bob")
    gate.open("carol", "dave")
    await finish(carol_dave)
    assert not gate.has_reached("erin", "bob")
    gate.open("alice", "bob")
    await finish(alice_bob)
    await gate.reach("erin", "bob")
    gate.open("erin", "bob")
    await finish(erin_bob)
    # Both requests pending with bob, neither lost to the other's write.
    bob = await world.components.rosters.roster("bob")
    assert {JID.parse(contact).local for contact in bob.pending} == {"alice", "erin"}


async def test_exchanges_in_opposite_directions_do_not_deadlock(world: World) -> None:
    gate = gated(world)
    alice_bob = start(world, "alice", "bob")
    await gate.reach("alice", "bob")
    bob_alice = start(world, "bob", "alice")
    carol_dave = start(world, "carol", "dave")
    await gate.reach("carol", "dave")
    assert not gate.has_reached("bob", "alice")
    gate.open("carol", "dave")
    gate.open("alice", "bob")
    gate.open("bob", "alice")
    await finish(alice_bob, bob_alice, carol_dave)
    # Each asked the other: both requests stand, one on each side.
    alice = await world.components.rosters.roster("alice")
    bob = await world.components.rosters.roster("bob")
    assert [JID.parse(c).local for c in alice.pending] == ["bob"]
    assert [JID.parse(c).local for c in bob.pending] == ["alice"]
    assert len(world.components.rosters.locks) == 0


async def test_removing_an_account_waits_for_an_exchange_with_it(world: World) -> None:
    gate = gated(world)
    alice_bob = start(world, "alice", "bob")
    await gate.reach("alice", "bob")
    removal = asyncio.create_task(world.components.accounts.remove("bob"))
    carol_dave = start(world, "carol", "dave")
    await gate.reach("carol", "dave")
    gate.open("carol", "dave")
    await finish(carol_dave)
    assert not removal.done()
    gate.open("alice", "bob")
    await finish(alice_bob)
    assert await asyncio.wait_for(removal, TIMEOUT)
    # The removal came after the exchange's commit, so it took alice's item for bob too.
    alice = await world.components.rosters.repo.load("alice")
    assert alice.items == {}
