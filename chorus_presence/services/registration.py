"""In-band registration (XEP-0077): new accounts when `[registration] open`, and for signed-in
users, password change and account removal.

Before authentication only the registration form and the registration itself are served, and
only on a stream secure enough to authenticate on.
"""

from __future__ import annotations

import logging

from chorus_presence.core import topics
from chorus_presence.core.bus import Bus
from chorus_presence.core.events import ANSWERED, IqRequest, StreamFeatures
from chorus_presence.services.accounts import (
    AccountExists,
    AccountService,
    InvalidPassword,
    InvalidUsername,
)
from chorus_presence.xmpp import namespaces as ns
from chorus_presence.xmpp.errors import StanzaError
from chorus_presence.xmpp.stanza import Element, child, element

log = logging.getLogger(__name__)

QUERY = ns.qname(ns.REGISTER, "query")


class RegistrationService:
    def __init__(self, accounts: AccountService, *, open_registration: bool) -> None:
        self._accounts = accounts
        self._open = open_registration

    def subscribe(self, bus: Bus) -> None:
        bus.on(topics.DISCO_FEATURES, lambda event: event.features.add(ns.REGISTER))
        bus.on(topics.FEATURES_PREAUTH, self._stream_feature)
        bus.on(topics.iq("get", "preauth", QUERY), self.form)
        bus.on(topics.iq("set", "preauth", QUERY), self.register)
        # Addressed to the server (or to no one): XEP-0077 section 3.2 and 3.3.
        bus.on(topics.iq("get", "server", QUERY), self.registered)
        bus.on(topics.iq("set", "server", QUERY), self.change)

    def _stream_feature(self, event: StreamFeatures) -> None:
        if self._open and event.stream.is_secure_enough():
            event.features.append(element("register", namespace=ns.REGISTER_FEATURE))

    def _check_allowed(self, request: IqRequest) -> None:
        if not self._open or not request.session.is_secure_enough():
            raise StanzaError("service-unavailable", "In-band registration is not offered")

    async def form(self, request: IqRequest) -> Element:
        self._check_allowed(request)
        query = element("query", namespace=ns.REGISTER)
        child(query, "instructions", text="Choose a username and password.")
        child(query, "username")
        child(query, "password")
        return request.reply(query)

    async def register(self, request: IqRequest) -> Element:
        self._check_allowed(request)
        username, password = _fields(request.payload)
        if username is None or password is None:
            raise StanzaError("not-acceptable", "A username and a password are required")
        try:
            await self._accounts.create(username, password)
        except AccountExists as exc:
            raise StanzaError("conflict", "That username is taken") from exc
        except (InvalidUsername, InvalidPassword) as exc:
            raise StanzaError("not-acceptable", str(exc)) from exc
        log.info("account %s registered in-band from %s", username, request.session.peer)
        return request.reply()

    async def registered(self, request: IqRequest) -> Element:
        query = element("query", namespace=ns.REGISTER)
        child(query, "registered")
        child(query, "username", text=request.username)
        return request.reply(query)

    async def change(self, request: IqRequest) -> Element | bool:
        username = request.username
        if request.payload.find(ns.qname(ns.REGISTER, "remove")) is not None:
            # XEP-0077 section 3.2: the answer goes out before the stream is closed.
            request.session.send(request.reply())
            await self._accounts.remove(username)
            log.info("account %s removed in-band", username)
            return ANSWERED
        given_username, password = _fields(request.payload)
        if password is None or (given_username is not None and given_username != username):
            raise StanzaError("bad-request", "Give your own username and a new password")
        try:
            await self._accounts.change_password(username, password)
        except InvalidPassword as exc:
            raise StanzaError("not-acceptable", str(exc)) from exc
        log.info("account %s changed its password in-band", username)
        return request.reply()


def _fields(query: Element) -> tuple[str | None, str | None]:
    username = query.findtext(ns.qname(ns.REGISTER, "username"))
    password = query.findtext(ns.qname(ns.REGISTER, "password"))
    return (username or None, password or None)
