"""Real slixmpp clients: waiting for their events, collecting what they receive, sync points,
logging a user in as a stock client would, and the requests tests make with them (roster,
subscriptions, XEP-0191 block list, the visibility extension)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import slixmpp
from slixmpp.xmlstream import ET

from tests.integration.harness.constants import DOMAIN, PASSWORD, TIMEOUT

if TYPE_CHECKING:
    from tests.integration.harness.server import Harness

VISIBILITY = "urn:chorus:visibility:0"
ROSTER_ITEM = "{jabber:iq:roster}query/{jabber:iq:roster}item"


# Events and stanzas


async def wait_first(
    client: slixmpp.ClientXMPP, events: tuple[str, ...], start: Callable[[], object]
) -> str:
    """Run `start` and return the name of the first of `events` the client fires."""
    loop = asyncio.get_running_loop()
    first: asyncio.Future[str] = loop.create_future()

    def handler_for(name: str) -> Callable[[object], None]:
        def handler(_event: object) -> None:
            if not first.done():
                first.set_result(name)

        return handler

    handlers = {name: handler_for(name) for name in events}
    for name, handler in handlers.items():
        client.add_event_handler(name, handler)
    try:
        start()
        return await asyncio.wait_for(first, TIMEOUT)
    finally:
        for name, handler in handlers.items():
            client.del_event_handler(name, handler)


def ending(client: slixmpp.ClientXMPP) -> tuple[asyncio.Future[None], list[str]]:
    """A future set when the client is disconnected, and the stream errors it received."""
    ended: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    errors: list[str] = []
    client.add_event_handler("stream_error", lambda error: errors.append(error["condition"]))
    client.add_event_handler("disconnected", lambda _event: ended.done() or ended.set_result(None))
    return ended, errors


class Inbox:
    """Collects the stanzas a slixmpp client receives, for tests to await them by content."""

    def __init__(self, client: slixmpp.ClientXMPP, *events: str) -> None:
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        self.unclaimed: list[Any] = []
        for name in events or ("presence", "message", "message_error"):
            client.add_event_handler(name, self.queue.put_nowait)

    async def get(self, predicate: Callable[[Any], bool] = lambda _s: True) -> Any:
        """The first stanza, received or still to come, matching `predicate`; others stay."""
        for index, stanza in enumerate(self.unclaimed):
            if predicate(stanza):
                return self.unclaimed.pop(index)
        async with asyncio.timeout(TIMEOUT):
            while True:
                stanza = await self.queue.get()
                if predicate(stanza):
                    return stanza
                self.unclaimed.append(stanza)

    async def expect(self, predicate: Callable[[Any], bool], what: str) -> Any:
        """`get`, but a stanza that never comes fails the test naming `what` and showing what
        did arrive, where `get` raises a bare TimeoutError."""
        try:
            return await self.get(predicate)
        except TimeoutError:
            seen = "\n".join(str(stanza) for stanza in self.unclaimed) or "nothing"
            raise AssertionError(f"{what}: not received in {TIMEOUT}s; got {seen}") from None

    def drain(self) -> list[Any]:
        """Everything received and not yet claimed."""
        items, self.unclaimed = self.unclaimed, []
        while not self.queue.empty():
            items.append(self.queue.get_nowait())
        return items


async def sync(*clients: slixmpp.ClientXMPP) -> None:
    """A ping round trip on each client's stream, in order.

    The server handles a stream's stanzas in order and writes to each socket in order, so after
    `sync(sender, receiver)` everything the sender caused has reached the receiver's inbox.
    """
    for client in clients:
        iq = client.make_iq_get(queryxmlns="urn:xmpp:ping", ito=DOMAIN)
        iq.clear()
        iq.append(ET.Element("{urn:xmpp:ping}ping"))
        await iq.send(timeout=TIMEOUT)


def presence_of(client: slixmpp.ClientXMPP, ptype: str, sender: str) -> Callable[[Any], bool]:
    """A predicate: presence of `ptype` ('available', 'subscribe', ...) from `sender`."""
    return lambda s: s["type"] == ptype and (str(s["from"]) == sender or s["from"].bare == sender)


def pushed(jid: str, subscription: str, groups: tuple[str, ...] = ()) -> Callable[[Any], bool]:
    """A predicate: a roster push of `jid` with this subscription and these groups (an inbox
    collects pushes when it listens to `roster_update`)."""

    def matches(stanza: Any) -> bool:
        if stanza.name != "iq" or stanza["type"] != "set":
            return False
        item = stanza.xml.find(ROSTER_ITEM)
        return (
            item is not None
            and item.get("jid") == jid
            and item.get("subscription") == subscription
            and tuple(g.text for g in item.iter("{jabber:iq:roster}group")) == groups
        )

    return matches


# Logging in


async def online(
    harness: Harness,
    user: str,
    resource: str = "test",
    *,
    password: str = PASSWORD,
    priority: int | None = None,
    plugins: tuple[str, ...] = (),
    roster: bool = False,
) -> tuple[slixmpp.ClientXMPP, Inbox]:
    """A logged-in client that decides subscriptions itself and has sent initial presence (and
    seen it come back), with an inbox of its presence and messages.

    With `roster` it asked for its roster first, so that the server sends it roster pushes,
    and its inbox collects those too.
    """
    client = await harness.login(user, password, resource=resource, plugins=plugins)
    client.auto_authorize = None
    client.auto_subscribe = False
    events = ("presence", "message", "message_error") + (("roster_update",) if roster else ())
    inbox = Inbox(client, *events)
    if roster:
        await client.get_roster()
    client.send_presence(ppriority=priority)
    await inbox.get(presence_of(client, "available", f"{user}@{DOMAIN}/{resource}"))
    return client, inbox


async def befriend(
    a: slixmpp.ClientXMPP, a_inbox: Inbox, b: slixmpp.ClientXMPP, b_inbox: Inbox
) -> None:
    """Mutual subscription through the real exchange."""
    a_jid, b_jid = a.boundjid.bare, b.boundjid.bare
    for sender, receiver, inbox, receiver_jid, sender_jid in (
        (a, b, b_inbox, b_jid, a_jid),
        (b, a, a_inbox, a_jid, b_jid),
    ):
        sender.send_presence(pto=receiver_jid, ptype="subscribe")
        await inbox.get(presence_of(receiver, "subscribe", sender_jid))
        receiver.send_presence(pto=sender_jid, ptype="subscribed")
    await sync(a, b, a, b)


# Requests


async def roster_of(client: slixmpp.ClientXMPP) -> dict[str, dict[str, Any]]:
    """The client's roster as the server holds it: jid -> subscription, ask, approved, ..."""
    iq = client.make_iq_get(queryxmlns="jabber:iq:roster")
    result = await iq.send(timeout=TIMEOUT)
    items = {}
    for item in result.xml.iter("{jabber:iq:roster}item"):
        items[item.get("jid")] = {
            "subscription": item.get("subscription", "none"),
            "ask": item.get("ask"),
            "approved": item.get("approved"),
            "name": item.get("name"),
            "groups": sorted(g.text for g in item.iter("{jabber:iq:roster}group")),
        }
    return items


async def block_list(client: slixmpp.ClientXMPP) -> list[str]:
    """The XEP-0191 block list (the client needs the xep_0191 plugin)."""
    result = await client.plugin["xep_0191"].get_blocked(timeout=TIMEOUT)
    return [item["jid"] for item in result["blocklist"]["items"]]


async def visibility(client: slixmpp.ClientXMPP, **attributes: str) -> ET.Element:
    """Read (or, with attributes, change) the user's visibility settings over the extension."""
    iq = client.make_iq_set() if attributes else client.make_iq_get()
    query = ET.Element(f"{{{VISIBILITY}}}visibility", attributes)
    iq.append(query)
    result = await iq.send(timeout=TIMEOUT)
    return result.xml.find(f"{{{VISIBILITY}}}visibility")


def listed(overview: ET.Element, name: str) -> tuple[int, list[str]]:
    """One list of a visibility overview ('pending', 'allowed', 'blocked'): count and JIDs."""
    group = overview.find(f"{{{VISIBILITY}}}{name}")
    return int(group.get("count")), [c.get("jid") for c in group.iter(f"{{{VISIBILITY}}}contact")]
