"""Service discovery (XEP-0030): the server's identity and the features that work, and each
account's, answered by the server on the account's behalf (RFC 6121 section 8.5.2.1.3).

The feature lists are gathered from the services themselves, on `disco/features` for the
server and `disco/account-features` for an account, so they are exactly what is subscribed
and nothing more. A service that answers for a node of the server JID (XEP-0030 section 3.2)
subscribes to `disco/info/<node>` or `disco/items/<node>`.

An account is described to the user and to whoever may see the user's presence. Anyone else
gets the refusal a nonexistent account gets, which is also what the block filter answers on
the account's behalf: discovery never tells a stranger that an account exists.
"""

from __future__ import annotations

from chorus_presence.core import topics
from chorus_presence.core.bus import Bus
from chorus_presence.core.events import DiscoFeatures, IqRequest
from chorus_presence.services.rosters import RosterService
from chorus_presence.xmpp import namespaces as ns
from chorus_presence.xmpp.errors import StanzaError
from chorus_presence.xmpp.stanza import Element, child, element

INFO = ns.qname(ns.DISCO_INFO, "query")
ITEMS = ns.qname(ns.DISCO_ITEMS, "query")


class DiscoService:
    def __init__(self, bus: Bus, rosters: RosterService) -> None:
        self._bus = bus
        self._rosters = rosters

    def subscribe(self, bus: Bus) -> None:
        bus.on(topics.DISCO_FEATURES, _own_features)
        bus.on(topics.DISCO_ACCOUNT_FEATURES, _own_features)
        bus.on(topics.iq("get", "server", INFO), self.info)
        bus.on(topics.iq("get", "server", ITEMS), self.items)
        bus.on(topics.iq("get", "bare", INFO), self.account_info)
        bus.on(topics.iq("get", "bare", ITEMS), self.account_items)

    async def features(self, topic: str = topics.DISCO_FEATURES) -> set[str]:
        gathered = DiscoFeatures()
        await self._bus.notify(topic, gathered)
        return gathered.features

    async def info(self, request: IqRequest) -> Element:
        node = request.payload.get("node")
        if node:
            return await self._by_node(request, topics.disco_info(node))
        query = element("query", namespace=ns.DISCO_INFO)
        child(query, "identity", {"category": "server", "type": "im", "name": "chorus-presence"})
        for feature in sorted(await self.features()):
            child(query, "feature", {"var": feature})
        return request.reply(query)

    async def items(self, request: IqRequest) -> Element:
        node = request.payload.get("node")
        if node:
            return await self._by_node(request, topics.disco_items(node))
        return request.reply(element("query", namespace=ns.DISCO_ITEMS))

    async def account_info(self, request: IqRequest) -> Element:
        if request.target is None:
            # Without 'to' the server answers for itself: clients discover their server so.
            return await self.info(request)
        await self._may_discover(request)
        query = element("query", namespace=ns.DISCO_INFO)
        child(query, "identity", {"category": "account", "type": "registered"})
        for feature in sorted(await self.features(topics.DISCO_ACCOUNT_FEATURES)):
            child(query, "feature", {"var": feature})
        return request.reply(query)

    async def account_items(self, request: IqRequest) -> Element:
        if request.target is None:
            return await self.items(request)
        await self._may_discover(request)
        return request.reply(element("query", namespace=ns.DISCO_ITEMS))

    async def _may_discover(self, request: IqRequest) -> None:
        """Refuses whoever may not see the user's presence; an account has no nodes."""
        assert request.target is not None
        if not await self._rosters.sees(request.user, request.target.bare):
            # No text: the block filter's refusal has none, and the two must not differ.
            raise StanzaError("forbidden")
        node = request.payload.get("node")
        if node:
            raise StanzaError("item-not-found", f"{request.target.bare} has no node '{node}'")

    async def _by_node(self, request: IqRequest, topic: str) -> Element:
        query = await self._bus.fire(topic, request)
        if query is None:
            raise StanzaError("item-not-found", "No such node")
        query.set("node", request.payload.get("node", ""))
        return request.reply(query)


def _own_features(event: DiscoFeatures) -> None:
    event.features.update({ns.DISCO_INFO, ns.DISCO_ITEMS})
