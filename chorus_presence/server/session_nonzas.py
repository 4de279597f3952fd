"""The stream-level elements of a bound session: stream management (XEP-0198: enable, r, a,
resume) and client state indication (XEP-0352: active, inactive), and their stream features.

Both act on the client stream itself (its counters, its connection, what it holds back), so
they live beside it in the stream layer and take the stream from the `nonza/*` events.
"""

from __future__ import annotations

import asyncio

from chorus_presence.config import LivenessConfig
from chorus_presence.core import topics
from chorus_presence.core.bus import STOP, Bus
from chorus_presence.core.events import Nonza, SessionEvent, StreamFeatures
from chorus_presence.server.c2s import ClientStream
from chorus_presence.server.stream_management import (
    REQUEST,
    StreamManagement,
    counter,
    failed,
)
from chorus_presence.xmpp import namespaces as ns
from chorus_presence.xmpp.errors import StreamError
from chorus_presence.xmpp.stanza import element

# How long a resuming client waits for the server to let go of the old connection.
RESUME_SWITCH_SECONDS = 5.0


class StreamManagementService:
    """XEP-0198 on every stream, and the sessions that may be resumed, by their id."""

    def __init__(self, liveness: LivenessConfig) -> None:
        self._liveness = liveness
        self.resumable: dict[str, ClientStream] = {}

    def subscribe(self, bus: Bus) -> None:
        bus.on(topics.FEATURES_POSTAUTH, _feature("sm", ns.SM))
        for name, handler in (
            ("enable", self.enable),
            ("r", self.request),
            ("a", self.answer),
            ("resume", self.resume),
        ):
            bus.on(topics.nonza(ns.qname(ns.SM, name)), handler)
        bus.on(topics.SESSION_ENDED, self.session_ended)
        # After presence and the rest have let go of every session.
        bus.on(topics.SERVER_STOPPING, self.server_stopping, priority=-100)

    async def enable(self, nonza: Nonza) -> object:
        stream = _stream(nonza)
        if not stream.is_bound or stream.sm is not None:
            stream.write_nonza(failed("unexpected-request"))
            return STOP
        resumable = nonza.element.get("resume") in ("true", "1")
        stream.sm = StreamManagement(resumable=resumable, max_unacked=self._liveness.max_unacked)
        attributes = ""
        if stream.sm.id is not None:
            self.resumable[stream.sm.id] = stream
            timeout = int(self._liveness.resume_timeout)
            attributes = f" id='{stream.sm.id}' resume='true' max='{timeout}'"
        stream.write_nonza(f"<enabled xmlns='{ns.SM}'{attributes}/>".encode())
        return STOP

    async def request(self, nonza: Nonza) -> object:
        stream = _stream(nonza)
        if stream.sm is None:
            stream.write_nonza(failed("unexpected-request"))
        else:
            stream.write_nonza(f"<a xmlns='{ns.SM}' h='{stream.sm.handled_in}'/>".encode())
        return STOP

    async def answer(self, nonza: Nonza) -> object:
        stream = _stream(nonza)
        if stream.sm is not None and not stream.sm.acknowledged(counter(nonza.element)):
            raise StreamError("undefined-condition", "Acknowledged more stanzas than were sent")
        return STOP

    async def resume(self, nonza: Nonza) -> object:
        stream = _stream(nonza)
        old = self.resumable.get(nonza.element.get("previd", ""))
        if stream.is_bound or old is None or old.username != stream.username:
            stream.write_nonza(failed("item-not-found"))
            return STOP
        if not old.is_hibernating:
            # The server has not noticed yet that the old connection is gone.
            old.drop_connection()
            try:
                await asyncio.wait_for(old.hibernating.wait(), RESUME_SWITCH_SECONDS)
            except TimeoutError:
                stream.write_nonza(failed("unexpected-request"))
                return STOP
        assert old.sm is not None
        if not old.sm.acknowledged(counter(nonza.element)):
            stream.write_nonza(failed("unexpected-request"))
            return STOP
        stream.write_nonza(
            f"<resumed xmlns='{ns.SM}' h='{old.sm.handled_in}' previd='{old.sm.id}'/>".encode()
        )
        old.take_over(stream)
        if old.sm.unacked_count:
            # What was just sent again is still unacknowledged, perhaps near max_unacked: ask
            # now rather than let the next stanzas cut the session off again.
            old.write_nonza(REQUEST)
            old.sm.requested()
        return STOP

    def session_ended(self, event: SessionEvent) -> None:
        session = event.session
        sm_id = session.sm.id if isinstance(session, ClientStream) and session.sm else None
        if sm_id is not None and self.resumable.get(sm_id) is session:
            del self.resumable[sm_id]

    def server_stopping(self, _event: object) -> None:
        for hibernating in list(self.resumable.values()):
            hibernating.close()


class ClientStateService:
    """XEP-0352: while a client says it is inactive, presence for it waits, condensed."""

    def subscribe(self, bus: Bus) -> None:
        bus.on(topics.FEATURES_POSTAUTH, _feature("csi", ns.CSI))
        bus.on(topics.nonza(ns.qname(ns.CSI, "active")), self.active)
        bus.on(topics.nonza(ns.qname(ns.CSI, "inactive")), self.inactive)

    def active(self, nonza: Nonza) -> object:
        stream = _stream(nonza)
        stream.client_state.active = True
        for data in stream.client_state.release():
            stream.send_bytes(data)
        return STOP

    def inactive(self, nonza: Nonza) -> object:
        _stream(nonza).client_state.active = False
        return STOP


def _stream(nonza: Nonza) -> ClientStream:
    stream = nonza.stream
    assert isinstance(stream, ClientStream)
    return stream


def _feature(name: str, namespace: str):
    def offer(event: StreamFeatures) -> None:
        event.features.append(element(name, namespace=namespace))

    return offer
