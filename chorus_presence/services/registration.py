"""In-band registration (XEP-0077): new accounts when `[registration] open`, and for signed-in
users, password change and account removal.

Before authentication only the registration form and the registration itself are served, and
only on a stream secure enough to authenticate on. Registration is refused for the names of
admins and reserved names (`[registration] reserved`), however they are spelt, and limited per
client address (`per_address_per_hour`, but for `exempt_addresses`). The admin command line
goes through AccountService directly and may create any name.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable

from chorus_presence.config import RegistrationConfig
from chorus_presence.core import topics
from chorus_presence.core.bus import Bus
from chorus_presence.core.events import ANSWERED, IqRequest, StreamFeatures
from chorus_presence.core.limits import RegistrationLimiter
from chorus_presence.services.accounts import (
    AccountExists,
    AccountService,
    InvalidPassword,
    InvalidUsername,
)
from chorus_presence.xmpp import namespaces as ns
from chorus_presence.xmpp.errors import StanzaError
from chorus_presence.xmpp.jid import JID, JIDError, nodeprep
from chorus_presence.xmpp.stanza import Element, child, element

log = logging.getLogger(__name__)

QUERY = ns.qname(ns.REGISTER, "query")


class RegistrationService:
    def __init__(
        self,
        accounts: AccountService,
        config: RegistrationConfig,
        *,
        admins: Iterable[str] = (),
        domain: str,
        limiter: RegistrationLimiter | None = None,
    ) -> None:
        self._accounts = accounts
        self._open = config.open
        self._limiter = limiter or RegistrationLimiter(config.per_address_per_hour)
        self._exempt = config.exempt_addresses
        self._reserved = frozenset(config.reserved) | _admin_names(admins, domain)

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
        peer = request.session.peer
        # Counted before anything else, whatever the outcome: each attempt may cost a key
        # derivation, and a name refused as taken tells which names exist.
        if not self._within_limit(peer):
            log.warning("in-band registration from %s refused: over the hourly limit", peer)
            raise StanzaError(
                "policy-violation",
                "Too many registrations from your address; try again later",
                error_type="wait",
            )
        username, password = _fields(request.payload)
        if username is None or password is None:
            raise StanzaError("not-acceptable", "A username and a password are required")
        if self._is_reserved(username):
            # conflict, as for a name already taken (XEP-0077 section 3.1): the client asks for
            # another name, and the answer is the same whether that account exists or not.
            log.info("in-band registration of reserved name %r from %s refused", username, peer)
            raise StanzaError("conflict", "That username is taken")
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
            # XEP-0077 section 3.2: the answer goes out before the stream is closed, and only
            # once the removal is committed, so a crash cannot undo an acknowledged removal.
            # `committed` runs between the two, before account/removed closes the stream.
            reply = request.reply()
            if await self._accounts.remove(username, committed=lambda: request.session.send(reply)):
                log.info("account %s removed in-band", username)
            else:
                # Removed a moment ago by another path: gone, as the client asked.
                request.session.send(reply)
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

    def _within_limit(self, peer: str) -> bool:
        address = _client_address(peer)
        if address is not None and any(address in network for network in self._exempt):
            return True
        # A peer that is no IP address (another transport) is limited under its own name.
        return self._limiter.allow(str(address) if address is not None else peer)

    def _is_reserved(self, username: str) -> bool:
        try:
            return nodeprep(username) in self._reserved
        except JIDError:
            # Not a username at all; account creation refuses it with not-acceptable.
            return False


def _admin_names(admins: Iterable[str], domain: str) -> frozenset[str]:
    """The localparts of the admins on this domain; an admin elsewhere reserves nothing here."""
    names = set()
    for admin in admins:
        jid = JID.parse(admin)
        if jid.domain == domain and jid.local is not None:
            names.add(jid.local)
    return frozenset(names)


def _client_address(peer: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The IP address in a stream's `peer` ("host:port"), IPv4-mapped IPv6 as IPv4."""
    host, colon, port = peer.rpartition(":")
    text = host if colon and port.isdigit() else peer
    try:
        address = ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _fields(query: Element) -> tuple[str | None, str | None]:
    username = query.findtext(ns.qname(ns.REGISTER, "username"))
    password = query.findtext(ns.qname(ns.REGISTER, "password"))
    return (username or None, password or None)
