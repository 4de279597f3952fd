"""Subscription requests that cross a contact's login on another node.

The node that stores a request (RFC 6121 section 3.1.3) delivers it to the contact's
resources it sees available; a resource whose initial presence it has not heard of yet gets
nothing from it, and the resource's own node, whose copy of the roster did not hold the
request yet at that initial presence, delivered it nothing either. So the node that
commits a request announces it with the full JIDs it delivered it to (`reached`), and each
node holding the contact's sessions delivers it to its available resources that were not
among them (`refresh`), as the reloaded roster holds it, nickname and all.
"""

from __future__ import annotations

from chorus_presence.cluster import wire
from chorus_presence.core.sessions import SessionRegistry
from chorus_presence.services.block_list import BlockListService
from chorus_presence.services.presence import PresenceService
from chorus_presence.services.rosters import RosterService
from chorus_presence.services.subscriptions import SubscriptionService
from chorus_presence.storage.rosters import RosterChanges
from chorus_presence.xmpp.jid import JID


class MissedRequests:
    def __init__(
        self,
        sessions: SessionRegistry,
        presence: PresenceService,
        rosters: RosterService,
        block_list: BlockListService,
        subscriptions: SubscriptionService,
        *,
        domain: str,
    ) -> None:
        self._sessions = sessions
        self._presence = presence
        self._rosters = rosters
        self._block_list = block_list
        self._subscriptions = subscriptions
        self._domain = domain

    def reached(self, changes: RosterChanges) -> list[wire.Item]:
        """Each request the commit stored: [owner, contact, status, [full JIDs]], the full
        JIDs those of the owner's resources on other nodes that it is delivered to from here."""
        announced: list[wire.Item] = []
        for owner, request in changes.pending_add:
            available = self._presence.available(JID(owner, self._domain))
            sent = sorted(str(s.jid) for s, _ in available if self._sessions.is_remote(s))
            announced.append([owner, request.contact, request.status, sent])
        return announced

    async def refresh(self, owner: str, requests: list[wire.Item]) -> None:
        """Reload the owner's roster, which another node changed, and deliver the requests
        it stored that this node's available resources of the owner did not get."""
        cached = self._rosters.cached(owner)
        # Not in memory here: it is loaded, requests and all, when a resource logs in.
        known = set(cached.pending) if cached is not None else None
        await self._rosters.refresh(owner)
        reloaded = self._rosters.cached(owner)
        if known is None or reloaded is None:
            return
        user = JID(owner, self._domain)
        for request in requests:
            try:
                to, contact, _status, sent = request
            except (TypeError, ValueError) as exc:
                raise wire.WireError(f"not a subscription request: {request!r}") from exc
            stored = reloaded.pending.get(str(contact))
            # Answered since it was announced: nothing is left to deliver.
            if to != owner or contact in known or stored is None:
                continue
            sender = JID.parse(str(contact))
            if self._block_list.blocked_either(user, sender):
                continue
            stanza = await self._subscriptions.request_stanza(sender, user, stored)
            for session, _state in self._presence.available(user):
                if self._sessions.is_remote(session) or str(session.jid) in sent:
                    continue
                session.send(stanza)
