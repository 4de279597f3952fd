"""Service discovery (XEP-0030) of the server: its identity and the features that work.

Other services call `ctx.disco_features.add(namespace)` from their own setup, so the list is
exactly what is registered and nothing more.
"""

from __future__ import annotations

from chorus_presence.server.context import ServerContext
from chorus_presence.server.router import IqRequest
from chorus_presence.xmpp import namespaces as ns
from chorus_presence.xmpp.errors import StanzaError
from chorus_presence.xmpp.stanza import Element, child, element


def setup(ctx: ServerContext) -> None:
    ctx.disco_features.update({ns.DISCO_INFO, ns.DISCO_ITEMS})

    async def info(request: IqRequest) -> Element:
        if request.payload.get("node"):
            raise StanzaError("item-not-found", "No such node")
        query = element("query", namespace=ns.DISCO_INFO)
        child(query, "identity", {"category": "server", "type": "im", "name": "chorus-presence"})
        for feature in sorted(ctx.disco_features):
            child(query, "feature", {"var": feature})
        return request.reply(query)

    async def items(request: IqRequest) -> Element:
        if request.payload.get("node"):
            raise StanzaError("item-not-found", "No such node")
        return request.reply(element("query", namespace=ns.DISCO_ITEMS))

    ctx.router.on_iq("host", "get", ns.qname(ns.DISCO_INFO, "query"), info)
    ctx.router.on_iq("host", "get", ns.qname(ns.DISCO_ITEMS, "query"), items)
