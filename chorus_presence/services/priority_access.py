"""Do Not Disturb with priority access: each user's priority list, the people who still reach
the user while the user's effective state is Do Not Disturb, Busy or In Meeting.

This module owns who may be put on the list (users of this server, as on the visibility
lists), the `urn:chorus:dnd:0` IQ extension, and what DND does to a chat or normal message:
it is delivered as ever, marked `<no-alert/>` so that the user's clients show it without a
sound or a notification, unless it comes from someone on the list or from the user. The sender
is told nothing, so a message to a user in DND answers exactly what it answers today. Call
routing asks `breaks_through` for a caller; the admin command line and the ad-hoc command call
the same methods, which take usernames and raise `StanzaError` for refusals.

The effective state is call routing's: the state of the user's most recently changed available
resource. The list's rows go with either account by cascade in storage, so nothing here
listens to account removal.
"""

from __future__ import annotations

from collections.abc import Callable

from chorus_presence.core import topics
from chorus_presence.core.bus import Bus
from chorus_presence.core.events import IqRequest, StanzaEvent
from chorus_presence.services import rich_states
from chorus_presence.services.accounts import AccountService
from chorus_presence.services.contact_lists import jid_action, parse_contact
from chorus_presence.storage.interfaces import PriorityContactStore
from chorus_presence.xmpp import namespaces as ns
from chorus_presence.xmpp.errors import StanzaError
from chorus_presence.xmpp.jid import JID
from chorus_presence.xmpp.stanza import Element, child, element

PRIORITY_LIST = ns.qname(ns.CHORUS_DND, "priority-list")
ADD = ns.qname(ns.CHORUS_DND, "add")
REMOVE = ns.qname(ns.CHORUS_DND, "remove")
NO_ALERT = ns.qname(ns.CHORUS_DND, "no-alert")

# The states in which only the priority list alerts the user: those shown as <show>dnd</show>.
QUIET_STATES = frozenset(state for state, info in rich_states.STATES.items() if info.show == "dnd")
MAX_PRIORITY_CONTACTS = 100
# Above MessageService, which delivers at 0; below the block filter and the cluster's refusals,
# so that only a message that will be delivered is marked.
MARK_PRIORITY = 10
# What is not a person writing to the user: news, errors and group chat (always refused).
UNMARKED_TYPES = frozenset({"error", "groupchat", "headline"})

StateOf = Callable[[JID], str]


class PriorityAccessService:
    """`state_of` gives a bare JID's effective state; the server passes the presence
    service's, as it does to call routing."""

    def __init__(
        self,
        store: PriorityContactStore,
        accounts: AccountService,
        *,
        domain: str,
        state_of: StateOf,
    ) -> None:
        self._store = store
        self._accounts = accounts
        self._domain = domain
        self._state_of = state_of

    def subscribe(self, bus: Bus) -> None:
        bus.on(topics.MESSAGE_IN_BARE, self.mark, priority=MARK_PRIORITY)
        bus.on(topics.MESSAGE_IN_FULL, self.mark, priority=MARK_PRIORITY)
        bus.on(topics.DISCO_FEATURES, lambda event: event.features.add(ns.CHORUS_DND))
        bus.on(topics.iq("get", "bare", PRIORITY_LIST), self._get)
        bus.on(topics.iq("set", "bare", ADD), jid_action("priority list", self.add))
        bus.on(topics.iq("set", "bare", REMOVE), jid_action("priority list", self.remove))

    # The list

    async def contacts(self, owner: str) -> list[str]:
        """The owner's priority list, as bare JIDs in order."""
        return [str(self._jid(contact)) for contact in await self._store.list(owner)]

    async def add(self, owner: str, text: str) -> None:
        """Put a user of this server on the owner's list; one already on it stays."""
        await self.add_all(owner, [text])

    async def add_all(self, owner: str, texts: list[str]) -> None:
        """Put each of these users on the owner's list, or, if one may not go on it, none."""
        candidates = [await self.candidate(owner, text) for text in texts]
        listed = await self._store.list(owner)
        new = [contact for contact in dict.fromkeys(candidates) if contact not in listed]
        if len(listed) + len(new) > MAX_PRIORITY_CONTACTS:
            raise StanzaError(
                "not-acceptable", f"At most {MAX_PRIORITY_CONTACTS} people are on a priority list"
            )
        for contact in new:
            if not await self._store.add(owner, contact):
                # The contact's account went between the check and the write.
                raise StanzaError("item-not-found", f"No such user {self._jid(contact)}")

    async def candidate(self, owner: str, text: str) -> str:
        """The username of a user who may go on the owner's list; else StanzaError, with the
        texts of the visibility lists."""
        jid = parse_contact(text)
        contact = str(jid)
        if jid == self._jid(owner):
            raise StanzaError("not-allowed", "You always reach yourself")
        if jid.local is None:
            raise StanzaError("bad-request", f"{jid.domain} is a domain, not a user")
        if jid.domain != self._domain:
            raise StanzaError(
                "item-not-found",
                f"{contact} is not a user of {self._domain}, and only its users can reach you",
            )
        if not await self._accounts.exists(jid.local):
            raise StanzaError("item-not-found", f"No such user {contact}")
        return jid.local

    async def remove(self, owner: str, text: str) -> None:
        jid = parse_contact(text)
        removed = (
            jid.domain == self._domain
            and jid.local is not None
            and await self._store.remove(owner, jid.local)
        )
        if not removed:
            raise StanzaError("item-not-found", f"{jid} is not on your priority list")

    async def breaks_through(self, owner: str, caller: JID) -> bool:
        """Whether `caller` is on the owner's priority list."""
        caller = caller.bare
        if caller.domain != self._domain or caller.local is None:
            return False
        return await self._store.contains(owner, caller.local)

    # Messages

    async def mark(self, event: StanzaEvent) -> None:
        """Mark a chat or normal message to a user in DND silent, unless the sender breaks
        through; the marker is the server's word alone, so a sender's own is dropped. Never
        stops the message: delivery is MessageService's, unchanged."""
        stanza, target = event.stanza, event.target
        assert target is not None and target.local is not None
        # RFC 6121 section 5.2.2: an unknown type is treated as normal, so it is marked too.
        if stanza.get("type") in UNMARKED_TYPES:
            return
        for forged in stanza.findall(NO_ALERT):
            stanza.remove(forged)
        user = target.bare
        if self._state_of(user) not in QUIET_STATES or event.sender.bare == user:
            return
        if await self.breaks_through(target.local, event.sender):
            return
        child(stanza, "no-alert", namespace=ns.CHORUS_DND)

    # The IQ extension

    async def _get(self, request: IqRequest) -> Element:
        return request.reply(
            list_element(await self.contacts(request.own_account("priority list")))
        )

    def _jid(self, username: str) -> JID:
        return JID(username, self._domain)


def list_element(contacts: list[str]) -> Element:
    node = element("priority-list", {"count": str(len(contacts))}, namespace=ns.CHORUS_DND)
    for contact in contacts:
        child(node, "contact", {"jid": contact})
    return node
