"""The privacy property, over random sequences of actions among three users on a real server:
a user who may not see another's presence never receives it, nor their last activity
(`jabber:iq:last` answers forbidden), nor their call routing (`urn:chorus:routing:0` answers
forbidden).

"May see" is read back from the server after each action, through each owner's own client:
the owner's roster has the watcher with subscription 'from' or 'both', neither has the other on
their XEP-0191 block list, and the watcher is not on the owner's presence blocked list. The
actions are subscription stanzas, roster removals, the visibility extension (accept, block,
allow, policy, automation), XEP-0191 block and unblock, broadcast presence (updates, going
unavailable and coming back) and probes. Directed presence is out of scope and never sent.

One in-process server serves the whole Hypothesis run; each example gets three fresh accounts
and raw clients. In CI the run is bounded (about ten seconds) and derandomized, so it checks
the same examples every time; `CHORUS_LONG_TESTS=1` explores afresh with many more, longer
examples and shrinks what it finds. The leaks a long run found are pinned down at the end of
this file as fixed scenarios.
"""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import Awaitable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)
from lxml import etree

from chorus_presence.xmpp.jid import JID
from tests.integration.harness import (
    DOMAIN,
    Harness,
    Peer,
    link,
    raw_session,
    start_server,
    write_config,
)

LONG = os.environ.get("CHORUS_LONG_TESTS") == "1"
EXAMPLES = 500 if LONG else 45
STEPS = 40 if LONG else 12

CLIENT = "jabber:client"
STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"
ROSTER = "jabber:iq:roster"
VISIBILITY = "urn:chorus:visibility:0"
BLOCKING = "urn:xmpp:blocking"
LAST = "jabber:iq:last"
ROUTING = "urn:chorus:routing:0"
SEES_ME = frozenset({"from", "both"})
SUBSCRIPTION_KINDS = ("subscribe", "subscribed", "unsubscribe", "unsubscribed")
AVAILABLE = "<presence/>"
BUSY = "<presence><show>dnd</show><status>busy now</status></presence>"
UNAVAILABLE = "<presence type='unavailable'><status>gone</status></presence>"

T = TypeVar("T")


def condition(answer: etree._Element) -> str | None:
    """The defined condition of an error answer, None for a result."""
    if answer.get("type") != "error":
        return None
    error = answer.find(f"{{{CLIENT}}}error")
    assert error is not None
    return next(
        etree.QName(node).localname for node in error if etree.QName(node).namespace == STANZAS
    )


# The world the state machine runs in: one server and its event loop for the whole run.


class World:
    def __init__(self, loop: asyncio.AbstractEventLoop, harness: Harness) -> None:
        self.loop = loop
        self.harness = harness
        self.examples = itertools.count()

    def run(self, work: Awaitable[T]) -> T:
        return self.loop.run_until_complete(work)


WORLD: World | None = None
PAIRS = [(a, b) for a in range(3) for b in range(3) if a != b]
pairs = st.sampled_from(PAIRS)
users = st.integers(0, 2)


class PrivacyMachine(RuleBasedStateMachine):
    """Three users with one raw client each, online from the start."""

    def __init__(self) -> None:
        super().__init__()
        assert WORLD is not None
        self.world = WORLD
        example = next(self.world.examples)
        self.names = [f"p{example}u{index}" for index in range(3)]
        self.jids = [f"{name}@{DOMAIN}" for name in self.names]
        self.peers: list[Peer] = []
        # The broadcast presence each user last sent, None while unavailable.
        self.shown: list[str | None] = []

    @initialize(watching=st.lists(pairs, unique=True))
    def log_in(self, watching: list[tuple[int, int]]) -> None:
        """Each (owner, watcher) pair in `watching` starts subscribed, so that the actions
        have sight to take away as well as to give."""
        self.world.run(self._log_in(watching))

    async def _log_in(self, watching: list[tuple[int, int]]) -> None:
        harness = self.world.harness
        for name in self.names:
            await harness.add_user(name)
        subscriptions = harness.ctx.subscriptions
        for owner, watcher in watching:
            owner_jid, watcher_jid = JID.parse(self.jids[owner]), JID.parse(self.jids[watcher])
            await subscriptions.exchange(watcher_jid, owner_jid, "subscribe")
            await subscriptions.exchange(owner_jid, watcher_jid, "subscribed")
        for name in self.names:
            raw, jid = await raw_session(harness, name, "r")
            self.peers.append(Peer(raw, jid))
        for peer in self.peers:
            peer.send(AVAILABLE)
            self.shown.append(AVAILABLE)
        await self._settle()

    def teardown(self) -> None:
        if self.peers:
            self.world.run(self._log_out())

    async def _log_out(self) -> None:
        await asyncio.gather(*(peer.close() for peer in self.peers))

    # Actions

    @rule(pair=pairs, kind=st.sampled_from(SUBSCRIPTION_KINDS))
    def subscription(self, pair: tuple[int, int], kind: str) -> None:
        actor, other = pair
        self.peers[actor].send(f"<presence type='{kind}' to='{self.jids[other]}'/>")
        self.world.run(self._settle(actor))

    @rule(pair=pairs)
    def remove_from_roster(self, pair: tuple[int, int]) -> None:
        actor, other = pair
        item = f"<item jid='{self.jids[other]}' subscription='remove'/>"
        self._request(actor, "set", f"<query xmlns='{ROSTER}'>{item}</query>")

    @rule(pair=pairs, action=st.sampled_from(("accept", "block", "allow")))
    def visibility(self, pair: tuple[int, int], action: str) -> None:
        actor, other = pair
        self._request(actor, "set", f"<{action} xmlns='{VISIBILITY}' jid='{self.jids[other]}'/>")

    @rule(user=users, policy=st.sampled_from(("ask", "everyone", "nobody")))
    def visibility_policy(self, user: int, policy: str) -> None:
        self._request(user, "set", f"<visibility xmlns='{VISIBILITY}' policy='{policy}'/>")

    @rule(user=users, enabled=st.booleans())
    def automation(self, user: int, enabled: bool) -> None:
        value = "true" if enabled else "false"
        self._request(
            user, "set", f"<visibility xmlns='{VISIBILITY}' away-when-offline='{value}'/>"
        )

    @rule(pair=pairs, block=st.booleans())
    def full_block(self, pair: tuple[int, int], block: bool) -> None:
        actor, other = pair
        kind = "block" if block else "unblock"
        self._request(
            actor, "set", f"<{kind} xmlns='{BLOCKING}'><item jid='{self.jids[other]}'/></{kind}>"
        )

    @rule(user=users, change=st.sampled_from(("update", "unavailable", "available")))
    def presence(self, user: int, change: str) -> None:
        if change == "unavailable":
            self.peers[user].send(UNAVAILABLE)
            self.shown[user] = None
        else:
            self.shown[user] = BUSY if change == "update" else AVAILABLE
            self.peers[user].send(self.shown[user])
        self.world.run(self._settle(user))

    @rule(pair=pairs)
    def probe(self, pair: tuple[int, int]) -> None:
        watcher, owner = pair
        self.peers[watcher].send(f"<presence type='probe' to='{self.jids[owner]}'/>")
        self.world.run(self._settle(watcher))

    def _request(self, actor: int, iq_type: str, payload: str) -> None:
        async def work() -> None:
            # Refusals (item-not-found for a request that is not pending, say) are fine here:
            # the property is about what the server lets through, whatever it accepted.
            await self.peers[actor].iq(iq_type, payload)
            await self._settle(actor)

        self.world.run(work())

    async def _settle(self, actor: int | None = None) -> None:
        """Everything the last action caused has reached every client, and been checked."""
        if actor is not None:
            await self.peers[actor].sync()
        for peer in self.peers:
            await peer.sync()
        sees = await self._who_may_see()
        for watcher, peer in enumerate(self.peers):
            for stanza in peer.take():
                self._check_received(watcher, stanza, sees)

    # What may be seen, as the server records it

    async def _who_may_see(self) -> dict[tuple[int, int], bool]:
        """(owner, watcher) -> whether the watcher may see the owner's presence."""
        subscriptions, full_blocks, presence_blocks = [], [], []
        for peer in self.peers:
            roster, overview, blocklist = await asyncio.gather(
                peer.iq("get", f"<query xmlns='{ROSTER}'/>"),
                peer.iq("get", f"<visibility xmlns='{VISIBILITY}'/>"),
                peer.iq("get", f"<blocklist xmlns='{BLOCKING}'/>"),
            )
            for answer in (roster, overview, blocklist):
                assert answer.get("type") == "result", etree.tostring(answer)
            subscriptions.append(
                {
                    item.get("jid"): item.get("subscription", "none")
                    for item in roster.iter(f"{{{ROSTER}}}item")
                }
            )
            blocked = overview.find(f"{{{VISIBILITY}}}visibility/{{{VISIBILITY}}}blocked")
            assert blocked is not None
            presence_blocks.append({c.get("jid") for c in blocked.iter(f"{{{VISIBILITY}}}contact")})
            full_blocks.append({item.get("jid") for item in blocklist.iter(f"{{{BLOCKING}}}item")})
        return {
            (owner, watcher): (
                subscriptions[owner].get(self.jids[watcher]) in SEES_ME
                and self.jids[watcher] not in full_blocks[owner]
                and self.jids[owner] not in full_blocks[watcher]
                and self.jids[watcher] not in presence_blocks[owner]
            )
            for owner, watcher in PAIRS
        }

    def _check_received(
        self, watcher: int, stanza: etree._Element, sees: dict[tuple[int, int], bool]
    ) -> None:
        if stanza.tag != f"{{{CLIENT}}}presence" or stanza.get("type") is not None:
            return
        # Available presence, including the automation's "Not logged in" one.
        sender = (stanza.get("from") or "").partition("/")[0]
        if sender == self.jids[watcher]:
            return
        owner = self.jids.index(sender)
        assert sees[(owner, watcher)], (
            f"{self.names[watcher]} received the presence of {self.names[owner]}, who they "
            f"may not see: {etree.tostring(stanza)!r}"
        )

    # The property

    @invariant()
    def presence_reaches_only_those_who_may_see_it(self) -> None:
        """Whoever is available says it again and everyone probes everyone: any leak the
        last action opened shows up now, not only if a later action happens to use it."""
        if self.peers:
            self.world.run(self._check_presence())

    async def _check_presence(self) -> None:
        for user, peer in enumerate(self.peers):
            if self.shown[user] is not None:
                peer.send(self.shown[user])
            for other in range(3):
                if other != user:
                    peer.send(f"<presence type='probe' to='{self.jids[other]}'/>")
        await self._settle()

    @invariant()
    def activity_and_routing_follow_visibility(self) -> None:
        if self.peers:
            self.world.run(self._check_queries())

    async def _check_queries(self) -> None:
        sees = await self._who_may_see()

        async def ask(owner: int, watcher: int) -> tuple[Any, ...]:
            peer, target = self.peers[watcher], self.jids[owner]
            last, route = await asyncio.gather(
                peer.iq("get", f"<query xmlns='{LAST}'/>", to=target),
                peer.iq("get", f"<route xmlns='{ROUTING}'/>", to=target),
            )
            return owner, watcher, condition(last), condition(route)

        answers = await asyncio.gather(*(ask(owner, watcher) for owner, watcher in PAIRS))
        for owner, watcher, last, route in answers:
            may_see = sees[(owner, watcher)]
            who = f"{self.names[watcher]} asking about {self.names[owner]}"
            assert (last == "forbidden") == (not may_see), f"{who}: last activity gave {last}"
            if not may_see:
                assert route == "forbidden", f"{who}: routing gave {route}"


@pytest.mark.timeout(3600 if LONG else 60)
def test_nobody_learns_the_presence_of_someone_they_may_not_see(
    tmp_path: Path, tls_files: tuple[Path, Path]
) -> None:
    global WORLD
    loop = asyncio.new_event_loop()
    config = write_config(
        tmp_path,
        tls_files,
        tls={"required": False},
        # Every example logs three clients in and sends its own requests: no limit may bite.
        limits={
            "connection_rate": 100000.0,
            "connections_per_address": 10000,
            "subscriptions_per_minute": 100000,
        },
    )
    asyncio.set_event_loop(loop)
    harness = loop.run_until_complete(start_server(config, tls_files[0]))
    WORLD = World(loop, harness)
    try:
        run_state_machine_as_test(
            PrivacyMachine,
            settings=settings(
                max_examples=EXAMPLES,
                stateful_step_count=STEPS,
                deadline=None,
                suppress_health_check=list(HealthCheck),
                # Each example costs a real exchange with the server; in CI a failure is
                # reported as found rather than spending minutes making it smaller.
                phases=list(Phase) if LONG else [p for p in Phase if p != Phase.shrink],
                # CI runs the same examples every time, and does not replay failures a long
                # run saved; the long mode explores afresh on each run.
                derandomize=not LONG,
                database=None if not LONG else settings.default.database,
            ),
        )
    finally:
        WORLD = None
        loop.run_until_complete(harness.close())
        loop.close()
        asyncio.set_event_loop(None)


# Leaks found by the long run, pinned down as fixed scenarios.


async def peers_of(harness: Harness, *names: str) -> list[Peer]:
    peers = []
    for name in names:
        raw, full_jid = await raw_session(harness, name)
        peer = Peer(raw, full_jid)
        await peer.iq("get", f"<query xmlns='{ROSTER}'/>")
        peer.send(AVAILABLE)
        await peer.sync()
        peers.append(peer)
    for peer in peers:
        await peer.sync()
        peer.take()
    return peers


async def subscription_of(harness: Harness, owner: str, contact: str) -> tuple[str, bool]:
    roster = await harness.ctx.rosters.roster(owner)
    item = roster.items.get(f"{contact}@{DOMAIN}")
    return (item.subscription, item.pending_out) if item else ("none", False)


def available_from(peer: Peer, sender: str) -> list[etree._Element]:
    return [
        stanza
        for stanza in peer.take()
        if stanza.tag == f"{{{CLIENT}}}presence"
        and stanza.get("type") is None
        and stanza.get("from", "").partition("/")[0] == sender
    ]


@pytest.mark.parametrize("blocker", ["owner", "watcher"])
@pytest.mark.parametrize("withdrawal", ["presence-block", "unsubscribed"])
@pytest.mark.server_config(tls={"required": False})
async def test_sight_withdrawn_behind_a_full_block_stays_withdrawn(
    harness: Harness, blocker: str, withdrawal: str
) -> None:
    for name in ("owner", "watcher"):
        await harness.add_user(name)
    await link(harness, "owner", "watcher")
    owner, watcher = await peers_of(harness, "owner", "watcher")
    blocking, blocked = (owner, "watcher") if blocker == "owner" else (watcher, "owner")
    item = f"<item jid='{blocked}@{DOMAIN}'/>"
    assert (await blocking.iq("set", f"<block xmlns='{BLOCKING}'>{item}</block>")).get(
        "type"
    ) == "result"
    # The owner stops the watcher seeing them while the block stands.
    if withdrawal == "presence-block":
        hide = f"<block xmlns='{VISIBILITY}' jid='watcher@{DOMAIN}'/>"
        assert (await owner.iq("set", hide)).get("type") == "result"
    else:
        owner.send(f"<presence type='unsubscribed' to='watcher@{DOMAIN}'/>")
        await owner.sync()
    assert (await subscription_of(harness, "owner", "watcher"))[0] in ("none", "to")
    await watcher.sync()
    watcher.take()
    unblock = f"<unblock xmlns='{BLOCKING}'>{item}</unblock>"
    assert (await blocking.iq("set", unblock)).get("type") == "result"
    await watcher.sync()
    watcher.send(f"<presence type='probe' to='owner@{DOMAIN}'/>")
    await watcher.sync()
    leaked = available_from(watcher, f"owner@{DOMAIN}")
    assert not leaked, f"the watcher saw {etree.tostring(leaked[0])!r}"


@pytest.mark.server_config(tls={"required": False})
async def test_a_repeated_request_under_policy_nobody_changes_nothing(harness: Harness) -> None:
    for name in ("owner", "watcher"):
        await harness.add_user(name)
    await link(harness, "owner", "watcher")
    owner, watcher = await peers_of(harness, "owner", "watcher")
    nobody = f"<visibility xmlns='{VISIBILITY}' policy='nobody'/>"
    assert (await owner.iq("set", nobody)).get("type") == "result"
    # A client re-sending its request for a subscription it already has.
    watcher.send(f"<presence type='subscribe' to='owner@{DOMAIN}'/>")
    await watcher.sync()
    await owner.sync()
    assert await subscription_of(harness, "owner", "watcher") == ("both", False)
    assert await subscription_of(harness, "watcher", "owner") == ("both", False)


@pytest.mark.server_config(tls={"required": False})
async def test_a_subscription_stanza_across_a_block_leaves_both_rosters_agreeing(
    harness: Harness,
) -> None:
    for name in ("owner", "requester"):
        await harness.add_user(name)
    owner, requester = await peers_of(harness, "owner", "requester")
    requester.send(f"<presence type='subscribe' to='owner@{DOMAIN}'/>")
    await requester.sync()
    block = f"<block xmlns='{BLOCKING}'><item jid='requester@{DOMAIN}'/></block>"
    assert (await owner.iq("set", block)).get("type") == "result"
    owner.send(f"<presence type='subscribed' to='requester@{DOMAIN}'/>")
    await owner.sync()
    owner_side = await subscription_of(harness, "owner", "requester")
    requester_side = await subscription_of(harness, "requester", "owner")
    owner_grants = owner_side[0] in ("from", "both")
    requester_has = requester_side[0] in ("to", "both")
    assert owner_grants == requester_has, f"owner {owner_side}, requester {requester_side}"
