"""Software version (XEP-0092) of the server; the operating system is not disclosed."""

from __future__ import annotations

from chorus_presence import __version__
from chorus_presence.core import topics
from chorus_presence.core.bus import Bus
from chorus_presence.core.events import IqRequest
from chorus_presence.xmpp import namespaces as ns
from chorus_presence.xmpp.stanza import Element, child, element


def subscribe(bus: Bus) -> None:
    bus.on(topics.DISCO_FEATURES, lambda event: event.features.add(ns.VERSION))
    bus.on(topics.iq("get", "server", ns.qname(ns.VERSION, "query")), _version)


async def _version(request: IqRequest) -> Element:
    query = element("query", namespace=ns.VERSION)
    child(query, "name", text="chorus-presence")
    child(query, "version", text=__version__)
    return request.reply(query)
