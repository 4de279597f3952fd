"""The stanza router: the spine every stanza from a client passes through.

It knows addressing (RFC 6120 section 10, RFC 6121 section 8) and nothing of any feature: it
turns a stanza into its events and fires them on the bus, first `<kind>/out` (from a local
session), then the event for where the stanza is addressed. Filters (blocking, say) stop a
stanza on those events; the services behind them answer it. A `StanzaError` raised on the way
becomes the error reply; any other exception is logged once, with its traceback, and answered
with internal-server-error, so one faulty handler never ends the sender's stream. Two failures
are no fault of a handler's and get no traceback: a write the database cannot take now (the
disk is full, the database locked) is answered with resource-constraint, of type wait; and a
stanza of an account removed while it was handled, whose writes fail as the rows they name are
gone, with not-authorized.
"""

from __future__ import annotations

import logging

from chorus_presence.core import topics
from chorus_presence.core.bus import Bus
from chorus_presence.core.events import IqRequest, StanzaEvent
from chorus_presence.core.session import Session, Stream
from chorus_presence.core.sessions import SessionRegistry
from chorus_presence.storage.errors import StorageUnavailable
from chorus_presence.xmpp.errors import StanzaError
from chorus_presence.xmpp.jid import JID, JIDError
from chorus_presence.xmpp.stanza import Element, error_reply, serialize

log = logging.getLogger(__name__)

IQ_TYPES = frozenset({"get", "set", "result", "error"})
PRESENCE_TYPES = frozenset(
    {None, "unavailable", "probe", "subscribe", "subscribed", "unsubscribe", "unsubscribed"}
    | {"error"}
)


class StanzaRouter:
    def __init__(self, domain: str, bus: Bus, sessions: SessionRegistry) -> None:
        self.domain = domain
        self.host_jid = JID(None, domain, None)
        self._bus = bus
        self._sessions = sessions

    async def route(self, session: Session, stanza: Element, kind: str) -> None:
        """Route one stanza from a bound session; its `from` has already been stamped."""
        try:
            target = self._parse_to(stanza)
            if kind == "iq":
                await self._route_iq(session, stanza, target)
            elif kind == "message":
                await self._route_message(StanzaEvent(session, stanza, target))
            else:
                await self._route_presence(StanzaEvent(session, stanza, target))
        except StanzaError as error:
            self.send_error(session, stanza, error, on_behalf_of=session.jid.bare)
        except StorageUnavailable as exc:
            log.error("%s from %s not written: %s", kind, session.jid, exc)
            # Of type wait: once the disk is freed or the lock released, a retry may succeed.
            failure = StanzaError("resource-constraint", "The server cannot store that now")
            self.send_error(session, stanza, failure, on_behalf_of=session.jid.bare)
        except Exception:
            if self._sessions.is_retired(session):
                log.info("%s from %s dropped: its account was removed", kind, session.jid)
                failure = StanzaError("not-authorized", "The account was removed")
            else:
                log.exception("%s from %s failed", kind, session.jid)
                failure = StanzaError("internal-server-error")
            self.send_error(session, stanza, failure, on_behalf_of=session.jid.bare)

    async def route_preauth(self, stream: Stream, stanza: Element) -> bool:
        """An IQ before authentication; False when no pre-auth handler takes it."""
        try:
            target = self._parse_to(stanza)
            if target is not None and target != self.host_jid:
                return False
            iq_type = _request_type(_validated_iq_type(stanza))
            if iq_type is None:
                return False
            payload = _single_payload(stanza)
            topic = topics.iq(iq_type, "preauth", _tag(payload))
            if not self._bus.has(topic):
                return False
            await self._answer(topic, IqRequest(stream, stanza, payload, None, None))
        except StanzaError as error:
            self.send_error(stream, stanza, error)
        except StorageUnavailable as exc:
            log.error("pre-authentication IQ from %s not written: %s", stream.peer, exc)
            failure = StanzaError("resource-constraint", "The server cannot store that now")
            self.send_error(stream, stanza, failure)
        except Exception:
            log.exception("pre-authentication IQ from %s failed", stream.peer)
            self.send_error(stream, stanza, StanzaError("internal-server-error"))
        return True

    # Messages and presence

    async def _route_message(self, event: StanzaEvent) -> None:
        if event.target is None:
            event.target = event.sender.bare
        target = event.target
        if target.domain != self.domain:
            raise StanzaError("remote-server-not-found", "Only local addresses are served")
        if await self._bus.fire(topics.MESSAGE_OUT, event) is not None:
            return
        if target.local is None:
            topic = topics.MESSAGE_IN_SERVER
        elif target.resource is None:
            topic = topics.MESSAGE_IN_BARE
        else:
            topic = topics.MESSAGE_IN_FULL
        if await self._bus.fire(topic, event) is None:
            raise StanzaError("service-unavailable")

    async def _route_presence(self, event: StanzaEvent) -> None:
        if event.stanza.get("type") not in PRESENCE_TYPES:
            raise StanzaError("bad-request", "Unknown presence type")
        if await self._bus.fire(topics.PRESENCE_OUT, event) is not None:
            return
        target = event.target
        if target is None or target.local is None or target.domain != self.domain:
            return
        topic = topics.PRESENCE_IN_BARE if target.resource is None else topics.PRESENCE_IN_FULL
        await self._bus.fire(topic, event)

    # IQs

    async def _route_iq(self, session: Session, stanza: Element, target: JID | None) -> None:
        iq_type = _request_type(_validated_iq_type(stanza))
        event = StanzaEvent(session, stanza, target)
        if iq_type is None:
            await self._route_iq_response(event)
            return
        payload = _single_payload(stanza)
        if target is not None and target.domain != self.domain:
            raise StanzaError("remote-server-not-found", "Only local addresses are served")
        if await self._bus.fire(topics.IQ_OUT, event) is not None:
            return
        if target is not None and target.resource is not None:
            await self._forward_iq(event, target)
            return
        request = IqRequest(session, stanza, payload, session.jid, target)
        if target is None or target.local is not None:
            account_topic = topics.iq(iq_type, "bare", _tag(payload))
            if self._bus.has(account_topic):
                if target is not None and target.bare != session.jid.bare:
                    # Filters on an account's behalf; an IQ nobody answers is refused above
                    # them, so a refusal here tells no more than a stranger learns.
                    await self._bus.fire(topics.IQ_IN_BARE, event)
                await self._answer(account_topic, request)
                return
        if target is None or target.local is None:
            server_topic = topics.iq(iq_type, "server", _tag(payload))
            if self._bus.has(server_topic):
                await self._answer(server_topic, request)
                return
        raise StanzaError("service-unavailable")

    async def _answer(self, topic: str, request: IqRequest) -> None:
        reply = await self._bus.fire(topic, request)
        if reply is None:
            raise StanzaError("service-unavailable")
        if not isinstance(reply, bool):
            request.session.send(reply)

    async def _forward_iq(self, event: StanzaEvent, target: JID) -> None:
        if await self._bus.fire(topics.IQ_IN_FULL, event) is not None:
            return
        recipient = self._sessions.get(target)
        if recipient is None:
            raise StanzaError("service-unavailable")
        recipient.send(event.stanza)

    async def _route_iq_response(self, event: StanzaEvent) -> None:
        """A result or error: through the filters both ways, then to the session addressed.

        A filter stops a response rather than refusing it: an error is never answered with an
        error, and a result gets no reply (RFC 6120 section 8.2.3)."""
        if await self._bus.fire(topics.IQ_OUT, event) is not None:
            return
        target = event.target
        # Responses to the server answer its own pings, which need nothing more than arriving.
        if target is None or target.resource is None or target.local is None:
            return
        if target.domain != self.domain:
            return
        if await self._bus.fire(topics.IQ_IN_FULL, event) is not None:
            return
        recipient = self._sessions.get(target)
        if recipient is not None:
            recipient.send(event.stanza)

    # Errors

    def send_error(
        self,
        stream: Stream,
        stanza: Element,
        error: StanzaError,
        *,
        on_behalf_of: JID | None = None,
    ) -> None:
        """Answer a stanza with an error, never an error with an error (RFC 6120 section 8.3).

        A stanza without 'to' was for the sender's own account once bound (`on_behalf_of`),
        for the server before."""
        if stanza.get("type") == "error":
            return
        reply_from = stanza.get("to")
        if reply_from is not None and error.condition == "jid-malformed":
            # RFC 6120 section 8.3.1: an error never carries a malformed address back.
            reply_from = self.domain
        if reply_from is None:
            reply_from = str(on_behalf_of) if on_behalf_of is not None else self.domain
        stream.send_bytes(serialize(error_reply(stanza, error, from_=reply_from)))

    def _parse_to(self, stanza: Element) -> JID | None:
        to = stanza.get("to")
        if to is None:
            return None
        try:
            return JID.parse(to)
        except JIDError as exc:
            raise StanzaError("jid-malformed", "The 'to' address is not a valid JID") from exc


def _validated_iq_type(stanza: Element) -> str:
    iq_type = stanza.get("type")
    if iq_type not in IQ_TYPES:
        raise StanzaError("bad-request", "An IQ needs a type of get, set, result or error")
    if not stanza.get("id"):
        raise StanzaError("bad-request", "An IQ needs an id")
    return iq_type


def _tag(node: Element) -> str:
    """The Clark name of an element parsed from the stream (always text, never a QName)."""
    tag = node.tag
    assert isinstance(tag, str)
    return tag


def _request_type(iq_type: str) -> topics.IqType | None:
    """'get' or 'set'; None for a response."""
    if iq_type == "get":
        return "get"
    if iq_type == "set":
        return "set"
    return None


def _single_payload(stanza: Element) -> Element:
    children = [node for node in stanza if isinstance(node.tag, str)]
    if len(children) != 1:
        raise StanzaError("bad-request", "An IQ get or set carries exactly one child element")
    return children[0]
