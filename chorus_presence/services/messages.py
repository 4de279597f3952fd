"""Message routing (RFC 6121 sections 5 and 8.5) and offline storage (XEP-0160).

Messages reach online users only. To a user with no available resource the sender gets
`service-unavailable`, unless `[messages] offline = "store"`, in which case the message waits
for the user's next initial presence and arrives with an XEP-0203 delay stamp.
"""

from __future__ import annotations

import logging

from lxml import etree

from chorus_presence.server.context import ServerContext
from chorus_presence.storage.offline import OfflineMessageRepository
from chorus_presence.xmpp import namespaces as ns
from chorus_presence.xmpp.errors import StanzaError
from chorus_presence.xmpp.jid import JID
from chorus_presence.xmpp.stanza import Element, child, error_reply, serialize

log = logging.getLogger(__name__)

MESSAGE_TYPES = frozenset({"chat", "error", "groupchat", "headline", "normal"})


class MessageService:
    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx
        self.store_offline = ctx.config.messages.offline == "store"
        self.offline = OfflineMessageRepository(ctx.database)

    async def on_message(self, session, stanza: Element, target: JID | None) -> None:
        message_type = stanza.get("type", "normal")
        if message_type not in MESSAGE_TYPES:
            # RFC 6121 section 5.2.2: an unknown type is treated as normal.
            message_type = "normal"
        if target is None:
            target = session.jid.bare
        if target.domain != self.ctx.domain:
            raise StanzaError("remote-server-not-found", "Only local addresses are served")
        if target.local is None:
            if message_type in ("error", "headline"):
                return
            raise StanzaError("service-unavailable", "The server does not take messages")
        self._check_blocks(session.jid.bare, target.bare)
        if target.resource is not None:
            recipient = self.ctx.sessions.get(target)
            if recipient is not None:
                recipient.send(stanza)
                return
            # RFC 6121 section 8.5.3.2.1: a full JID that is not online is treated as the bare
            # JID for normal and chat messages; other types are not redelivered.
            if message_type not in ("normal", "chat"):
                if message_type == "groupchat":
                    raise StanzaError("service-unavailable")
                return
        await self._to_account(stanza, target.bare, message_type)

    def _check_blocks(self, sender: JID, recipient: JID) -> None:
        """XEP-0191 section 3.5: nothing passes a block, whichever side set it."""
        if self.ctx.router.blocked(sender, recipient):
            raise StanzaError(
                "not-acceptable",
                "You have blocked this contact",
                app_condition=(ns.BLOCKING_ERRORS, "blocked"),
            )
        if self.ctx.router.blocked(recipient, sender):
            raise StanzaError("service-unavailable")

    async def _to_account(self, stanza: Element, bare: JID, message_type: str) -> None:
        """RFC 6121 section 8.5.2: to the account's available resources by priority."""
        resources = [
            (session, state)
            for session, state in self.ctx.presence.available(bare)
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
        if not self.ctx.sessions.is_online(bare) and not await self.ctx.accounts.exists(bare.local):
            raise StanzaError("service-unavailable")
        if not self.store_offline:
            raise StanzaError("service-unavailable", "The recipient is not logged in")
        stored = await self.offline.store(
            bare.local, serialize(stanza).decode(), self.ctx.config.messages.max_offline
        )
        if not stored:
            raise StanzaError("service-unavailable", "The recipient's offline storage is full")

    async def deliver_offline(self, session) -> None:
        """At initial presence with a non-negative priority, the stored messages (XEP-0160)."""
        state = self.ctx.presence.available(session.jid.bare)
        mine = next((s for other, s in state if other is session), None)
        if mine is None or mine.priority < 0:
            return
        messages = await self.offline.pending(session.jid.local)
        if not messages:
            return
        for message in messages:
            stanza = etree.fromstring(message.stanza)
            delay = child(stanza, "delay", namespace=ns.DELAY)
            delay.set("from", self.ctx.domain)
            delay.set("stamp", message.stored_at.strftime("%Y-%m-%dT%H:%M:%SZ"))
            session.send(stanza)
        await self.offline.remove(session.jid.local, messages[-1].id)

    async def session_ended(self, session) -> None:
        """Messages a session never acknowledged (XEP-0198) are stored or bounced, not lost."""
        for data in session.undelivered():
            try:
                stanza = etree.fromstring(data)
            except etree.XMLSyntaxError:
                continue
            if etree.QName(stanza).localname != "message" or stanza.get("type") == "error":
                continue
            if self.store_offline and session.jid is not None:
                stored = await self.offline.store(
                    session.jid.local, data.decode(), self.ctx.config.messages.max_offline
                )
                if stored:
                    continue
            self._bounce(stanza)

    def _bounce(self, stanza: Element) -> None:
        sender = stanza.get("from")
        if not sender:
            return
        recipient = self.ctx.sessions.get(JID.parse(sender))
        if recipient is not None:
            error = StanzaError("service-unavailable", "The recipient's connection was lost")
            recipient.send(error_reply(stanza, error))


def setup(ctx: ServerContext) -> MessageService:
    service = MessageService(ctx)
    ctx.router.on_message(service.on_message)
    ctx.on_session_end.append(service.session_ended)
    if service.store_offline:
        ctx.disco_features.add(ns.OFFLINE)
        ctx.presence.on_initial_presence.append(service.deliver_offline)
    return service
