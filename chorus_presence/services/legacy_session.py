"""The RFC 3921 session establishment IQ, still sent by some clients; it is a no-op here."""

from __future__ import annotations

from chorus_presence.core import topics
from chorus_presence.core.bus import Bus
from chorus_presence.core.events import IqRequest
from chorus_presence.xmpp import namespaces as ns
from chorus_presence.xmpp.stanza import Element


def subscribe(bus: Bus) -> None:
    bus.on(topics.iq("set", "server", ns.qname(ns.SESSION, "session")), _establish)


async def _establish(request: IqRequest) -> Element:
    return request.reply()
