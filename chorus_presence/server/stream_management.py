"""Stream management (XEP-0198): per-session counters and the queue of stanzas sent but not yet
acknowledged, and the protocol elements (enable, r, a, resume) the c2s stream hands over here.
Hibernation itself lives in the c2s stream, which owns the connection."""

from __future__ import annotations

import asyncio
import secrets
from collections import deque
from typing import TYPE_CHECKING

from chorus_presence.xmpp import namespaces as ns
from chorus_presence.xmpp.errors import StreamError
from chorus_presence.xmpp.stanza import Element, element

if TYPE_CHECKING:
    from chorus_presence.server.c2s import ClientStream
    from chorus_presence.server.context import ServerContext

# Counters wrap at 2^32 (XEP-0198 section 4).
MODULO = 2**32
# How long a resuming client waits for the server to let go of the old connection.
RESUME_SWITCH_SECONDS = 5.0


class UnackedOverflow(Exception):
    """More stanzas are waiting for an acknowledgement than the session may keep."""


class StreamManagement:
    def __init__(self, *, resumable: bool, max_unacked: int) -> None:
        self.id = secrets.token_urlsafe(18) if resumable else None
        self.handled_in = 0
        self._sent = 0
        self._max_unacked = max_unacked
        self._unacked: deque[tuple[int, bytes]] = deque()

    @property
    def resumable(self) -> bool:
        return self.id is not None

    def received_stanza(self) -> None:
        self.handled_in = (self.handled_in + 1) % MODULO

    def sent_stanza(self, data: bytes) -> None:
        self._sent = (self._sent + 1) % MODULO
        self._unacked.append((self._sent, data))
        if len(self._unacked) > self._max_unacked:
            raise UnackedOverflow(f"{len(self._unacked)} stanzas unacknowledged")

    def acknowledged(self, handled: int) -> bool:
        """The client says it handled `handled` stanzas; False when that is impossible."""
        outstanding = (self._sent - handled) % MODULO
        if outstanding > len(self._unacked):
            return False
        while len(self._unacked) > outstanding:
            self._unacked.popleft()
        return True

    @property
    def unacked(self) -> list[bytes]:
        return [data for _, data in self._unacked]

    @property
    def unacked_count(self) -> int:
        return len(self._unacked)


def setup(ctx: ServerContext) -> None:
    """Registers the XEP-0198 elements with the c2s stream."""
    liveness = ctx.config.liveness

    def feature(stream: ClientStream) -> Element | None:
        return element("sm", namespace=ns.SM)

    async def enable(stream: ClientStream, node: Element) -> None:
        if stream.jid is None or stream.sm is not None:
            stream.write_nonza(_failed("unexpected-request"))
            return
        resumable = node.get("resume") in ("true", "1")
        stream.sm = StreamManagement(resumable=resumable, max_unacked=liveness.max_unacked)
        attributes = ""
        if stream.sm.id is not None:
            ctx.resumable[stream.sm.id] = stream
            attributes = f" id='{stream.sm.id}' resume='true' max='{int(liveness.resume_timeout)}'"
        stream.write_nonza(f"<enabled xmlns='{ns.SM}'{attributes}/>".encode())

    async def request(stream: ClientStream, _node: Element) -> None:
        if stream.sm is None:
            stream.write_nonza(_failed("unexpected-request"))
            return
        stream.write_nonza(f"<a xmlns='{ns.SM}' h='{stream.sm.handled_in}'/>".encode())

    async def answer(stream: ClientStream, node: Element) -> None:
        if stream.sm is None:
            return
        if not stream.sm.acknowledged(_counter(node)):
            raise StreamError("undefined-condition", "Acknowledged more stanzas than were sent")

    async def resume(stream: ClientStream, node: Element) -> None:
        old = ctx.resumable.get(node.get("previd", ""))
        if stream.jid is not None or old is None or old.username != stream.username:
            stream.write_nonza(_failed("item-not-found"))
            return
        if not old.hibernating.is_set():
            # The server has not noticed yet that the old connection is gone.
            old.drop_connection()
            try:
                await asyncio.wait_for(old.hibernating.wait(), RESUME_SWITCH_SECONDS)
            except TimeoutError:
                stream.write_nonza(_failed("unexpected-request"))
                return
        assert old.sm is not None
        if not old.sm.acknowledged(_counter(node)):
            stream.write_nonza(_failed("unexpected-request"))
            return
        stream.write_nonza(
            f"<resumed xmlns='{ns.SM}' h='{old.sm.handled_in}' previd='{old.sm.id}'/>".encode()
        )
        old.take_over(stream)

    ctx.add_stream_feature("postauth", feature)
    for name, handler in (("enable", enable), ("r", request), ("a", answer), ("resume", resume)):
        ctx.nonzas[ns.qname(ns.SM, name)] = handler


def _failed(condition: str) -> bytes:
    return f"<failed xmlns='{ns.SM}'><{condition} xmlns='{ns.STANZA_ERRORS}'/></failed>".encode()


def _counter(node: Element) -> int:
    try:
        value = int(node.get("h", ""))
    except ValueError:
        raise StreamError("bad-format", "The 'h' attribute must be a number") from None
    if not 0 <= value < MODULO:
        raise StreamError("bad-format", "The 'h' attribute is out of range")
    return value
