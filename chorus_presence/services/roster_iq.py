"""The roster IQ (RFC 6121 section 2.1): get with versioning, set, and remove, which cancels
the subscriptions both ways through the subscription service."""

from __future__ import annotations

from dataclasses import replace

from chorus_presence.core import topics
from chorus_presence.core.bus import Bus
from chorus_presence.core.events import IqRequest
from chorus_presence.services.rosters import (
    GROUP,
    ITEM,
    MAX_GROUPS,
    MAX_TEXT_BYTES,
    QUERY,
    SUBSCRIPTION_VALUES,
    RosterService,
    item_element,
)
from chorus_presence.services.subscriptions import SubscriptionService
from chorus_presence.storage.rosters import RosterChanges, RosterItem
from chorus_presence.xmpp import namespaces as ns
from chorus_presence.xmpp.errors import StanzaError
from chorus_presence.xmpp.jid import JID, JIDError
from chorus_presence.xmpp.stanza import Element, element


class RosterIq:
    """The roster IQ (RFC 6121 section 2.1): get, set, and remove, which cancels
    subscriptions through the subscription service."""

    def __init__(self, rosters: RosterService, subscriptions: SubscriptionService) -> None:
        self._rosters = rosters
        self._subscriptions = subscriptions

    def subscribe(self, bus: Bus) -> None:
        bus.on(topics.iq("get", "bare", QUERY), self.get)
        bus.on(topics.iq("set", "bare", QUERY), self.set)

    async def get(self, request: IqRequest) -> Element:
        owner = _own_roster(request)
        roster = await self._rosters.roster(owner)
        self._rosters.mark_interested(request.bound_session)
        current = str(roster.version)
        if request.payload.get("ver") == current:
            # RFC 6121 section 2.6.3: nothing changed, so an empty result.
            return request.reply()
        query = element("query", {"ver": current}, namespace=ns.ROSTER)
        for item in roster.items.values():
            query.append(item_element(item))
        return request.reply(query)

    async def set(self, request: IqRequest) -> Element:
        owner = _own_roster(request)
        items = request.payload.findall(ITEM)
        if len(items) != 1 or len(request.payload) != 1:
            raise StanzaError("bad-request", "A roster set carries exactly one item")
        node = items[0]
        contact = _item_jid(node)
        if contact == str(request.user):
            raise StanzaError("not-allowed", "You cannot add yourself to your roster")
        subscription = node.get("subscription")
        if subscription == "remove":
            await self._subscriptions.remove_contact(owner, contact)
            return request.reply()
        if subscription is not None and subscription not in SUBSCRIPTION_VALUES:
            raise StanzaError("bad-request", "Invalid subscription attribute")
        name = node.get("name") or None
        if name is not None and len(name.encode()) > MAX_TEXT_BYTES:
            raise StanzaError("not-acceptable", "The name is too long")
        groups = _groups(node)
        # The contact's lock too: removing the contact's account deletes this row under it.
        async with self._rosters.hold(owner, JID.parse(contact)):
            roster = await self._rosters.roster(owner)
            # The subscription state is the server's; the client's 'subscription' and 'ask'
            # values are ignored (RFC 6121 section 2.1.2.5), as Prosody does.
            current = roster.items.get(contact) or RosterItem(contact)
            updated = replace(current, name=name, groups=groups)
            await self._rosters.commit(RosterChanges(upserts=[(owner, updated)]))
        return request.reply()


def _own_roster(request: IqRequest) -> str:
    if request.target is not None and request.target != request.user:
        raise StanzaError("forbidden", "Only your own roster can be read or changed")
    return request.username


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
        if text in groups:
            # RFC 6121 section 2.3.3: duplicate groups are a bad request, not merged.
            raise StanzaError("bad-request", f"The group '{text}' is listed more than once")
        groups[text] = None
    if len(groups) > MAX_GROUPS:
        raise StanzaError("not-acceptable", f"At most {MAX_GROUPS} groups per item")
    return tuple(groups)
