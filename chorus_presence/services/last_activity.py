"""Last activity (XEP-0012): how long ago a user went offline, durable across restarts, told
only to those allowed to see the user's presence; and the server's uptime.

A logout is recorded when a user's last resource goes unavailable (`resource/unavailable`),
unless the user appears offline: then the logout was recorded when they went, and whoever asks
is answered as for a user offline since (`services/appear_offline.py`).
Blocks are the filter's business: a blocked requester is refused before the query gets here,
with the same answer a stranger gets.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from chorus_presence.core import topics
from chorus_presence.core.background import BackgroundWork
from chorus_presence.core.bus import Bus
from chorus_presence.core.events import IqRequest, ResourceUnavailable
from chorus_presence.services.presence import PresenceService
from chorus_presence.services.rosters import RosterService
from chorus_presence.storage.interfaces import LastActivityStore
from chorus_presence.storage.last_activity import LastLogout
from chorus_presence.xmpp import namespaces as ns
from chorus_presence.xmpp.errors import StanzaError
from chorus_presence.xmpp.stanza import Element, element

QUERY = ns.qname(ns.LAST_ACTIVITY, "query")
STATUS = ns.qname(ns.CLIENT, "status")


class LastActivityService:
    def __init__(
        self,
        repo: LastActivityStore,
        presence: PresenceService,
        rosters: RosterService,
        background: BackgroundWork,
        *,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.repo = repo
        self._presence = presence
        self._rosters = rosters
        self._background = background
        self._clock = clock
        self._monotonic = monotonic
        self.started = monotonic()
        # Logouts on their way to storage: a query in the meantime is answered from here, not
        # with the logout before.
        self._recording: dict[str, LastLogout] = {}

    def subscribe(self, bus: Bus) -> None:
        bus.on(topics.RESOURCE_UNAVAILABLE, self.went_unavailable)
        bus.on(topics.DISCO_FEATURES, lambda event: event.features.add(ns.LAST_ACTIVITY))
        # Asked at a user's bare JID, it is answered there for whoever may see the user.
        bus.on(topics.DISCO_ACCOUNT_FEATURES, lambda event: event.features.add(ns.LAST_ACTIVITY))
        bus.on(topics.iq("get", "bare", QUERY), self.query_user)
        bus.on(topics.iq("get", "server", QUERY), self.uptime)

    def went_unavailable(self, event: ResourceUnavailable) -> None:
        """Records a logout when the user's last resource goes."""
        if not event.last:
            return
        owner = event.session.jid.local
        assert owner is not None
        if self._presence.appears_offline(event.session.jid.bare):
            return
        logout = LastLogout(self._clock(), event.presence.findtext(STATUS))
        self._recording[owner] = logout
        # Called now, not in the background: a store that notes logouts (last seen) hears of
        # this one before the presence that follows it is made.
        self._background.run(
            self._record(owner, logout, self.repo.record(owner, logout.at, logout.status))
        )

    async def _record(self, owner: str, logout: LastLogout, writing: Awaitable[None]) -> None:
        try:
            await writing
        finally:
            if self._recording.get(owner) is logout:
                del self._recording[owner]

    async def query_user(self, request: IqRequest) -> Element:
        assert request.sender is not None
        user = request.target or request.user
        if user.local is None or not await self._rosters.sees(request.sender, user):
            # No text: the block filter's bare forbidden, so nobody can tell a block from not
            # being allowed.
            raise StanzaError("forbidden")
        query = element("query", namespace=ns.LAST_ACTIVITY)
        if self._presence.shown(user, request.sender):
            query.set("seconds", "0")
            return request.reply(query)
        last = self._recording.get(user.local) or await self.repo.get(user.local)
        if last is None:
            raise StanzaError("item-not-found", "No recorded activity")
        query.set("seconds", str(max(0, int(self._clock() - last.at))))
        if last.status:
            query.text = last.status
        return request.reply(query)

    async def uptime(self, request: IqRequest) -> Element:
        seconds = int(self._monotonic() - self.started)
        return request.reply(
            element("query", {"seconds": str(seconds)}, namespace=ns.LAST_ACTIVITY)
        )
