"""XMPP ping (XEP-0199) answered by the server."""

from __future__ import annotations

from chorus_presence.server.context import ServerContext
from chorus_presence.server.router import IqRequest
from chorus_presence.xmpp import namespaces as ns
from chorus_presence.xmpp.stanza import Element


def setup(ctx: ServerContext) -> None:
    ctx.disco_features.add(ns.PING)

    async def pong(request: IqRequest) -> Element:
        return request.reply()

    ctx.router.on_iq("host", "get", ns.qname(ns.PING, "ping"), pong)
