"""In-band registration (XEP-0077): new accounts when `[registration] open`, and for signed-in
users, password change and account removal.

Before authentication only the registration form and the registration itself are served, and
only on a stream secure enough to authenticate on.
"""

from __future__ import annotations

import logging

from chorus_presence.server.context import ServerContext
from chorus_presence.server.router import IqRequest
from chorus_presence.services.accounts import (
    AccountExists,
    InvalidPassword,
    InvalidUsername,
)
from chorus_presence.xmpp import namespaces as ns
from chorus_presence.xmpp.errors import StanzaError
from chorus_presence.xmpp.stanza import Element, child, element

log = logging.getLogger(__name__)

QUERY = ns.qname(ns.REGISTER, "query")


def setup(ctx: ServerContext) -> None:
    ctx.disco_features.add(ns.REGISTER)
    registration_open = ctx.config.registration.open

    def stream_feature(stream) -> Element | None:
        if registration_open and stream.is_secure_enough():
            return element("register", namespace=ns.REGISTER_FEATURE)
        return None

    ctx.add_stream_feature("preauth", stream_feature)

    def check_allowed(request: IqRequest) -> None:
        if not registration_open or not request.session.is_secure_enough():
            raise StanzaError("service-unavailable", "In-band registration is not offered")

    async def form(request: IqRequest) -> Element:
        check_allowed(request)
        query = element("query", namespace=ns.REGISTER)
        child(query, "instructions", text="Choose a username and password.")
        child(query, "username")
        child(query, "password")
        return request.reply(query)

    async def register(request: IqRequest) -> Element:
        check_allowed(request)
        username, password = _fields(request.payload)
        if username is None or password is None:
            raise StanzaError("not-acceptable", "A username and a password are required")
        try:
            await ctx.accounts.create(username, password)
        except AccountExists as exc:
            raise StanzaError("conflict", "That username is taken") from exc
        except (InvalidUsername, InvalidPassword) as exc:
            raise StanzaError("not-acceptable", str(exc)) from exc
        log.info("account %s registered in-band from %s", username, request.session.peer)
        return request.reply()

    async def registered(request: IqRequest) -> Element:
        query = element("query", namespace=ns.REGISTER)
        child(query, "registered")
        child(query, "username", text=request.session.username)
        return request.reply(query)

    async def change(request: IqRequest) -> Element | None:
        username = request.session.username
        if request.payload.find(ns.qname(ns.REGISTER, "remove")) is not None:
            request.session.send(request.reply())
            await ctx.remove_account(username)
            log.info("account %s removed in-band", username)
            return None
        given_username, password = _fields(request.payload)
        if password is None or (given_username is not None and given_username != username):
            raise StanzaError("bad-request", "Give your own username and a new password")
        try:
            await ctx.accounts.change_password(username, password)
        except InvalidPassword as exc:
            raise StanzaError("not-acceptable", str(exc)) from exc
        log.info("account %s changed its password in-band", username)
        return request.reply()

    ctx.router.on_iq("preauth", "get", QUERY, form)
    ctx.router.on_iq("preauth", "set", QUERY, register)
    # Addressed to the server (or to no one): XEP-0077 section 3.2 and 3.3.
    ctx.router.on_iq("host", "get", QUERY, registered)
    ctx.router.on_iq("host", "set", QUERY, change)


def _fields(query: Element) -> tuple[str | None, str | None]:
    username = query.findtext(ns.qname(ns.REGISTER, "username"))
    password = query.findtext(ns.qname(ns.REGISTER, "password"))
    return (username or None, password or None)
