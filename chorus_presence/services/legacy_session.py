"""The RFC 3921 session establishment IQ, still sent by some clients; it is a no-op here."""

from __future__ import annotations

from chorus_presence.server.context import ServerContext
from chorus_presence.server.router import IqRequest
from chorus_presence.xmpp import namespaces as ns
from chorus_presence.xmpp.stanza import Element


def setup(ctx: ServerContext) -> None:
    async def establish(request: IqRequest) -> Element:
        return request.reply()

    ctx.router.on_iq("host", "set", ns.qname(ns.SESSION, "session"), establish)
