"""XMPP ping (XEP-0199) answered by the server."""

from __future__ import annotations

from chorus_presence.core import topics
from chorus_presence.core.bus import Bus
from chorus_presence.core.events import IqRequest
from chorus_presence.xmpp import namespaces as ns
from chorus_presence.xmpp.stanza import Element


def subscribe(bus: Bus) -> None:
    bus.on(topics.DISCO_FEATURES, lambda event: event.features.add(ns.PING))
    bus.on(topics.iq("get", "server", ns.qname(ns.PING, "ping")), _pong)


async def _pong(request: IqRequest) -> Element:
    return request.reply()
