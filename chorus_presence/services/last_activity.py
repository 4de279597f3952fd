"""Last activity (XEP-0012): how long ago a user went offline, durable across restarts, told
only to those allowed to see the user's presence; and the server's uptime."""

from __future__ import annotations

import time

from chorus_presence.server.context import ServerContext
from chorus_presence.server.router import IqRequest
from chorus_presence.services.subscription_states import SENDS_TO
from chorus_presence.storage.last_activity import LastActivityRepository
from chorus_presence.xmpp import namespaces as ns
from chorus_presence.xmpp.errors import StanzaError
from chorus_presence.xmpp.jid import JID
from chorus_presence.xmpp.stanza import Element, element

QUERY = ns.qname(ns.LAST_ACTIVITY, "query")
STATUS = ns.qname(ns.CLIENT, "status")


class LastActivityService:
    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx
        self.repo = LastActivityRepository(ctx.database)
        self.started = time.monotonic()

    def went_unavailable(self, session, stanza: Element) -> None:
        """Called by presence; records a logout when the user's last resource goes."""
        user = session.jid.bare
        if self.ctx.presence.available(user):
            return
        status = stanza.findtext(STATUS)
        self.ctx.background(self.repo.record(user.local, time.time(), status))

    async def may_see(self, requester: JID, user: JID) -> bool:
        if requester.bare == user:
            return True
        if self.ctx.router.blocked_either(requester.bare, user):
            return False
        roster = await self.ctx.rosters.roster(user.local)
        item = roster.items.get(str(requester.bare))
        return item is not None and item.subscription in SENDS_TO

    async def query_user(self, request: IqRequest) -> Element:
        assert request.sender is not None
        user = request.target or request.sender.bare
        if user.local is None or not await self.may_see(request.sender, user):
            raise StanzaError("forbidden", "You may not see this user's activity")
        query = element("query", namespace=ns.LAST_ACTIVITY)
        if self.ctx.presence.available(user):
            query.set("seconds", "0")
            return request.reply(query)
        last = await self.repo.get(user.local)
        if last is None:
            raise StanzaError("item-not-found", "No recorded activity")
        query.set("seconds", str(max(0, int(time.time() - last.at))))
        if last.status:
            query.text = last.status
        return request.reply(query)

    async def uptime(self, request: IqRequest) -> Element:
        seconds = int(time.monotonic() - self.started)
        return request.reply(
            element("query", {"seconds": str(seconds)}, namespace=ns.LAST_ACTIVITY)
        )


def setup(ctx: ServerContext) -> LastActivityService:
    service = LastActivityService(ctx)
    ctx.presence.on_resource_unavailable.append(service.went_unavailable)
    ctx.disco_features.add(ns.LAST_ACTIVITY)
    ctx.router.on_iq("account", "get", QUERY, service.query_user)
    ctx.router.on_iq("host", "get", QUERY, service.uptime)
    return service
