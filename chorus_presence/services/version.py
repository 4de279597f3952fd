"""Software version (XEP-0092) of the server; the operating system is not disclosed."""

from __future__ import annotations

from chorus_presence import __version__
from chorus_presence.server.context import ServerContext
from chorus_presence.server.router import IqRequest
from chorus_presence.xmpp import namespaces as ns
from chorus_presence.xmpp.stanza import Element, child, element


def setup(ctx: ServerContext) -> None:
    ctx.disco_features.add(ns.VERSION)

    async def version(request: IqRequest) -> Element:
        query = element("query", namespace=ns.VERSION)
        child(query, "name", text="chorus-presence")
        child(query, "version", text=__version__)
        return request.reply(query)

    ctx.router.on_iq("host", "get", ns.qname(ns.VERSION, "query"), version)
