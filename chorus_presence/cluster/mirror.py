"""The sessions other nodes hold, bound here as stand-ins, with their presence mirrored.

What a node announces (a session bound, its presence, its end) is applied here without a word
to anyone: that node sends its own users' stanzas itself. A node that died could not say its
sessions ended, and one that lost Redis for a while may have said things nobody heard; for
those, the difference is told to this node's own resources as if the stand-ins were local
sessions (`tell`), while every other node does the same for its own.
"""

from __future__ import annotations

import contextlib
import logging

from chorus_presence.cluster import wire
from chorus_presence.cluster.remote import Outbox, RemoteSession
from chorus_presence.core.sessions import SessionRegistry
from chorus_presence.services.presence import PresenceService
from chorus_presence.services.rosters import RosterService
from chorus_presence.xmpp.errors import StreamError
from chorus_presence.xmpp.jid import JID

log = logging.getLogger(__name__)


class Mirror:
    def __init__(
        self,
        sessions: SessionRegistry,
        presence: PresenceService,
        rosters: RosterService,
        outbox: Outbox,
    ) -> None:
        self._sessions = sessions
        self._presence = presence
        self._rosters = rosters
        self._outbox = outbox
        self._by_node: dict[str, dict[JID, RemoteSession]] = {}
        # The last entry each stand-in's node announced for it.
        self._entries: dict[RemoteSession, wire.Entry] = {}

    def of_node(self, node: str) -> list[RemoteSession]:
        return list(self._by_node.get(node, {}).values())

    # Announcements

    def bound(self, node: str, boot: str, entry: wire.Entry) -> RemoteSession:
        jid = JID.parse(entry.jid)
        known = self._by_node.get(node, {}).get(jid)
        if known is not None and known.sid == entry.sid and known.boot == boot:
            return known
        if known is not None:
            self._forget(known)
        stand_in = RemoteSession(node, boot, jid, entry.sid, self._outbox)
        replaced = self._sessions.bind(stand_in, remote=True)
        if isinstance(replaced, RemoteSession):
            # Bound on a third node before: that one is told by the node that bound it now.
            self._forget(replaced, unbind=False)
        elif replaced is not None:
            # This node's session for the same full JID is the older one: as on one node,
            # the newer session wins.
            replaced.close(StreamError("conflict", "Replaced by a new session for this resource"))
        self._by_node.setdefault(node, {})[jid] = stand_in
        self._entries[stand_in] = entry
        if entry.stanza is not None:
            self._mirror(stand_in, entry, tell=False)
        return stand_in

    def presence(self, node: str, entry: wire.Entry) -> None:
        stand_in = self._find(node, entry.jid, entry.sid)
        if stand_in is not None:
            self._entries[stand_in] = entry
            self._mirror(stand_in, entry, tell=False)

    async def unbound(self, node: str, jid: str, sid: str) -> None:
        stand_in = self._find(node, jid, sid)
        if stand_in is not None:
            await self.gone(stand_in, tell=False)

    # Whole nodes

    async def reconcile(self, node: str, boot: str, entries: list[wire.Entry]) -> None:
        """Make the node's stand-ins what it says it holds (it joined, or came back after
        losing Redis): what differs from what was known here is told."""
        wanted = {JID.parse(entry.jid): entry for entry in entries}
        for jid, stand_in in list(self._by_node.get(node, {}).items()):
            entry = wanted.get(jid)
            if entry is None or entry.sid != stand_in.sid or stand_in.boot != boot:
                await self.gone(stand_in, tell=True)
        for jid, entry in wanted.items():
            known = self._by_node.get(node, {}).get(jid)
            stand_in = known or self.bound(node, boot, wire.Entry(entry.jid, entry.sid))
            if self._entries.get(stand_in) != entry:
                self._entries[stand_in] = entry
                await self._cache_roster(stand_in)
                self._mirror(stand_in, entry, tell=True)

    async def node_gone(self, node: str, *, tell: bool) -> int:
        """Every stand-in of a node that stopped (quietly: it said goodbye) or died (`tell`);
        how many there were."""
        stand_ins = self.of_node(node)
        for stand_in in stand_ins:
            await self.gone(stand_in, tell=tell)
        self._by_node.pop(node, None)
        return len(stand_ins)

    async def gone(self, stand_in: RemoteSession, *, tell: bool) -> None:
        if tell:
            await self._cache_roster(stand_in)
            with self._outbox.local_only():
                self._presence.mirror(stand_in, None, tell=True)
        self._forget(stand_in)

    # Internals

    def _mirror(self, stand_in: RemoteSession, entry: wire.Entry, *, tell: bool) -> None:
        with self._outbox.local_only() if tell else contextlib.nullcontext():
            self._presence.mirror(
                stand_in, entry.presence(), entry.priority, entry.state, tell=tell
            )

    async def _cache_roster(self, stand_in: RemoteSession) -> None:
        """Telling contacts needs the user's roster in the cache; it is, while the user has a
        session anywhere (the stand-in is still bound)."""
        owner = stand_in.jid.local
        assert owner is not None
        await self._rosters.roster(owner)

    def _forget(self, stand_in: RemoteSession, *, unbind: bool = True) -> None:
        self._presence.mirror(stand_in, None)
        self._entries.pop(stand_in, None)
        resources = self._by_node.get(stand_in.node)
        if resources is not None and resources.get(stand_in.jid) is stand_in:
            del resources[stand_in.jid]
        if unbind:
            self._sessions.unbind(stand_in)
        owner = stand_in.jid.local
        assert owner is not None
        self._rosters.forget_if_offline(owner)

    def _find(self, node: str, jid: str, sid: str) -> RemoteSession | None:
        stand_in = self._by_node.get(node, {}).get(JID.parse(jid))
        return stand_in if stand_in is not None and stand_in.sid == sid else None
