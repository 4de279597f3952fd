"""The appear-offline property, over random sequences of actions on a real server: no observer
can tell a user who appears offline from one who is logged out, by anything they receive or
are answered.

Each example has twins set up alike: `hidden`, logged in and appearing offline, and `gone`,
logged out, each with the same settings (presence automation, call routing, the status they
left with) and the same relation to each of eight observers: a contact seeing them both ways,
one who sees them (`from`), one they see (`to`), one with a request pending, a stranger, one
they block (XEP-0191), one on their presence blocked list, and a PBX account allowed to ask how
anyone's calls are routed. Every question an observer asks is asked of both twins: probes,
last activity, call routing, disco#info, version and ping at the bare and the full JID, and
messages of each type to both JIDs. Meanwhile the hidden twin goes on: changes presence, logs
out and in again, changes settings (which the gone twin changes too).

After each step, what each observer received from or about one twin must be what they
received about the other, with the twins' names made neutral and ids, times and seconds
dropped. In CI the run is bounded and derandomized; `CHORUS_LONG_TESTS=1` explores afresh.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import re
from collections.abc import Awaitable
from pathlib import Path
from typing import TypeVar

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

from chorus_presence.services.call_routing import Device, RoutingConfig
from chorus_presence.xmpp.jid import JID
from tests.integration.harness import DOMAIN, Harness, Peer, raw_session, start_server, write_config

LONG = os.environ.get("CHORUS_LONG_TESTS") == "1"
EXAMPLES = 200 if LONG else 12
STEPS = 30 if LONG else 10

CLIENT = "jabber:client"
VISIBILITY = "urn:chorus:visibility:0"
BLOCKING = "urn:xmpp:blocking"
OBSERVERS = ("both", "sees", "seen", "pending", "stranger", "blocked", "presence_blocked", "pbx")
QUERIES = {
    "last": ("get", "<query xmlns='jabber:iq:last'/>"),
    "route": ("get", "<route xmlns='urn:chorus:routing:0'/>"),
    "disco": ("get", "<query xmlns='http://jabber.org/protocol/disco#info'/>"),
    "items": ("get", "<query xmlns='http://jabber.org/protocol/disco#items'/>"),
    "version": ("get", "<query xmlns='jabber:iq:version'/>"),
    "ping": ("get", "<ping xmlns='urn:xmpp:ping'/>"),
    "vcard": ("get", "<vcard xmlns='urn:ietf:params:xml:ns:vcard-4.0'/>"),
}
MESSAGE_TYPES = ("chat", "normal", "headline", "groupchat", "error")
ROUTING = RoutingConfig(
    enabled=True,
    default_device="Desk",
    devices=(Device("Desk", "desk-phone"), Device("Voicemail", "voicemail")),
    mapping={"offline": "Voicemail"},
)
# Times and counters that differ by when, not by whether: dropped before comparing.
VOLATILE = re.compile(r' (id|seconds|since|stamp)="[^"]*"')

T = TypeVar("T")


class World:
    def __init__(self, loop: asyncio.AbstractEventLoop, harness: Harness) -> None:
        self.loop = loop
        self.harness = harness
        self.examples = itertools.count()

    def run(self, work: Awaitable[T]) -> T:
        return self.loop.run_until_complete(work)


WORLD: World | None = None
observers = st.sampled_from(range(len(OBSERVERS)))


class TwinsMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        assert WORLD is not None
        self.world = WORLD
        example = next(self.world.examples)
        self.twins = {"hidden": f"x{example}h", "gone": f"x{example}g"}
        self.observers = [f"x{example}{kind.replace('_', '')}" for kind in OBSERVERS]
        self.peers: list[Peer] = []
        self.hidden: Peer | None = None
        # Per observer: what they received about each twin, as neutral text, in order.
        self.heard: list[dict[str, list[str]]] = []

    @initialize(
        automation=st.booleans(), routing=st.booleans(), status=st.sampled_from(["", "Lunch"])
    )
    def set_up(self, automation: bool, routing: bool, status: str) -> None:
        self.world.run(self._set_up(automation, routing, status))

    async def _set_up(self, automation: bool, routing: bool, status: str) -> None:
        harness = self.world.harness
        ctx = harness.ctx
        for name in (*self.twins.values(), *self.observers):
            await harness.add_user(name)
        await ctx.call_routing.set_permission(self.observers[OBSERVERS.index("pbx")], True)
        for twin in self.twins.values():
            user = JID(twin, DOMAIN)
            for kind, name in zip(OBSERVERS, self.observers, strict=True):
                other = JID(name, DOMAIN)
                if kind in ("both", "sees", "blocked", "presence_blocked", "pending"):
                    await ctx.subscriptions.exchange(other, user, "subscribe")
                if kind in ("both", "sees", "blocked", "presence_blocked"):
                    await ctx.subscriptions.exchange(user, other, "subscribed")
                if kind in ("both", "seen"):
                    await ctx.subscriptions.exchange(user, other, "subscribe")
                    await ctx.subscriptions.exchange(other, user, "subscribed")
                if kind == "presence_blocked":
                    await ctx.visibility.block(twin, str(other))
            if routing:
                await ctx.call_routing.replace(twin, ROUTING)
            await ctx.visibility.set_away_when_offline(twin, automation)
        for name in self.observers:
            raw, jid = await raw_session(harness, name, "r")
            peer = Peer(raw, jid)
            peer.send("<presence/>")
            self.peers.append(peer)
            self.heard.append({"hidden": [], "gone": []})
        shown = f"<presence><status>{status}</status></presence>" if status else "<presence/>"
        for role, twin in self.twins.items():
            raw, jid = await raw_session(harness, twin, "r")
            peer = Peer(raw, jid)
            blocked = f"{self.observers[OBSERVERS.index('blocked')]}@{DOMAIN}"
            answer = await peer.iq(
                "set", f"<block xmlns='{BLOCKING}'><item jid='{blocked}'/></block>"
            )
            assert answer.get("type") == "result", etree.tostring(answer)
            peer.send(shown)
            await peer.sync()
            if role == "gone":
                left = f"<status>{status}</status>" if status else ""
                peer.send(f"<presence type='unavailable'>{left}</presence>")
                await peer.sync()
                await peer.close()
            else:
                answer = await peer.iq(
                    "set", f"<visibility xmlns='{VISIBILITY}' appear-offline='true'/>"
                )
                assert answer.get("type") == "result", etree.tostring(answer)
                self.hidden = peer
        await self._settle()

    def teardown(self) -> None:
        peers = [*self.peers, *([self.hidden] if self.hidden else [])]
        if peers:
            self.world.run(asyncio.gather(*(peer.close() for peer in peers)))

    # What an observer can do

    @rule(observer=observers, query=st.sampled_from(sorted(QUERIES)), full=st.booleans())
    def ask(self, observer: int, query: str, full: bool) -> None:
        iq_type, payload = QUERIES[query]

        async def work() -> None:
            peer = self.peers[observer]
            for role, twin in self.twins.items():
                to = f"{twin}@{DOMAIN}" + ("/r" if full else "")
                answer = await peer.iq(iq_type, payload, to=to)
                self.heard[observer][role].append(self._neutral(answer, twin))
            await self._settle()

        self.world.run(work())

    @rule(observer=observers, kind=st.sampled_from(MESSAGE_TYPES), full=st.booleans())
    def message(self, observer: int, kind: str, full: bool) -> None:
        async def work() -> None:
            peer = self.peers[observer]
            for twin in self.twins.values():
                to = f"{twin}@{DOMAIN}" + ("/r" if full else "")
                peer.send(f"<message type='{kind}' to='{to}'><body>hi</body></message>")
            await self._settle()

        self.world.run(work())

    @rule(observer=observers)
    def probe(self, observer: int) -> None:
        for twin in self.twins.values():
            self.peers[observer].send(f"<presence type='probe' to='{twin}@{DOMAIN}'/>")
        self.world.run(self._settle())

    # What the hidden twin does meanwhile, unseen

    @rule(change=st.sampled_from(["<presence/>", "<presence><show>dnd</show></presence>"]))
    def hidden_presence(self, change: str) -> None:
        assert self.hidden is not None
        self.hidden.send(change)
        self.world.run(self._settle())

    @rule()
    def hidden_logs_in_again(self) -> None:
        async def work() -> None:
            assert self.hidden is not None
            self.hidden.send("<presence type='unavailable'><status>Bye</status></presence>")
            await self.hidden.sync()
            await self.hidden.close()
            raw, jid = await raw_session(self.world.harness, self.twins["hidden"], "r")
            self.hidden = Peer(raw, jid)
            self.hidden.send("<presence/>")
            await self._settle()

        self.world.run(work())

    @rule(enabled=st.booleans())
    def automation(self, enabled: bool) -> None:
        async def work() -> None:
            for twin in self.twins.values():
                await self.world.harness.ctx.visibility.set_away_when_offline(twin, enabled)
            await self._settle()

        self.world.run(work())

    # Checking

    async def _settle(self) -> None:
        if self.hidden is not None:
            await self.hidden.sync()
            self.hidden.inbox.clear()
        for observer, peer in enumerate(self.peers):
            await peer.sync()
            for stanza in peer.inbox:
                sender = (stanza.get("from") or "").partition("@")[0]
                for role, twin in self.twins.items():
                    if sender == twin:
                        self.heard[observer][role].append(self._neutral(stanza, twin))
            peer.inbox.clear()

    def _neutral(self, stanza: etree._Element, twin: str) -> str:
        text = etree.tostring(stanza).decode()
        return VOLATILE.sub("", text).replace(twin, "twin")

    @invariant()
    def nobody_tells_the_twins_apart(self) -> None:
        for observer, heard in enumerate(self.heard):
            assert heard["hidden"] == heard["gone"], (
                f"{OBSERVERS[observer]} told them apart:\n"
                f"hidden: {heard['hidden']}\ngone:   {heard['gone']}"
            )


@pytest.mark.timeout(3600 if LONG else 300)
def test_nobody_tells_appearing_offline_from_being_logged_out(
    tmp_path: Path, tls_files: tuple[Path, Path]
) -> None:
    global WORLD
    loop = asyncio.new_event_loop()
    config = write_config(
        tmp_path,
        tls_files,
        tls={"required": False},
        # Storage fills within a run, so the bounce of a full quota is compared too.
        messages={"offline": "store", "max_offline": 3},
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
            TwinsMachine,
            settings=settings(
                max_examples=EXAMPLES,
                stateful_step_count=STEPS,
                deadline=None,
                suppress_health_check=list(HealthCheck),
                phases=list(Phase) if LONG else [p for p in Phase if p != Phase.shrink],
                derandomize=not LONG,
                database=None if not LONG else settings.default.database,
            ),
        )
    finally:
        WORLD = None
        loop.run_until_complete(harness.close())
        loop.close()
        asyncio.set_event_loop(None)
