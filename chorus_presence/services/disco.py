"""Service discovery (XEP-0030) of the server: its identity and the features that work.

The feature list is gathered on `disco/features` from the services themselves, so it is
exactly what is subscribed and nothing more. A service that answers for a node of the server
JID (XEP-0030 section 3.2) subscribes to `disco/info/<node>` or `disco/items/<node>`.
"""

from __future__ import annotations

from chorus_presence.core import topics
from chorus_presence.core.bus import Bus
from chorus_presence.core.events import DiscoFeatures, IqRequest
from chorus_presence.xmpp import namespaces as ns
from chorus_presence.xmpp.errors import StanzaError
from chorus_presence.xmpp.stanza import Element, child, element


class DiscoService:
    def __init__(self, bus: Bus) -> None:
        self._bus = bus

    def subscribe(self, bus: Bus) -> None:
        bus.on(topics.DISCO_FEATURES, _own_features)
        bus.on(topics.iq("get", "server", ns.qname(ns.DISCO_INFO, "query")), self.info)
        bus.on(topics.iq("get", "server", ns.qname(ns.DISCO_ITEMS, "query")), self.items)

    async def features(self) -> set[str]:
        gathered = DiscoFeatures()
        await self._bus.notify(topics.DISCO_FEATURES, gathered)
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

    async def _by_node(self, request: IqRequest, topic: str) -> Element:
        query = await self._bus.fire(topic, request)
        if query is None:
            raise StanzaError("item-not-found", "No such node")
        query.set("node", request.payload.get("node", ""))
        return request.reply(query)


def _own_features(event: DiscoFeatures) -> None:
    event.features.update({ns.DISCO_INFO, ns.DISCO_ITEMS})
