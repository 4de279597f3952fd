"""Blocking Command (XEP-0191): the block list IQs and their pushes, the in-memory block lists,
the filter that stops what must not cross a block, and the presence a block or an unblock
hides or shows at once.

The block list is not the presence *blocked list* of the visibility settings: a block here
stops every stanza both ways; the blocked list only keeps a contact from seeing presence.

The filter sits on the bus at a high priority, on every stanza event and on the presence
audiences, so no stanza path can forget it: what the user sends to someone they block is
refused (a message with XEP-0191's <blocked/> condition), what a blocked sender sends is
refused as if the user were not there, and presence, IQ results and IQ errors are dropped
silently (a response is never answered).

An item is a bare JID (the account and every resource of it) or a domain (everything at that
domain). Blocking a single resource is refused as not implemented: the router and the services
ask about blocks by bare JID, so such an item could never be enforced.

Every change is announced on `block-list/committed` once durable; in a cluster another node's
change reaches this node's copy through `refresh`.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

from chorus_presence.core import topics
from chorus_presence.core.bus import STOP, Bus
from chorus_presence.core.events import (
    ANSWERED,
    AccountRemoved,
    Audience,
    BlockListCommitted,
    IqRequest,
    SessionEvent,
    StanzaEvent,
)
from chorus_presence.core.session import Session
from chorus_presence.core.sessions import SessionRegistry
from chorus_presence.services.presence import SUBSCRIPTION_TYPES, PresenceService
from chorus_presence.services.rosters import RosterService
from chorus_presence.services.subscription_states import SEES, SENDS_TO
from chorus_presence.storage.interfaces import BlockListStore
from chorus_presence.storage.rosters import Roster
from chorus_presence.xmpp import namespaces as ns
from chorus_presence.xmpp.errors import StanzaError
from chorus_presence.xmpp.jid import JID, JIDError
from chorus_presence.xmpp.stanza import Element, child, element, serialize

BLOCKLIST = ns.qname(ns.BLOCKING, "blocklist")
BLOCK = ns.qname(ns.BLOCKING, "block")
UNBLOCK = ns.qname(ns.BLOCKING, "unblock")
ITEM = ns.qname(ns.BLOCKING, "item")
# Every list stays in memory, so no account may grow its own without bound.
MAX_ITEMS = 1000
# Above every handler that delivers or answers, below the metrics that count everything.
FILTER_PRIORITY = 500

# (watcher, contact, can_see): a change to pass to PresenceService.visibility_changed.
SightChange = tuple[JID, JID, bool]


class BlockListService:
    def __init__(
        self,
        repo: BlockListStore,
        bus: Bus,
        rosters: RosterService,
        presence: PresenceService,
        sessions: SessionRegistry,
        lists: dict[str, set[str]],
        *,
        domain: str,
    ) -> None:
        self.repo = repo
        self._bus = bus
        self._rosters = rosters
        self._presence = presence
        self._sessions = sessions
        self._domain = domain
        # Every account's list, loaded once at start-up rather than per session: `blocked` is
        # synchronous and is also asked about users who are offline (a probe answered with
        # their offline presence, a message stored for them), where a list loaded on first
        # use would arrive too late. Lists are short, and accounts without one cost nothing.
        # Items are kept as canonical strings, a bare JID or a domain, as stored.
        self._lists: dict[JID, set[str]] = {
            JID(owner, domain): items for owner, items in lists.items()
        }
        self._interested: set[Session] = set()
        self._push_ids = itertools.count(1)

    @classmethod
    async def load(
        cls,
        repo: BlockListStore,
        bus: Bus,
        rosters: RosterService,
        presence: PresenceService,
        sessions: SessionRegistry,
        *,
        domain: str,
    ) -> BlockListService:
        lists = await repo.load_all()
        return cls(repo, bus, rosters, presence, sessions, lists, domain=domain)

    def subscribe(self, bus: Bus) -> None:
        bus.on(topics.iq("get", "bare", BLOCKLIST), self.get)
        bus.on(topics.iq("set", "bare", BLOCK), self.block)
        bus.on(topics.iq("set", "bare", UNBLOCK), self.unblock)
        bus.on(topics.DISCO_FEATURES, lambda event: event.features.add(ns.BLOCKING))
        bus.on(topics.SESSION_ENDED, self.session_ended)
        bus.on(topics.ACCOUNT_REMOVED, self.account_removed)
        bus.on(topics.MESSAGE_OUT, self._message_out, priority=FILTER_PRIORITY)
        bus.on(topics.MESSAGE_IN_BARE, self._refused_if_blocked, priority=FILTER_PRIORITY)
        bus.on(topics.MESSAGE_IN_FULL, self._refused_if_blocked, priority=FILTER_PRIORITY)
        bus.on(topics.PRESENCE_OUT, self._presence_out, priority=FILTER_PRIORITY)
        bus.on(topics.PRESENCE_IN_BARE, self._presence_in, priority=FILTER_PRIORITY)
        bus.on(topics.PRESENCE_IN_FULL, self._presence_in, priority=FILTER_PRIORITY)
        bus.on(topics.IQ_OUT, self._iq_out, priority=FILTER_PRIORITY)
        bus.on(topics.IQ_IN_BARE, self._iq_in_bare, priority=FILTER_PRIORITY)
        bus.on(topics.IQ_IN_FULL, self._iq_in_full, priority=FILTER_PRIORITY)
        bus.on(topics.PRESENCE_AUDIENCE, self._narrow, priority=FILTER_PRIORITY)
        bus.on(topics.PRESENCE_VIEW, self._narrow, priority=FILTER_PRIORITY)

    def blocked(self, owner: JID, other: JID) -> bool:
        """Whether `owner` blocks `other` by its bare JID or its domain (XEP-0191 section 3.5).

        An account never blocks itself: blocking one's own domain leaves one's own resources
        talking to each other.
        """
        items = self._lists.get(owner.bare)
        if not items or (other.local == owner.local and other.domain == owner.domain):
            return False
        return other.domain in items or (
            other.local is not None and f"{other.local}@{other.domain}" in items
        )

    def blocked_either(self, first: JID, second: JID) -> bool:
        """Whether either bare JID blocks the other."""
        return self.blocked(first, second) or self.blocked(second, first)

    # The filter

    def _message_out(self, event: StanzaEvent) -> None:
        target = event.target
        if target is not None and target.local is not None and self.blocked(event.sender, target):
            raise StanzaError(
                "not-acceptable",
                "You have blocked this contact",
                app_condition=(ns.BLOCKING_ERRORS, "blocked"),
            )

    def _refused_if_blocked(self, event: StanzaEvent) -> None:
        assert event.target is not None
        if self.blocked(event.target, event.sender):
            raise StanzaError("service-unavailable")

    def _presence_out(self, event: StanzaEvent) -> object:
        target = event.target
        if target is None or event.stanza.get("type") in SUBSCRIPTION_TYPES:
            # Subscription stanzas keep both rosters in step across a block; the exchange
            # decides what crosses it.
            return None
        return STOP if self.blocked(event.sender, target) else None

    def _presence_in(self, event: StanzaEvent) -> object:
        # Subscription stanzas never get here: the exchange answers them on presence/out.
        assert event.target is not None
        return STOP if self.blocked(event.target, event.sender) else None

    def _iq_out(self, event: StanzaEvent) -> object:
        target = event.target
        if target is None or target.local is None or not self.blocked(event.sender, target):
            return None
        if _is_response(event.stanza):
            # Errors are never answered with errors, and results get no reply.
            return STOP
        if target.resource is None:
            # What a stranger asking about the user is told.
            raise StanzaError("forbidden")
        raise StanzaError("service-unavailable")

    def _iq_in_full(self, event: StanzaEvent) -> object:
        assert event.target is not None
        if not self.blocked(event.target, event.sender):
            return None
        if _is_response(event.stanza):
            return STOP
        raise StanzaError("service-unavailable")

    def _iq_in_bare(self, event: StanzaEvent) -> None:
        assert event.target is not None
        if self.blocked(event.target, event.sender):
            raise StanzaError("forbidden")

    def _narrow(self, audience: Audience) -> None:
        if not self._lists:
            return
        user = audience.user
        audience.others = {
            other for other in audience.others if not self.blocked_either(user, other)
        }

    # Lifecycle

    def session_ended(self, event: SessionEvent) -> None:
        self._interested.discard(event.session)

    def account_removed(self, event: AccountRemoved) -> None:
        """The removed account's list goes, and so does its place on other users' lists."""
        self._lists.pop(event.user, None)
        item = str(event.user)
        for owner in event.rows.block_list_owners:
            owner_jid = JID(owner, self._domain)
            items = self._lists.get(owner_jid)
            if items is not None:
                items.discard(item)
                if not items:
                    del self._lists[owner_jid]

    # IQ handlers

    async def get(self, request: IqRequest) -> Element:
        request.own_account("block list")
        owner = request.user
        # XEP-0191 section 3.3: pushes go to the resources that asked for the list.
        self._interested.add(request.bound_session)
        blocklist = element("blocklist", namespace=ns.BLOCKING)
        for jid in sorted(self._lists.get(owner, ())):
            child(blocklist, "item", {"jid": jid})
        return request.reply(blocklist)

    async def block(self, request: IqRequest) -> bool:
        request.own_account("block list")
        owner = request.user
        jids = _item_jids(request.payload)
        if not jids:
            raise StanzaError("bad-request", "A block needs at least one item")
        for jid in jids:
            if jid.resource is not None:
                raise StanzaError(
                    "feature-not-implemented", "Only bare JIDs and domains can be blocked"
                )
            if jid == owner:
                raise StanzaError("not-allowed", "You cannot block yourself")

        def select(current: set[str]) -> list[JID]:
            added = [jid for jid in jids if str(jid) not in current]
            if len(current) + len(added) > MAX_ITEMS:
                raise StanzaError("not-acceptable", f"A block list holds at most {MAX_ITEMS} items")
            return added

        added, visibility = await self._change(owner, jids, select, block=True)
        request.session.send(request.reply())
        if added:
            # Before what follows from it: whoever hears the consequences knows the list.
            await self._bus.notify(topics.BLOCK_LIST_COMMITTED, BlockListCommitted(owner))
            self._push(owner, _payload("block", added))
        self._show(visibility)
        return ANSWERED

    async def unblock(self, request: IqRequest) -> bool:
        request.own_account("block list")
        owner = request.user
        jids = _item_jids(request.payload)

        def select(current: set[str]) -> list[JID]:
            if jids:
                return [jid for jid in jids if str(jid) in current]
            return [JID.parse(item) for item in sorted(current)]

        removed, visibility = await self._change(owner, jids, select, block=False)
        request.session.send(request.reply())
        if removed:
            await self._bus.notify(topics.BLOCK_LIST_COMMITTED, BlockListCommitted(owner))
            # XEP-0191 section 3.4: unblocking everything is pushed as an unblock without items.
            self._push(owner, _payload("unblock", removed if jids else []))
        self._show(visibility)
        return ANSWERED

    async def refresh(self, owner: JID) -> None:
        """Another node changed the owner's list: reload it, and push the change to this
        node's resources that asked for the list."""
        assert owner.local is not None
        self._replace(owner, await self.repo.load(owner.local))

    async def resync(self) -> None:
        """What other nodes said may have been lost (Redis, or this node's channel, was away):
        every list is reloaded, and what changed pushed."""
        lists = await self.repo.load_all()
        stored = {JID(owner, self._domain): items for owner, items in lists.items()}
        for owner in sorted(set(self._lists) | set(stored), key=str):
            self._replace(owner, stored.get(owner, set()))

    def _replace(self, owner: JID, stored: set[str]) -> None:
        current = self._lists.get(owner, set())
        added, removed = sorted(stored - current), sorted(current - stored)
        if stored:
            self._lists[owner] = stored
        else:
            self._lists.pop(owner, None)
        if added:
            self._push(owner, _payload("block", [JID.parse(item) for item in added]))
        if removed:
            self._push(owner, _payload("unblock", [JID.parse(item) for item in removed]))

    # Internals

    async def _change(
        self,
        owner: JID,
        named: list[JID],
        select: Callable[[set[str]], list[JID]],
        *,
        block: bool,
    ) -> tuple[list[JID], list[SightChange]]:
        """Apply the items `select` picks from the owner's current list; those items, and
        what the change does to who sees whom.

        Held meanwhile: the owner's lock, since which presence to hide or show depends on the
        owner's subscriptions, which exchanges change under it; and the lock of every local
        account whose sight of the owner it may change, so that two users blocking each
        other at once do not both hide (or show) the same presence. Which accounts those are
        depends on the list and the roster read under the locks: when the change turns out
        to concern one more, it starts again holding that one's lock as well.
        """
        assert owner.local is not None
        accounts = self._rosters.local_accounts([owner, *named])
        while True:
            async with self._rosters.hold(*accounts):
                jids = select(self._lists.get(owner, set()))
                if not jids:
                    return [], []
                roster = await self._rosters.roster(owner.local)
                others = self._others(owner, roster, jids)
                missing = self._rosters.local_accounts(others) - accounts
                if not missing:
                    return jids, await self._apply(owner, roster, others, jids, block=block)
            accounts |= missing

    async def _apply(
        self, owner: JID, roster: Roster, others: set[JID], jids: list[JID], *, block: bool
    ) -> list[SightChange]:
        """Store the change, then update the list; what it changes in who sees whom."""
        assert owner.local is not None
        before = {other: self.blocked_either(owner, other) for other in others}
        items = [str(jid) for jid in jids]
        if block:
            await self.repo.add(owner.local, items)
            self._lists.setdefault(owner, set()).update(items)
        else:
            await self.repo.remove(owner.local, items)
            remaining = self._lists[owner]
            remaining.difference_update(items)
            if not remaining:
                del self._lists[owner]
        return self._visibility(owner, roster, before)

    def _others(self, owner: JID, roster: Roster, jids: list[JID]) -> set[JID]:
        """Whoever the items name and could be seeing, or be seen by, the owner: the accounts
        named, and for a domain its roster contacts and online accounts there."""
        others = {jid for jid in jids if jid.local is not None}
        domains = {jid.domain for jid in jids if jid.local is None}
        if domains:
            contacts = (JID.parse(contact) for contact in roster.items)
            online = (session.jid.bare for session in self._sessions.all())
            others.update(jid for jid in itertools.chain(contacts, online) if jid.domain in domains)
        others.discard(owner)
        return others

    def _visibility(self, owner: JID, roster: Roster, before: dict[JID, bool]) -> list[SightChange]:
        """XEP-0191 section 3.3: a new block hides presence both ways, as unavailable; a lifted
        one shows it again where the subscriptions allow."""
        changes = []
        for other, was_blocked in before.items():
            now_blocked = self.blocked_either(owner, other)
            if now_blocked == was_blocked:
                continue
            item = roster.items.get(str(other))
            subscription = item.subscription if item is not None else "none"
            # Directed presence (RFC 6121 section 4.6) is hidden too, but not sent again on
            # unblock: it was a one-off the sender chose, not a standing permission.
            other_sees = subscription in SENDS_TO or (
                now_blocked and self._presence.sent_directed(owner, other)
            )
            owner_sees = subscription in SEES or (
                now_blocked and self._presence.sent_directed(other, owner)
            )
            if other_sees:
                changes.append((other, owner, not now_blocked))
            if owner_sees:
                changes.append((owner, other, not now_blocked))
        return changes

    def _show(self, visibility: list[SightChange]) -> None:
        for watcher, contact, can_see in visibility:
            self._presence.visibility_changed(watcher, contact, can_see=can_see)

    def _push(self, owner: JID, payload: Element) -> None:
        """XEP-0191 sections 3.3 and 3.4: the change to each resource that asked for the list."""
        iq = element("iq", {"type": "set"})
        iq.append(payload)
        for session in self._sessions.of_account(owner):
            if session in self._interested:
                iq.set("id", f"block-push{next(self._push_ids)}")
                iq.set("to", str(session.jid))
                session.send_bytes(serialize(iq))


def _is_response(iq: Element) -> bool:
    """An IQ result or error, which a filter may only drop."""
    return iq.get("type") in ("result", "error")


def _item_jids(payload: Element) -> list[JID]:
    """The items' JIDs in order, each once."""
    jids: dict[JID, None] = {}
    for item in payload.iterfind(ITEM):
        try:
            jid = JID.parse(item.get("jid") or "")
        except JIDError as exc:
            raise StanzaError("jid-malformed", "An item's jid is not a valid JID") from exc
        jids[jid] = None
    return list(jids)


def _payload(kind: str, jids: list[JID]) -> Element:
    node = element(kind, namespace=ns.BLOCKING)
    for jid in jids:
        child(node, "item", {"jid": str(jid)})
    return node
