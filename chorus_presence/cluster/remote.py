"""Sessions another node holds, as this node sees them, and the outbox that carries what is
sent to them.

A `RemoteSession` is bound in the local session registry like a client stream; what a service
sends to it goes to the node that holds it, which writes it to the real stream. The outbox
gathers what the running handler sends per node and publishes it when the handler yields, as
one message per node: a presence broadcast reaches each node once, however many of its
resources it addresses, and the order of what one node sends another is kept.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from chorus_presence.cluster import wire
from chorus_presence.xmpp.errors import StreamError
from chorus_presence.xmpp.jid import JID
from chorus_presence.xmpp.stanza import Element, serialize

Publish = Callable[[str, list[wire.Item]], None]


class Outbox:
    def __init__(self, publish: Publish) -> None:
        self._publish = publish
        self._pending: dict[str, list[wire.Item]] = {}
        self._scheduled = False
        self._held = 0

    def put(self, node: str, item: wire.Item) -> None:
        if self._held:
            return
        items = self._pending.get(node)
        if items is None:
            items = self._pending[node] = []
        items.append(item)
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        self._scheduled = False
        pending, self._pending = self._pending, {}
        for node, items in pending.items():
            self._publish(node, items)

    @contextmanager
    def local_only(self) -> Iterator[None]:
        """While this node tells its own resources what a node that died could not: every
        other node does the same for its own, so nothing goes to them from here."""
        self._held += 1
        try:
            yield
        finally:
            self._held -= 1


class RemoteSession:
    """A session bound on another node of the cluster (`node`), in that node's incarnation
    `boot`, with the session id `sid` that node gave it."""

    __slots__ = ("_jid", "_outbox", "boot", "node", "sid")

    def __init__(self, node: str, boot: str, jid: JID, sid: str, outbox: Outbox) -> None:
        self.node = node
        self.boot = boot
        self.sid = sid
        self._jid = jid
        self._outbox = outbox

    @property
    def jid(self) -> JID:
        return self._jid

    @property
    def peer(self) -> str:
        return f"node {self.node}"

    def is_secure_enough(self) -> bool:
        return True

    def send(self, stanza: Element) -> None:
        self.send_bytes(serialize(stanza))

    def send_bytes(self, data: bytes) -> None:
        self._outbox.put(self.node, [wire.SEND, str(self._jid), data.decode()])

    def send_presence(self, data: bytes, sender: str) -> None:
        self._outbox.put(self.node, [wire.PRESENCE_TO, str(self._jid), data.decode(), sender])

    def close(self, error: StreamError | None = None) -> None:
        condition, text = (error.condition, error.text) if error is not None else (None, None)
        self._outbox.put(self.node, [wire.CLOSE, str(self._jid), condition, text])

    def undelivered(self) -> list[bytes]:
        # What the client never acknowledged is its own node's to store or bounce.
        return []

    def __repr__(self) -> str:
        return f"<RemoteSession {self._jid} on {self.node}>"
