"""Crash safety: the server process is killed with SIGKILL in the middle of a burst of
subscription changes and settings updates. The database must pass `PRAGMA integrity_check`,
every change a client saw acknowledged must be there after a restart, and nobody may be shown
online.

A change counts as acknowledged when its client saw the server's answer: the IQ result of a
settings update, a roster set or a block, or the roster push that follows a subscription stanza
(the server commits before it answers or pushes). Each change writes its own key (one contact,
one account's settings) that no later change touches, so what the restarted server shows can be
compared with each acknowledgement on its own.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

from lxml import etree

from tests.integration.harness import (
    DOMAIN,
    PASSWORD,
    Harness,
    Peer,
    RawClient,
    ServerProcess,
    features,
    raw_session,
    write_config,
)

ROSTER = "jabber:iq:roster"
VISIBILITY = "urn:chorus:visibility:0"
BLOCKING = "urn:xmpp:blocking"
CLIENT = "jabber:client"
STATE = "{urn:chorus:presence:0}state"
# Changes per kind in the burst: enough that the kill lands while the server is still busy.
COUNT = 40


def jid(name: str) -> str:
    return f"{name}@{DOMAIN}"


async def register(server: ServerProcess, names: list[str]) -> None:
    """In-band registration (XEP-0077) of every account, on one unauthenticated stream."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    raw = RawClient(reader, writer)
    await features(raw)
    for name in names:
        raw.send(
            f"<iq type='set' id='reg-{name}'><query xmlns='jabber:iq:register'>"
            f"<username>{name}</username><password>{PASSWORD}</password></query></iq>"
        )
    await raw.expect(rf"id=\"reg-{names[-1]}\"")
    assert raw.received.count(b'type="result"') == len(names), raw.received
    raw.close()


async def online(harness: Harness, name: str, resource: str = "burst") -> Peer:
    raw, full_jid = await raw_session(harness, name, resource)
    peer = Peer(raw, full_jid)
    await peer.iq("get", f"<query xmlns='{ROSTER}'/>")
    peer.send("<presence/>")
    await peer.sync()
    return peer


class Burst:
    """The changes sent, and those acknowledged, by key."""

    def __init__(self, total: int, kill: Callable[[], None]) -> None:
        self.total = total
        self.acknowledged: dict[str, dict[str, str]] = {}
        self._kill = kill
        self._killed = False

    def ack(self, kind: str, key: str, value: str = "") -> None:
        self.acknowledged.setdefault(kind, {})[key] = value
        count = sum(len(keys) for keys in self.acknowledged.values())
        if not self._killed and count >= self.total // 2:
            # Right here, while the answers for the other half are still to come.
            self._killed = True
            self._kill()

    def of(self, kind: str) -> dict[str, str]:
        return self.acknowledged.get(kind, {})


def acknowledging(burst: Burst, kind: str, stanza_ids: dict[str, str]) -> Callable:
    """A listener that acknowledges the change sent with each id when its result comes."""

    def listener(stanza: etree._Element) -> None:
        key = stanza_ids.get(stanza.get("id", ""))
        if key is not None and stanza.get("type") == "result":
            burst.ack(kind, key)

    return listener


def pushes(burst: Burst, kind: str, wanted: Callable[[etree._Element], bool]) -> Callable:
    """A listener that acknowledges a subscription change by the roster push showing it."""

    def listener(stanza: etree._Element) -> None:
        if stanza.tag != f"{{{CLIENT}}}iq" or stanza.get("type") != "set":
            return
        for item in stanza.iter(f"{{{ROSTER}}}item"):
            if wanted(item):
                burst.ack(kind, item.get("jid"))

    return listener


async def test_sigkill_in_a_burst_loses_nothing_acknowledged(
    tmp_path: Path, tls_files: tuple[Path, Path]
) -> None:
    config = write_config(
        tmp_path,
        tls_files,
        tls={"required": False},
        # Every account registers in-band from loopback.
        registration={"open": True, "exempt_addresses": ["127.0.0.0/8"]},
        limits={
            "subscriptions_per_minute": 100_000,
            "connection_rate": 10_000.0,
            "connections_per_address": 10_000,
        },
    )
    database = tmp_path / "chorus.db"
    requesters = [f"x{n}" for n in range(COUNT)]
    contacts = [f"y{n}" for n in range(COUNT)]
    setters = [f"s{n}" for n in range(COUNT // 4)]
    movers = ["hub", "asker", "lister", "blocker", "hider", "watcher"]
    server = await ServerProcess.start(config)
    harness = Harness(server, tls_files[0])
    peers: list[Peer] = []
    try:
        await register(server, movers + requesters + contacts + setters)

        # Before the burst: requests waiting at the hub, and a watcher who sees everyone who
        # will be online when the server dies.
        hub = await online(harness, "hub")
        watcher = await online(harness, "watcher")
        peers += [hub, watcher]
        requester_peers = [await online(harness, name) for name in requesters]
        peers += requester_peers
        for peer in requester_peers:
            peer.send(f"<presence type='subscribe' to='{jid('hub')}'/>")
            await peer.sync()
        others = {name: await online(harness, name) for name in movers[1:-1] + setters}
        peers += others.values()
        seen = [hub, *requester_peers, *others.values()]
        for peer in seen:
            watcher.send(f"<presence type='subscribe' to='{peer.bare}'/>")
        await watcher.sync()
        for peer in seen:
            peer.send(f"<presence type='subscribed' to='{jid('watcher')}'/>")
            await peer.sync()
        await watcher.sync()

        total = 5 * COUNT + len(setters)
        burst = Burst(total, server.process.kill)
        hub.listener = pushes(
            burst, "approved", lambda item: item.get("subscription") in ("from", "both")
        )
        others["asker"].listener = pushes(
            burst, "asked", lambda item: item.get("ask") == "subscribe"
        )
        roster_ids = {f"r{n}": f"item{n}" for n in range(COUNT)}
        others["lister"].listener = acknowledging(burst, "roster", roster_ids)
        block_ids = {f"b{n}": f"blocked{n}@spam.example" for n in range(COUNT)}
        others["blocker"].listener = acknowledging(burst, "blocked", block_ids)
        hide_ids = {f"h{n}": jid(contacts[n]) for n in range(COUNT)}
        others["hider"].listener = acknowledging(burst, "hidden", hide_ids)
        for name in setters:
            others[name].listener = acknowledging(burst, "settings", {f"v-{name}": name})

        # The burst: every client sends all its changes at once.
        for n in range(COUNT):
            hub.send(f"<presence type='subscribed' to='{jid(requesters[n])}'/>")
            others["asker"].send(f"<presence type='subscribe' to='{jid(contacts[n])}'/>")
            others["lister"].send(
                f"<iq type='set' id='r{n}'><query xmlns='{ROSTER}'>"
                f"<item jid='{roster_ids[f'r{n}']}@{DOMAIN}' name='Item {n}'>"
                f"<group>Group {n}</group></item></query></iq>"
            )
            others["blocker"].send(
                f"<iq type='set' id='b{n}'><block xmlns='{BLOCKING}'>"
                f"<item jid='{block_ids[f'b{n}']}'/></block></iq>"
            )
            others["hider"].send(
                f"<iq type='set' id='h{n}'><block xmlns='{VISIBILITY}' jid='{hide_ids[f'h{n}']}'/>"
                "</iq>"
            )
        for name in setters:
            others[name].send(
                f"<iq type='set' id='v-{name}'><visibility xmlns='{VISIBILITY}' "
                "policy='nobody' away-when-offline='true'/></iq>"
            )
        async with asyncio.timeout(30):
            await server.process.wait()
        for peer in peers:
            peer.raw.close()
        acknowledged = sum(len(keys) for keys in burst.acknowledged.values())
        assert total // 2 <= acknowledged < total, "the kill did not land inside the burst"

        # The database survived the kill whole.
        with closing(sqlite3.connect(database)) as connection:
            assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]

        server = await ServerProcess.start(config)
        harness.server = server
        await check_acknowledged(harness, burst)
        await check_nobody_online(harness, [p.bare for p in seen])
    finally:
        for peer in peers:
            peer.raw.close()
        await server.stop()


async def query(harness: Harness, name: str, payload: str) -> etree._Element:
    raw, full_jid = await raw_session(harness, name, "after")
    peer = Peer(raw, full_jid)
    try:
        answer = await peer.iq("get", payload)
        assert answer.get("type") == "result", etree.tostring(answer)
        return answer
    finally:
        peer.raw.close()


async def check_acknowledged(harness: Harness, burst: Burst) -> None:
    roster = await query(harness, "hub", f"<query xmlns='{ROSTER}'/>")
    items = {item.get("jid"): item for item in roster.iter(f"{{{ROSTER}}}item")}
    for contact in burst.of("approved"):
        assert items[contact].get("subscription") in ("from", "both"), contact
        # The other side of the same transaction.
        theirs = await query(harness, contact.partition("@")[0], f"<query xmlns='{ROSTER}'/>")
        [hub] = [i for i in theirs.iter(f"{{{ROSTER}}}item") if i.get("jid") == jid("hub")]
        assert hub.get("subscription") in ("to", "both"), contact

    roster = await query(harness, "asker", f"<query xmlns='{ROSTER}'/>")
    items = {item.get("jid"): item for item in roster.iter(f"{{{ROSTER}}}item")}
    for contact in burst.of("asked"):
        assert items[contact].get("ask") == "subscribe", contact
        name = contact.partition("@")[0]
        overview = await query(harness, name, f"<visibility xmlns='{VISIBILITY}'/>")
        pending_list = overview.find(f"{{{VISIBILITY}}}visibility/{{{VISIBILITY}}}pending")
        assert pending_list is not None
        pending = {c.get("jid") for c in pending_list.iter(f"{{{VISIBILITY}}}contact")}
        assert jid("asker") in pending, contact

    roster = await query(harness, "lister", f"<query xmlns='{ROSTER}'/>")
    items = {item.get("jid"): item for item in roster.iter(f"{{{ROSTER}}}item")}
    for key in burst.of("roster"):
        number = key.removeprefix("item")
        item = items[jid(key)]
        assert item.get("name") == f"Item {number}"
        assert item.findtext(f"{{{ROSTER}}}group") == f"Group {number}"

    blocklist = await query(harness, "blocker", f"<blocklist xmlns='{BLOCKING}'/>")
    blocked = {item.get("jid") for item in blocklist.iter(f"{{{BLOCKING}}}item")}
    assert set(burst.of("blocked")) <= blocked

    overview = await query(harness, "hider", f"<visibility xmlns='{VISIBILITY}'/>")
    hidden_list = overview.find(f"{{{VISIBILITY}}}visibility/{{{VISIBILITY}}}blocked")
    assert hidden_list is not None
    hidden = {c.get("jid") for c in hidden_list.iter(f"{{{VISIBILITY}}}contact")}
    assert set(burst.of("hidden")) <= hidden

    for name in burst.of("settings"):
        overview = await query(harness, name, f"<visibility xmlns='{VISIBILITY}'/>")
        settings = overview.find(f"{{{VISIBILITY}}}visibility")
        assert settings is not None
        assert (settings.get("policy"), settings.get("away-when-offline")) == ("nobody", "true")


async def check_nobody_online(harness: Harness, contacts: list[str]) -> None:
    """The watcher, subscribed to everyone who was online at the kill, logs in afresh: its
    initial presence brings no available presence from anyone, beyond the automation's
    "Not logged in" for those who turned it on."""
    raw, full_jid = await raw_session(harness, "watcher", "fresh")
    watcher = Peer(raw, full_jid)
    try:
        roster = await watcher.iq("get", f"<query xmlns='{ROSTER}'/>")
        sees = {
            item.get("jid")
            for item in roster.iter(f"{{{ROSTER}}}item")
            if item.get("subscription") in ("to", "both")
        }
        # The watcher's subscriptions were all set up before the burst, so they are all there.
        assert sees == set(contacts)
        watcher.send("<presence/>")
        await watcher.sync()
        for stanza in watcher.take():
            if stanza.tag != f"{{{CLIENT}}}presence" or stanza.get("type") is not None:
                continue
            sender = re.sub(r"/.*", "", stanza.get("from", ""))
            if sender == jid("watcher"):
                continue
            assert stanza.findtext(STATE) == "offline", (
                f"{sender} is shown online after a restart: {etree.tostring(stanza)!r}"
            )
    finally:
        watcher.raw.close()
