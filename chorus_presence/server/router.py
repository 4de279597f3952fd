"""The stanza router: the spine every stanza from a client passes through.

Services register handlers by stanza kind and payload namespace; the router decides, from the
stanza's address, which handler sees it (RFC 6120 section 10, RFC 6121 section 8), and turns a
`StanzaError` raised by a handler into the error reply. Nothing here knows any feature's rules.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

from chorus_presence.xmpp.errors import StanzaError
from chorus_presence.xmpp.jid import JID, JIDError
from chorus_presence.xmpp.stanza import Element, error_reply, iq_result, serialize

if TYPE_CHECKING:
    from chorus_presence.server.sessions import SessionRegistry

log = logging.getLogger(__name__)

IqType = Literal["get", "set"]
IqScope = Literal["host", "account", "preauth"]
IQ_TYPES = frozenset({"get", "set", "result", "error"})


class StanzaSink(Protocol):
    """What the router needs of a client session: who it is and a way to write to it."""

    jid: JID | None

    def send(self, stanza: Element) -> None: ...

    def send_bytes(self, data: bytes) -> None: ...

    def send_presence(self, data: bytes, sender: str) -> None: ...


@dataclass(slots=True)
class IqRequest:
    """An IQ get or set addressed to the server or to an account, as a handler sees it."""

    session: StanzaSink
    stanza: Element
    payload: Element
    sender: JID | None
    target: JID | None

    def reply(self, payload: Element | None = None) -> Element:
        return iq_result(self.stanza, payload)


IqHandler = Callable[[IqRequest], Awaitable[Element | None]]
StanzaHandler = Callable[[StanzaSink, Element, JID | None], Awaitable[None]]
IqResponseHandler = Callable[[StanzaSink, Element], Awaitable[bool]]


class Router:
    """Dispatches stanzas from sessions to the handlers services registered."""

    def __init__(self, domain: str, sessions: SessionRegistry) -> None:
        self.domain = domain
        self.host_jid = JID(None, domain, None)
        self.sessions = sessions
        self._iq: dict[tuple[IqScope, str, str], IqHandler] = {}
        self._message: StanzaHandler | None = None
        self._presence: dict[str | None, StanzaHandler] = {}
        self._iq_response: list[IqResponseHandler] = []
        # Whether the account `owner` blocks `other` (XEP-0191); set by the blocking service.
        self.blocked: Callable[[JID, JID], bool] = _never_blocked

    def on_iq(self, scope: IqScope, iq_type: IqType, payload: str, handler: IqHandler) -> None:
        """`payload` is the Clark name of the IQ's child element, e.g. '{urn:xmpp:ping}ping'."""
        key = (scope, iq_type, payload)
        if key in self._iq:
            raise ValueError(f"a handler for {key} is already registered")
        self._iq[key] = handler

    def on_message(self, handler: StanzaHandler) -> None:
        self._message = handler

    def on_presence(self, types: tuple[str | None, ...], handler: StanzaHandler) -> None:
        """Presence by its `type` attribute; None is available presence (no type)."""
        for presence_type in types:
            if presence_type in self._presence:
                raise ValueError(f"presence type {presence_type!r} already has a handler")
            self._presence[presence_type] = handler

    def on_iq_response(self, handler: IqResponseHandler) -> None:
        """Results and errors addressed to the server; a handler returns True when it was its."""
        self._iq_response.append(handler)

    def parse_to(self, stanza: Element) -> JID | None:
        to = stanza.get("to")
        if to is None:
            return None
        try:
            return JID.parse(to)
        except JIDError as exc:
            raise StanzaError("jid-malformed", "The 'to' address is not a valid JID") from exc

    async def route(self, session: StanzaSink, stanza: Element, kind: str) -> None:
        """Route one stanza from a bound session; its `from` has already been stamped."""
        try:
            target = self.parse_to(stanza)
            if kind == "iq":
                await self._route_iq(session, stanza, target)
            elif kind == "message":
                if self._message is None:
                    raise StanzaError("service-unavailable")
                await self._message(session, stanza, target)
            else:
                handler = self._presence.get(stanza.get("type"))
                if handler is None:
                    raise StanzaError("bad-request", "Unknown presence type")
                await handler(session, stanza, target)
        except StanzaError as error:
            self.send_error(session, stanza, error)

    async def route_preauth(self, session: StanzaSink, stanza: Element) -> bool:
        """An IQ before authentication; False when no pre-auth handler takes it."""
        try:
            target = self.parse_to(stanza)
            if target is not None and target != self.host_jid:
                return False
            iq_type = _validated_iq_type(stanza)
            if iq_type not in ("get", "set"):
                return False
            payload = _single_payload(stanza)
            handler = self._iq.get(("preauth", iq_type, payload.tag))
            if handler is None:
                return False
            await self._answer(handler, IqRequest(session, stanza, payload, None, None))
        except StanzaError as error:
            self.send_error(session, stanza, error)
        return True

    async def _route_iq(self, session: StanzaSink, stanza: Element, target: JID | None) -> None:
        iq_type = _validated_iq_type(stanza)
        if iq_type in ("result", "error"):
            await self._route_iq_response(session, stanza, target)
            return
        payload = _single_payload(stanza)
        if target is not None and target.domain != self.domain:
            raise StanzaError("remote-server-not-found", "Only local addresses are served")
        if target is not None and target.resource is not None:
            await self._forward_iq(stanza, target)
            return
        sender = session.jid
        request = IqRequest(session, stanza, payload, sender, target)
        handler = None
        if target is None or target.local is not None:
            handler = self._iq.get(("account", iq_type, payload.tag))
        if handler is None and (target is None or target.local is None):
            handler = self._iq.get(("host", iq_type, payload.tag))
        if handler is None:
            raise StanzaError("service-unavailable")
        await self._answer(handler, request)

    async def _answer(self, handler: IqHandler, request: IqRequest) -> None:
        reply = await handler(request)
        if reply is not None:
            request.session.send(reply)

    async def _forward_iq(self, stanza: Element, target: JID) -> None:
        recipient = self.sessions.get(target)
        sender = JID.parse(stanza.get("from"))
        if recipient is None or self.blocked_either(sender.bare, target.bare):
            raise StanzaError("service-unavailable")
        recipient.send(stanza)

    def blocked_either(self, first: JID, second: JID) -> bool:
        """Whether either bare JID blocks the other."""
        return self.blocked(first, second) or self.blocked(second, first)

    async def _route_iq_response(
        self, session: StanzaSink, stanza: Element, target: JID | None
    ) -> None:
        if target is not None and target.resource is not None and target.local is not None:
            recipient = self.sessions.get(target)
            if recipient is not None:
                recipient.send(stanza)
            return
        for handler in self._iq_response:
            if await handler(session, stanza):
                return

    def send_error(self, session: StanzaSink, stanza: Element, error: StanzaError) -> None:
        """Answer a stanza with an error, never an error with an error (RFC 6120 section 8.3)."""
        if stanza.get("type") == "error":
            return
        reply_from = stanza.get("to")
        if reply_from is not None and error.condition == "jid-malformed":
            # RFC 6120 section 8.3.1: an error never carries a malformed address back.
            reply_from = self.domain
        if reply_from is None:
            reply_from = str(session.jid.bare) if session.jid else self.domain
        session.send_bytes(serialize(error_reply(stanza, error, from_=reply_from)))


def _never_blocked(_owner: JID, _other: JID) -> bool:
    return False


def _validated_iq_type(stanza: Element) -> str:
    iq_type = stanza.get("type")
    if iq_type not in IQ_TYPES:
        raise StanzaError("bad-request", "An IQ needs a type of get, set, result or error")
    if not stanza.get("id"):
        raise StanzaError("bad-request", "An IQ needs an id")
    return iq_type


def _single_payload(stanza: Element) -> Element:
    children = [node for node in stanza if isinstance(node.tag, str)]
    if len(children) != 1:
        raise StanzaError("bad-request", "An IQ get or set carries exactly one child element")
    return children[0]
