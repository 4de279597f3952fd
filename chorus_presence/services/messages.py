"""Message delivery (RFC 6121 sections 5 and 8.5) and offline storage (XEP-0160).

Messages reach online users. What a sender hears when the user has no available resource
depends on whether the sender may see the user's presence (the user's roster has them with
subscription `from` or `both`, the rule of last activity): such a sender gets
`service-unavailable` saying the user is not logged in (or that offline storage is full).
Anyone else gets no answer at all, whether the user is offline or the account does not exist,
so a bounce never tells a stranger what presence would not. With `[messages] offline =
"store"` the message waits for the user's next initial presence, within a per-user quota of
messages and bytes, unless the sender is on the user's presence blocked list, and arrives with
an XEP-0203 delay stamp. Senders on the XEP-0191 block list never get here: the block filter
refuses them first.

A user who appears offline gets messages live, and the sender gets what the sender would get
were the user logged out (`_as_absent`): nothing, or the same bounce, the message delivered all
the same; nor does a lost connection bounce what the user never acknowledged.
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
from chorus_presence.services.rosters import RosterService
from chorus_presence.storage.interfaces import OfflineMessageStore, PresenceBlockStore
from chorus_presence.storage.offline import StoredMessage
from chorus_presence.xmpp import namespaces as ns
from chorus_presence.xmpp.errors import StanzaError
from chorus_presence.xmpp.jid import JID, JIDError
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
        rosters: RosterService,
        presence_blocks: PresenceBlockStore,
        config: MessagesConfig,
        *,
        domain: str,
    ) -> None:
        self.offline = offline
        self._sessions = sessions
        self._presence = presence
        self._accounts = accounts
        self._rosters = rosters
        self._presence_blocks = presence_blocks
        self._max_offline = config.max_offline
        self._max_offline_bytes = config.max_offline_bytes
        self._domain = domain
        self.store_offline = config.offline == "store"
        # For each user who appears offline, the (count, bytes) of the messages that would be
        # waiting were they logged out, so that their quota fills as it would then.
        self._as_stored: dict[str, tuple[int, int]] = {}

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
                await self._as_absent(stanza, event.sender, target.bare, message_type)
                return STOP
            # RFC 6121 section 8.5.3.2.1: a full JID that is not online is treated as the bare
            # JID for normal and chat messages; other types are not redelivered.
            if message_type not in ("normal", "chat"):
                if message_type == "groupchat" and await self._sees(event.sender, target.bare):
                    raise StanzaError("service-unavailable")
                return STOP
        await self._to_account(stanza, event.sender, target.bare, message_type)
        return STOP

    async def _to_account(self, stanza: Element, sender: JID, bare: JID, message_type: str) -> None:
        """RFC 6121 section 8.5.2: to the account's available resources by priority."""
        resources = [
            (session, state)
            for session, state in self._presence.available(bare)
            if state.priority >= 0
        ]
        if message_type == "groupchat":
            # Refused whether or not the account exists or anyone is online, so it tells no
            # one anything.
            raise StanzaError("service-unavailable")
        if resources:
            if message_type == "normal":
                top = max(state.priority for _, state in resources)
                resources = [(s, state) for s, state in resources if state.priority == top]
            data = serialize(stanza)
            for session, _ in resources:
                session.send_bytes(data)
            await self._as_absent(stanza, sender, bare, message_type)
            return
        if message_type in ("error", "headline"):
            return
        await self._to_absent(stanza, sender, bare)

    async def _to_absent(self, stanza: Element, sender: JID, bare: JID) -> None:
        """A message for an account with no available resource: stored, or bounced to a
        sender who may see the user's presence; anyone else hears nothing either way."""
        assert bare.local is not None
        if not self._sessions.is_online(bare) and not await self._accounts.exists(bare.local):
            # Nobody may see the presence of an account that does not exist, so nobody is
            # told: a stranger hears the same as for a user who is offline.
            return
        sees, may_store = await self._standing(sender, bare)
        if self.store_offline and may_store:
            if await self._store(bare.local, serialize(stanza).decode()):
                return
            reason = "The recipient's offline storage is full"
        else:
            reason = "The recipient is not logged in"
        if sees:
            raise StanzaError("service-unavailable", reason)

    async def _as_absent(self, stanza: Element, sender: JID, bare: JID, message_type: str) -> None:
        """For a message delivered to a user who appears offline to its sender: the answer
        the sender would get were the user logged out, without storing anything."""
        if not self._presence.appears_offline(bare):
            # Shown as they are again: were they logged out, what waited was delivered.
            self._as_stored.pop(str(bare.local), None)
            return
        if sender.bare == bare:
            return
        if message_type in ("error", "headline"):
            return
        sees, may_store = await self._standing(sender, bare)
        if message_type == "groupchat":
            reason = None
        elif self.store_offline and may_store:
            assert bare.local is not None
            waiting = await self.offline.pending(bare.local)
            if self._would_store(bare.local, len(serialize(stanza)), waiting):
                return
            reason = "The recipient's offline storage is full"
        else:
            reason = "The recipient is not logged in"
        if sees:
            raise StanzaError("service-unavailable", reason)

    def _would_store(self, owner: str, size: int, waiting: list[StoredMessage]) -> bool:
        """Whether a message of `size` bytes would fit the offline storage of a user who
        appears offline, counting it as stored if so."""
        count, total = self._as_stored.get(owner, (0, 0))
        waiting_bytes = sum(len(message.stanza.encode()) for message in waiting)
        if (
            count + len(waiting) >= self._max_offline
            or total + waiting_bytes + size > self._max_offline_bytes
        ):
            return False
        self._as_stored[owner] = (count + 1, total + size)
        return True

    async def _standing(self, sender: JID, user: JID) -> tuple[bool, bool]:
        """(whether `sender` may see `user`'s presence, whether a message from `sender` may
        be stored for `user`)."""
        if sender.bare == user:
            return True, True
        assert user.local is not None
        if await self._presence_blocks.contains(user.local, str(sender.bare)):
            # Kept from the user's presence, whatever the roster says, and kept out of the
            # user's offline storage.
            return False, False
        return await self._rosters.sees(sender, user), True

    async def _sees(self, sender: JID, user: JID) -> bool:
        return (await self._standing(sender, user))[0]

    async def _store(self, owner: str, stanza: str) -> bool:
        return await self.offline.store(
            owner, stanza, max_count=self._max_offline, max_bytes=self._max_offline_bytes
        )

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
        """Messages a session never acknowledged (XEP-0198) are stored or bounced, not lost;
        bounced only to senders who may see the user's presence, like any other bounce."""
        session = event.session
        await self.undelivered(session.jid.bare, session.undelivered())

    async def undelivered(self, owner: JID, stanzas: list[bytes]) -> None:
        """Stanzas, as written for one of the owner's sessions, that it will never get: its
        messages stored or bounced as `session_ended` does."""
        assert owner.local is not None
        for data in stanzas:
            try:
                stanza = etree.fromstring(data)
            except etree.XMLSyntaxError:
                continue
            # Errors and headlines are never stored (RFC 6121 section 8.5.2.2.1): a headline is
            # news of the moment, such as a pending-request count that a later one replaces.
            if etree.QName(stanza).localname != "message" or _message_type(stanza) in (
                "error",
                "headline",
            ):
                continue
            sender = _sender(stanza)
            # A message with no sender to answer is kept like a stranger's.
            if sender is None:
                sees, may_store = False, True
            else:
                sees, may_store = await self._standing(sender, owner)
            if self.store_offline and may_store and await self._store(owner.local, data.decode()):
                continue
            # A user who appears offline was answered for as absent when the message came.
            if sees and sender is not None and not self._presence.appears_offline(owner):
                self._bounce(stanza, sender)

    def _bounce(self, stanza: Element, sender: JID) -> None:
        recipient = self._sessions.get(sender)
        if recipient is not None:
            error = StanzaError("service-unavailable", "The recipient's connection was lost")
            recipient.send(error_reply(stanza, error))


def _sender(stanza: Element) -> JID | None:
    """The stamped sender of a stanza this server delivered; None without a usable one."""
    try:
        return JID.parse(stanza.get("from") or "")
    except JIDError:
        return None


def _message_type(stanza: Element) -> str:
    message_type = stanza.get("type", "normal")
    # RFC 6121 section 5.2.2: an unknown type is treated as normal.
    return message_type if message_type in MESSAGE_TYPES else "normal"
