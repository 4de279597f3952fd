"""Rosters (RFC 6121 section 2): the roster IQ, pushes, versioning, and the roster cache.

Rosters of online users stay in memory so that presence never reads the database; every change
is committed to SQLite first (`commit`), then applied to the cache, then pushed.
"""

from __future__ import annotations

import asyncio
import itertools
from copy import deepcopy
from dataclasses import replace

from chorus_presence.server.context import ServerContext
from chorus_presence.server.router import IqRequest
from chorus_presence.storage.rosters import Roster, RosterChanges, RosterItem, RosterRepository
from chorus_presence.xmpp import namespaces as ns
from chorus_presence.xmpp.errors import StanzaError
from chorus_presence.xmpp.jid import JID, JIDError
from chorus_presence.xmpp.stanza import Element, child, element, serialize

QUERY = ns.qname(ns.ROSTER, "query")
ITEM = ns.qname(ns.ROSTER, "item")
GROUP = ns.qname(ns.ROSTER, "group")
MAX_TEXT_BYTES = 1023
MAX_GROUPS = 100
SUBSCRIPTION_VALUES = frozenset({"none", "to", "from", "both"})


class RosterService:
    """The roster cache, its writes and pushes; `lock` serialises read-modify-write cycles."""

    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx
        self.repo = RosterRepository(ctx.database)
        self.lock = asyncio.Lock()
        self._cache: dict[str, Roster] = {}
        self._interested: set[object] = set()
        self._push_ids = itertools.count(1)

    def cached(self, owner: str) -> Roster | None:
        return self._cache.get(owner)

    async def roster(self, owner: str) -> Roster:
        """The owner's roster; kept in memory while the owner has a session."""
        roster = self._cache.get(owner)
        if roster is not None:
            return roster
        roster = await self.repo.load(owner)
        if self.ctx.sessions.is_online(JID(owner, self.ctx.domain)):
            roster = self._cache.setdefault(owner, roster)
        return roster

    def forget(self, owner: str) -> None:
        self._cache.pop(owner, None)

    def mark_interested(self, session: object) -> None:
        self._interested.add(session)

    def session_ended(self, session: object) -> None:
        self._interested.discard(session)

    async def commit(self, changes: RosterChanges) -> None:
        """Write durably, then update the cache and push changed items to interested resources."""
        if not changes:
            return
        versions = await self.repo.apply(changes)
        owners = {owner for owner, _ in (*changes.upserts, *changes.deletes)}
        owners |= {owner for owner, _ in (*changes.pending_add, *changes.pending_remove)}
        for owner in owners:
            roster = self._cache.get(owner)
            if roster is not None:
                changes.apply_to(roster, versions.get(owner))
        for owner, item in changes.upserts:
            self._push(owner, versions[owner], item_element(item))
        for owner, contact in changes.deletes:
            removed = element(
                "item", {"jid": contact, "subscription": "remove"}, namespace=ns.ROSTER
            )
            self._push(owner, versions[owner], removed)

    def _push(self, owner: str, version: int, item: Element) -> None:
        """RFC 6121 section 2.1.6: a roster push to each interested resource of the owner."""
        for session in self.ctx.sessions.of_account(JID(owner, self.ctx.domain)):
            if session not in self._interested:
                continue
            iq = element("iq", {"type": "set", "id": f"push{next(self._push_ids)}"})
            iq.set("to", str(session.jid))
            query = child(iq, "query", {"ver": str(version)}, namespace=ns.ROSTER)
            query.append(deepcopy(item))
            session.send_bytes(serialize(iq))


def item_element(item: RosterItem) -> Element:
    node = element(
        "item", {"jid": item.contact, "subscription": item.subscription}, namespace=ns.ROSTER
    )
    if item.name:
        node.set("name", item.name)
    if item.pending_out:
        node.set("ask", "subscribe")
    if item.approved:
        node.set("approved", "true")
    for group in item.groups:
        child(node, "group", text=group)
    return node


def setup(ctx: ServerContext) -> RosterService:
    service = RosterService(ctx)
    ctx.rosters = service
    ctx.add_stream_feature(
        "postauth", lambda _stream: element("ver", namespace=ns.ROSTER_VER_FEATURE)
    )

    async def session_end(session) -> None:
        service.session_ended(session)
        if session.jid is not None and not ctx.sessions.is_online(session.jid.bare):
            service.forget(session.jid.local)

    ctx.on_session_end.append(session_end)
    ctx.on_account_removed.append(service.forget)

    async def get(request: IqRequest) -> Element:
        owner = _own_roster(request)
        roster = await service.roster(owner)
        service.mark_interested(request.session)
        current = str(roster.version)
        if request.payload.get("ver") == current:
            # RFC 6121 section 2.6.3: nothing changed, so an empty result.
            return request.reply()
        query = element("query", {"ver": current}, namespace=ns.ROSTER)
        for item in roster.items.values():
            query.append(item_element(item))
        return request.reply(query)

    async def set_(request: IqRequest) -> Element:
        owner = _own_roster(request)
        items = request.payload.findall(ITEM)
        if len(items) != 1 or len(request.payload) != 1:
            raise StanzaError("bad-request", "A roster set carries exactly one item")
        node = items[0]
        contact = _item_jid(node)
        if contact == f"{owner}@{ctx.domain}":
            raise StanzaError("not-allowed", "You cannot add yourself to your roster")
        subscription = node.get("subscription")
        if subscription == "remove":
            await ctx.subscriptions.remove_contact(owner, contact)
            return request.reply()
        if subscription is not None and subscription not in SUBSCRIPTION_VALUES:
            raise StanzaError("bad-request", "Invalid subscription attribute")
        name = node.get("name") or None
        if name is not None and len(name.encode()) > MAX_TEXT_BYTES:
            raise StanzaError("not-acceptable", "The name is too long")
        groups = _groups(node)
        async with service.lock:
            roster = await service.roster(owner)
            # The subscription state is the server's; the client's 'subscription' and 'ask'
            # values are ignored (RFC 6121 section 2.1.2.5), as Prosody does.
            current = roster.items.get(contact) or RosterItem(contact)
            updated = replace(current, name=name, groups=groups)
            await service.commit(RosterChanges(upserts=[(owner, updated)]))
        return request.reply()

    ctx.router.on_iq("account", "get", QUERY, get)
    ctx.router.on_iq("account", "set", QUERY, set_)
    return service


def _own_roster(request: IqRequest) -> str:
    sender = request.sender
    assert sender is not None and sender.local is not None
    if request.target is not None and request.target != sender.bare:
        raise StanzaError("forbidden", "Only your own roster can be read or changed")
    return sender.local


def _item_jid(node: Element) -> str:
    try:
        jid = JID.parse(node.get("jid") or "")
    except JIDError as exc:
        raise StanzaError("jid-malformed", "The item's jid is not a valid JID") from exc
    if jid.resource is not None:
        raise StanzaError("bad-request", "Roster items are bare JIDs")
    return str(jid)


def _groups(node: Element) -> tuple[str, ...]:
    groups: dict[str, None] = {}
    for group in node.iterfind(GROUP):
        text = group.text or ""
        if not text or len(text.encode()) > MAX_TEXT_BYTES:
            # RFC 6121 section 2.1.2.4 forbids empty group names.
            raise StanzaError("not-acceptable", "Group names must be 1 to 1023 bytes")
        groups[text] = None
    if len(groups) > MAX_GROUPS:
        raise StanzaError("not-acceptable", f"At most {MAX_GROUPS} groups per item")
    return tuple(groups)
