"""Blocking Command (XEP-0191): the block list IQs and their pushes, the in-memory block lists
behind `router.blocked`, and the presence a block or an unblock hides or shows at once.

An item is a bare JID (the account and every resource of it) or a domain (everything at that
domain). Blocking a single resource is refused as not implemented: the router and the services
ask about blocks by bare JID, so such an item could never be enforced.
"""

from __future__ import annotations

import itertools

from chorus_presence.server.context import ServerContext
from chorus_presence.server.router import IqRequest
from chorus_presence.services.presence import SEES, SENDS_TO
from chorus_presence.storage.blocks import BlockRepository
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

# (watcher, contact, can_see): a change to pass to PresenceService.visibility_changed.
SightChange = tuple[JID, JID, bool]


class BlockingService:
    def __init__(
        self, ctx: ServerContext, repo: BlockRepository, lists: dict[str, set[str]]
    ) -> None:
        self.ctx = ctx
        self.repo = repo
        # Every account's list, loaded once at start-up rather than per session: `blocked` is
        # synchronous and is also asked about users who are offline (a probe answered with
        # their offline presence, a message stored for them), where a list loaded on first
        # use would arrive too late. Lists are short, and accounts without one cost nothing.
        # Items are kept as canonical strings, a bare JID or a domain, as stored.
        self._lists: dict[JID, set[str]] = {
            JID(owner, ctx.domain): items for owner, items in lists.items()
        }
        self._interested: set[object] = set()
        self._push_ids = itertools.count(1)

    def forget(self, username: str) -> None:
        """A deleted account's list goes with it."""
        self._lists.pop(JID(username, self.ctx.domain), None)

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

    async def request_policy(self, owner: JID, requester: JID) -> str | None:
        """Subscription requests across a block are dropped silently, whichever side set it:
        the blocked cannot reach the blocker, and the blocker's own stanzas to the blocked are
        not routed either (XEP-0191 section 3.5)."""
        return "drop" if self.ctx.router.blocked_either(owner, requester) else None

    async def session_ended(self, session: object) -> None:
        self._interested.discard(session)

    # IQ handlers

    async def get(self, request: IqRequest) -> Element:
        owner = _own_account(request)
        # XEP-0191 section 3.3: pushes go to the resources that asked for the list.
        self._interested.add(request.session)
        blocklist = element("blocklist", namespace=ns.BLOCKING)
        for jid in sorted(self._lists.get(owner, ())):
            child(blocklist, "item", {"jid": jid})
        return request.reply(blocklist)

    async def block(self, request: IqRequest) -> None:
        owner = _own_account(request)
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
        async with self.ctx.rosters.lock:
            current = self._lists.get(owner, set())
            added = [jid for jid in jids if str(jid) not in current]
            if len(current) + len(added) > MAX_ITEMS:
                raise StanzaError("not-acceptable", f"A block list holds at most {MAX_ITEMS} items")
            visibility = await self._apply(owner, added, block=True)
        request.session.send(request.reply())
        if added:
            self._push(owner, _payload("block", added))
        self._show(visibility)

    async def unblock(self, request: IqRequest) -> None:
        owner = _own_account(request)
        jids = _item_jids(request.payload)
        async with self.ctx.rosters.lock:
            current = self._lists.get(owner, set())
            if jids:
                removed = [jid for jid in jids if str(jid) in current]
            else:
                removed = [JID.parse(item) for item in sorted(current)]
            visibility = await self._apply(owner, removed, block=False)
        request.session.send(request.reply())
        if removed:
            # XEP-0191 section 3.4: unblocking everything is pushed as an unblock without items.
            self._push(owner, _payload("unblock", removed if jids else []))
        self._show(visibility)

    # Internals

    async def _apply(self, owner: JID, jids: list[JID], *, block: bool) -> list[SightChange]:
        """Store the change, then update the list; what it changes in who sees whom.

        Called with the roster lock held: which presence to hide or show depends on the
        subscriptions, and subscription exchanges change those under the same lock.
        """
        if not jids:
            return []
        roster = await self.ctx.rosters.roster(owner.local)
        others = self._others(owner, roster, jids)
        before = {other: self.ctx.router.blocked_either(owner, other) for other in others}
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
            online = (session.jid.bare for session in self.ctx.sessions.all())
            others.update(jid for jid in itertools.chain(contacts, online) if jid.domain in domains)
        others.discard(owner)
        return others

    def _visibility(self, owner: JID, roster: Roster, before: dict[JID, bool]) -> list[SightChange]:
        """XEP-0191 section 3.3: a new block hides presence both ways, as unavailable; a lifted
        one shows it again where the subscriptions allow."""
        changes = []
        for other, was_blocked in before.items():
            now_blocked = self.ctx.router.blocked_either(owner, other)
            if now_blocked == was_blocked:
                continue
            item = roster.items.get(str(other))
            subscription = item.subscription if item is not None else "none"
            # Directed presence (RFC 6121 section 4.6) is hidden too, but not sent again on
            # unblock: it was a one-off the sender chose, not a standing permission.
            other_sees = subscription in SENDS_TO or (
                now_blocked and self._sent_directed(owner, other)
            )
            owner_sees = subscription in SEES or (now_blocked and self._sent_directed(other, owner))
            if other_sees:
                changes.append((other, owner, not now_blocked))
            if owner_sees:
                changes.append((owner, other, not now_blocked))
        return changes

    def _sent_directed(self, sender: JID, recipient: JID) -> bool:
        return any(
            target.bare == recipient
            for _, state in self.ctx.presence.available(sender)
            for target in state.directed
        )

    def _show(self, visibility: list[SightChange]) -> None:
        for watcher, contact, can_see in visibility:
            self.ctx.presence.visibility_changed(watcher, contact, can_see=can_see)

    def _push(self, owner: JID, payload: Element) -> None:
        """XEP-0191 sections 3.3 and 3.4: the change to each resource that asked for the list."""
        iq = element("iq", {"type": "set"})
        iq.append(payload)
        for session in self.ctx.sessions.of_account(owner):
            if session in self._interested:
                iq.set("id", f"block-push{next(self._push_ids)}")
                iq.set("to", str(session.jid))
                session.send_bytes(serialize(iq))


def _own_account(request: IqRequest) -> JID:
    sender = request.sender
    assert sender is not None and sender.local is not None
    if request.target is not None and request.target != sender.bare:
        raise StanzaError("forbidden", "Only your own block list can be read or changed")
    return sender.bare


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


def setup(ctx: ServerContext) -> None:
    # The service itself comes up in `start`, once every block list is loaded.
    ctx.disco_features.add(ns.BLOCKING)


async def start(ctx: ServerContext) -> BlockingService:
    repo = BlockRepository(ctx.database)
    service = BlockingService(ctx, repo, await repo.load_all())
    ctx.router.blocked = service.blocked
    # First in line: a block outranks any setting that would approve the request.
    ctx.subscriptions.request_policies.insert(0, service.request_policy)
    ctx.on_session_end.append(service.session_ended)
    ctx.on_account_removed.append(service.forget)
    ctx.router.on_iq("account", "get", BLOCKLIST, service.get)
    ctx.router.on_iq("account", "set", BLOCK, service.block)
    ctx.router.on_iq("account", "set", UNBLOCK, service.unblock)
    return service
