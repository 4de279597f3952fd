"""Message delivery (RFC 6121 sections 5 and 8.5) and offline storage (XEP-0160).

Messages reach online users only. To a user with no available resource the sender gets
`service-unavailable`, unless `[messages] offline = "store"`, in which case the message waits
for the user's next initial presence and arrives with an XEP-0203 delay stamp.
"""

from __future__ import annotations

import logging

from lxml import etree

from chorus_presence.config import MessagesConfig
from chorus_presence.core import topics
from chorus_presence.core.bus import STOP, Bus
from chorus_presence.core.events import SessionEvent, StanzaEvent
from chorus_presence.core.sessions import SessionRegistry
from chorus_presence.services.accounts import AccountService
from chorus_presence.services.presence import PresenceService
from chorus_presence.storage.interfaces import OfflineMessageStore
from chorus_presence.xmpp import namespaces as ns
from chorus_presence.xmpp.errors import StanzaError
from chorus_presence.xmpp.jid import JID
from chorus_presence.xmpp.stanza import Element, child, error_reply, serialize

log = logging.getLogger(__name__)

MESSAGE_TYPES = frozenset({"chat", "error", "groupchat", "headline", "normal"})


class MessageService:
    def __init__(
        self,
        offline: OfflineMessageStore,
        sessions: SessionRegistry,
        presence: PresenceService,
        accounts: AccountService,
        config: MessagesConfig,
        *,
        domain: str,
    ) -> None:
        self.offline = offline
        self._sessions = sessions
        self._presence = presence
        self._accounts = accounts
        self._max_offline = config.max_offline
        self._domain = domain
        self.store_offline = config.offline == "store"

    def subscribe(self, bus: Bus) -> None:
        bus.on(topics.MESSAGE_IN_BARE, self.on_message)
        bus.on(topics.MESSAGE_IN_FULL, self.on_message)
        bus.on(topics.MESSAGE_IN_SERVER, self.to_server)
        bus.on(topics.SESSION_ENDED, self.session_ended)
        if self.store_offline:
            bus.on(topics.DISCO_FEATURES, lambda event: event.features.add(ns.OFFLINE))
            bus.on(topics.RESOURCE_AVAILABLE, self.deliver_offline)

    def to_server(self, event: StanzaEvent) -> object:
        if _message_type(event.stanza) in ("error", "headline"):
            return STOP
        raise StanzaError("service-unavailable", "The server does not take messages")

    async def on_message(self, event: StanzaEvent) -> object:
        stanza, target = event.stanza, event.target
        assert target is not None
        message_type = _message_type(stanza)
        if target.resource is not None:
            recipient = self._sessions.get(target)
            if recipient is not None:
                recipient.send(stanza)
                return STOP
            # RFC 6121 section 8.5.3.2.1: a full JID that is not online is treated as the bare
            # JID for normal and chat messages; other types are not redelivered.
            if message_type not in ("normal", "chat"):
                if message_type == "groupchat":
                    raise StanzaError("service-unavailable")
                return STOP
        await self._to_account(stanza, target.bare, message_type)
        return STOP

    async def _to_account(self, stanza: Element, bare: JID, message_type: str) -> None:
        """RFC 6121 section 8.5.2: to the account's available resources by priority."""
        resources = [
            (session, state)
            for session, state in self._presence.available(bare)
            if state.priority >= 0
        ]
        if message_type == "groupchat":
            raise StanzaError("service-unavailable")
        if resources:
            if message_type == "normal":
                top = max(state.priority for _, state in resources)
                resources = [(s, state) for s, state in resources if state.priority == top]
            data = serialize(stanza)
            for session, _ in resources:
                session.send_bytes(data)
            return
        if message_type in ("error", "headline"):
            return
        assert bare.local is not None
        if not self._sessions.is_online(bare) and not await self._accounts.exists(bare.local):
            raise StanzaError("service-unavailable")
        if not self.store_offline:
            raise StanzaError("service-unavailable", "The recipient is not logged in")
        stored = await self.offline.store(bare.local, serialize(stanza).decode(), self._max_offline)
        if not stored:
            raise StanzaError("service-unavailable", "The recipient's offline storage is full")

    async def deliver_offline(self, event: SessionEvent) -> None:
        """At initial presence with a non-negative priority, the stored messages (XEP-0160)."""
        session = event.session
        owner = session.jid.local
        assert owner is not None
        state = self._presence.available(session.jid.bare)
        mine = next((s for other, s in state if other is session), None)
        if mine is None or mine.priority < 0:
            return
        messages = await self.offline.pending(owner)
        if not messages:
            return
        for message in messages:
            stanza = etree.fromstring(message.stanza)
            delay = child(stanza, "delay", namespace=ns.DELAY)
            delay.set("from", self._domain)
            delay.set("stamp", message.stored_at.strftime("%Y-%m-%dT%H:%M:%SZ"))
            session.send(stanza)
        await self.offline.remove(owner, messages[-1].id)

    async def session_ended(self, event: SessionEvent) -> None:
        """Messages a session never acknowledged (XEP-0198) are stored or bounced, not lost."""
        session = event.session
        owner = session.jid.local
        assert owner is not None
        for data in session.undelivered():
            try:
                stanza = etree.fromstring(data)
            except etree.XMLSyntaxError:
                continue
            if etree.QName(stanza).localname != "message" or stanza.get("type") == "error":
                continue
            if self.store_offline:
                stored = await self.offline.store(owner, data.decode(), self._max_offline)
                if stored:
                    continue
            self._bounce(stanza)

    def _bounce(self, stanza: Element) -> None:
        sender = stanza.get("from")
        if not sender:
            return
        recipient = self._sessions.get(JID.parse(sender))
        if recipient is not None:
            error = StanzaError("service-unavailable", "The recipient's connection was lost")
            recipient.send(error_reply(stanza, error))


def _message_type(stanza: Element) -> str:
    message_type = stanza.get("type", "normal")
    # RFC 6121 section 5.2.2: an unknown type is treated as normal.
    return message_type if message_type in MESSAGE_TYPES else "normal"
