"""Client state indication (XEP-0352): while a client says it is inactive, presence updates
for it wait, condensed to the latest one per sender, until something important arrives or the
client becomes active again."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chorus_presence.xmpp import namespaces as ns
from chorus_presence.xmpp.stanza import Element, element

if TYPE_CHECKING:
    from chorus_presence.server.c2s import ClientStream
    from chorus_presence.server.context import ServerContext


class ClientState:
    def __init__(self) -> None:
        self.active = True
        self._held: dict[str, bytes] = {}

    def hold(self, sender: str, data: bytes) -> bool:
        """Keep a presence update instead of sending it; False when the client is active."""
        if self.active:
            return False
        # Re-inserting moves the sender to the end, so updates flush in the order they came.
        self._held.pop(sender, None)
        self._held[sender] = data
        return True

    def release(self) -> list[bytes]:
        """Everything held, in order; called before anything important is sent."""
        held = list(self._held.values())
        self._held.clear()
        return held

    @property
    def held_count(self) -> int:
        return len(self._held)


def setup(ctx: ServerContext) -> None:
    """Registers `<active/>` and `<inactive/>` with the c2s stream."""

    async def active(stream: ClientStream, _node: Element) -> None:
        stream.client_state.active = True
        for data in stream.client_state.release():
            stream.send_bytes(data)

    async def inactive(stream: ClientStream, _node: Element) -> None:
        stream.client_state.active = False

    ctx.add_stream_feature("postauth", lambda _stream: element("csi", namespace=ns.CSI))
    ctx.nonzas[ns.qname(ns.CSI, "active")] = active
    ctx.nonzas[ns.qname(ns.CSI, "inactive")] = inactive
