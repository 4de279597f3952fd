"""Service discovery (XEP-0030) of the server: its identity and the features that work.

Other services call `ctx.disco_features.add(namespace)` from their own setup, so the list is
exactly what is registered and nothing more. A service that answers for a node of the server JID
(XEP-0030 section 3.2) puts a handler in `ctx.disco_info_nodes` or `ctx.disco_items_nodes`.
"""

from __future__ import annotations

from chorus_presence.server.context import DiscoNodeHandler, ServerContext
from chorus_presence.server.router import IqRequest
from chorus_presence.xmpp import namespaces as ns
from chorus_presence.xmpp.errors import StanzaError
from chorus_presence.xmpp.stanza import Element, child, element


def setup(ctx: ServerContext) -> None:
    ctx.disco_features.update({ns.DISCO_INFO, ns.DISCO_ITEMS})

    async def by_node(request: IqRequest, handlers: dict[str, DiscoNodeHandler]) -> Element:
        node = request.payload.get("node", "")
        handler = handlers.get(node)
        if handler is None:
            raise StanzaError("item-not-found", "No such node")
        query = await handler(request)
        query.set("node", node)
        return request.reply(query)

    async def info(request: IqRequest) -> Element:
        if request.payload.get("node"):
            return await by_node(request, ctx.disco_info_nodes)
        query = element("query", namespace=ns.DISCO_INFO)
        child(query, "identity", {"category": "server", "type": "im", "name": "chorus-presence"})
        for feature in sorted(ctx.disco_features):
            child(query, "feature", {"var": feature})
        return request.reply(query)

    async def items(request: IqRequest) -> Element:
        if request.payload.get("node"):
            return await by_node(request, ctx.disco_items_nodes)
        return request.reply(element("query", namespace=ns.DISCO_ITEMS))

    ctx.router.on_iq("host", "get", ns.qname(ns.DISCO_INFO, "query"), info)
    ctx.router.on_iq("host", "get", ns.qname(ns.DISCO_ITEMS, "query"), items)
