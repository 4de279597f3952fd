"""Rosters (RFC 6121 section 2): the roster cache, its durable writes, pushes and versioning.

Rosters of online users stay in memory so that presence never reads the database; every change
is committed to storage first (`commit`), then applied to the cache, then pushed, and then
`roster/committed` lets the rest follow it. In a cluster another node may commit a change to
a roster cached here: `refresh` reloads it and pushes what changed to this node's resources.

Every read-modify-write of rosters holds `hold` for the accounts whose rows it changes or
names (core/account_locks.py), so changes to different accounts' rosters run side by side.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from copy import deepcopy

from chorus_presence.core import topics
from chorus_presence.core.account_locks import AccountLocks
from chorus_presence.core.bus import Bus
from chorus_presence.core.events import (
    AccountRemoved,
    RosterCommitted,
    SessionEvent,
    StreamFeatures,
)
from chorus_presence.core.session import Session
from chorus_presence.core.sessions import SessionRegistry
from chorus_presence.services.subscription_states import SENDS_TO
from chorus_presence.storage.interfaces import RosterStore
from chorus_presence.storage.rosters import Roster, RosterChanges, RosterItem
from chorus_presence.xmpp import namespaces as ns
from chorus_presence.xmpp.jid import JID
from chorus_presence.xmpp.stanza import Element, child, element, serialize

QUERY = ns.qname(ns.ROSTER, "query")
ITEM = ns.qname(ns.ROSTER, "item")
GROUP = ns.qname(ns.ROSTER, "group")
MAX_TEXT_BYTES = 1023
MAX_GROUPS = 100
SUBSCRIPTION_VALUES = frozenset({"none", "to", "from", "both"})


class RosterService:
    """The roster cache, its writes and pushes; `hold` serialises read-modify-write cycles
    on the same accounts."""

    def __init__(
        self,
        repo: RosterStore,
        sessions: SessionRegistry,
        bus: Bus,
        *,
        domain: str,
        locks: AccountLocks | None = None,
    ) -> None:
        self.repo = repo
        self._sessions = sessions
        self._bus = bus
        self._domain = domain
        self.locks = locks if locks is not None else AccountLocks()
        self._cache: dict[str, Roster] = {}
        # Owners whose rosters stay cached while a bulk change works on them, online or not.
        self._kept: Counter[str] = Counter()
        self._interested: set[Session] = set()
        self._push_ids = itertools.count(1)

    def subscribe(self, bus: Bus) -> None:
        bus.on(topics.FEATURES_POSTAUTH, _versioning_feature)
        # Last among the session's handlers: presence still needs the cached roster.
        bus.on(topics.SESSION_ENDED, self.session_ended, priority=-100)
        bus.on(topics.ACCOUNT_REMOVED, self.account_removed)

    def hold(self, *accounts: str | JID) -> AbstractAsyncContextManager[None]:
        """The locks of the accounts named, by localpart or by JID; a JID of another domain
        has no account here and takes none."""
        return self.locks.hold(*self.local_accounts(accounts))

    def local_accounts(self, accounts: Iterable[str | JID]) -> set[str]:
        """The localparts of the accounts of this domain among `accounts`."""
        names: set[str] = set()
        for account in accounts:
            if isinstance(account, str):
                names.add(account)
            elif account.domain == self._domain and account.local is not None:
                names.add(account.local)
        return names

    def cached(self, owner: str) -> Roster | None:
        return self._cache.get(owner)

    async def roster(self, owner: str) -> Roster:
        """The owner's roster; kept in memory while the owner has a session."""
        roster = self._cache.get(owner)
        if roster is not None:
            return roster
        roster = await self.repo.load(owner)
        if owner in self._kept or self._sessions.is_online(JID(owner, self._domain)):
            roster = self._cache.setdefault(owner, roster)
        return roster

    @asynccontextmanager
    async def kept(self, owners: Iterable[str]) -> AsyncIterator[None]:
        """The owners' rosters stay in memory meanwhile, whether they are online or not, and
        are kept up to date like any cached roster: a bulk change (a group sync) reads each
        once instead of at every exchange."""
        names = list(dict.fromkeys(owners))
        self._kept.update(names)
        try:
            yield
        finally:
            self._kept.subtract(names)
            for name in names:
                if self._kept[name] <= 0:
                    del self._kept[name]
                    self.forget_if_offline(name)

    async def sees(self, watcher: JID, user: JID) -> bool:
        """Whether `watcher` may see `user`'s presence: `user` themself, or a contact whose
        subscription `user` granted (`from` or `both` on `user`'s side, RFC 6121 section 3)."""
        if watcher.bare == user.bare:
            return True
        assert user.local is not None
        item = (await self.roster(user.local)).items.get(str(watcher.bare))
        return item is not None and item.subscription in SENDS_TO

    def mark_interested(self, session: Session) -> None:
        self._interested.add(session)

    def session_ended(self, event: SessionEvent) -> None:
        session = event.session
        self._interested.discard(session)
        assert session.jid.local is not None
        self.forget_if_offline(session.jid.local)

    def forget_if_offline(self, owner: str) -> None:
        """Drop the cached roster of an owner with no session left, here or on another node,
        unless a bulk change keeps it."""
        if owner not in self._kept and not self._sessions.is_online(JID(owner, self._domain)):
            self._cache.pop(owner, None)

    async def refresh(self, owner: str) -> None:
        """Another node committed a change to the owner's roster: the cached copy, if any, is
        reloaded, and each changed item is pushed to this node's interested resources."""
        if owner not in self._cache:
            return
        async with self.hold(owner):
            cached = self._cache.get(owner)
            if cached is None:
                return
            stored = await self.repo.load(owner)
            changed = [
                item for contact, item in stored.items.items() if cached.items.get(contact) != item
            ]
            removed = [contact for contact in cached.items if contact not in stored.items]
            cached.version, cached.items, cached.pending = (
                stored.version,
                stored.items,
                stored.pending,
            )
        for item in changed:
            self._push(owner, stored.version, item_element(item))
        for contact in removed:
            self._push(owner, stored.version, _removal(contact))

    def account_removed(self, event: AccountRemoved) -> None:
        """The removed account's roster goes; contacts' items for it go from their cached
        rosters, with a push to each interested resource."""
        assert event.user.local is not None
        self._cache.pop(event.user.local, None)
        contact = str(event.user)
        for owner, (_item, version) in event.rows.roster_items.items():
            roster = self._cache.get(owner)
            if roster is not None:
                roster.items.pop(contact, None)
                roster.version = version
            self._push(owner, version, _removal(contact))
        for owner in event.rows.pending_owners:
            roster = self._cache.get(owner)
            if roster is not None:
                roster.pending.pop(contact, None)

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
            self._push(owner, versions[owner], _removal(contact))
        await self._bus.notify(topics.ROSTER_COMMITTED, RosterCommitted(changes))

    def _push(self, owner: str, version: int, item: Element) -> None:
        """RFC 6121 section 2.1.6: a roster push to each interested resource of the owner."""
        for session in self._sessions.of_account(JID(owner, self._domain)):
            if session not in self._interested:
                continue
            iq = element("iq", {"type": "set", "id": f"push{next(self._push_ids)}"})
            iq.set("to", str(session.jid))
            query = child(iq, "query", {"ver": str(version)}, namespace=ns.ROSTER)
            query.append(deepcopy(item))
            session.send_bytes(serialize(iq))


def _removal(contact: str) -> Element:
    return element("item", {"jid": contact, "subscription": "remove"}, namespace=ns.ROSTER)


def _versioning_feature(event: StreamFeatures) -> None:
    event.features.append(element("ver", namespace=ns.ROSTER_VER_FEATURE))


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
