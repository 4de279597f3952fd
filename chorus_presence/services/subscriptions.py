"""Presence subscriptions (RFC 6121 section 3): subscribe, subscribed, unsubscribe and
unsubscribed, pre-approval, pending requests, and removing a contact (section 2.5).

Both parties are local, so each stanza runs the sender's outbound processing and the contact's
inbound processing (the rules are in `subscription_states`), and both rosters change in one
database transaction before anything is delivered or pushed. Each exchange holds the locks of
both users (and of whoever else its changes touch), so exchanges between other pairs run
beside it.

A request may carry a nickname (XEP-0172): what is left of it after `checked_nick` is kept
with the pending request and goes out with it, live and again at each login. A request that
carries none goes out with the requester's display name instead, if they have one: it goes
only where the request goes, never across an XEP-0191 block either way, so nobody learns
through it a name that a vCard get would refuse them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import cast

from chorus_presence.core import topics
from chorus_presence.core.bus import STOP, Bus
from chorus_presence.core.events import (
    SessionEvent,
    StanzaEvent,
    StreamFeatures,
    SubscriptionRequest,
)
from chorus_presence.core.sessions import SessionRegistry
from chorus_presence.services.accounts import AccountService
from chorus_presence.services.display_names import InvalidName, checked_nick
from chorus_presence.services.presence import PresenceService
from chorus_presence.services.rosters import RosterService
from chorus_presence.services.subscription_states import (
    SEES,
    SENDS_TO,
    Kind,
    SubState,
    inbound,
    outbound,
    subscription_of,
)
from chorus_presence.storage.rosters import PendingRequest, Roster, RosterChanges, RosterItem
from chorus_presence.xmpp import namespaces as ns
from chorus_presence.xmpp.errors import StanzaError
from chorus_presence.xmpp.jid import JID
from chorus_presence.xmpp.stanza import Element, child, element

STATUS = ns.qname(ns.CLIENT, "status")
NICK = ns.qname(ns.NICK, "nick")
KINDS = ("subscribe", "subscribed", "unsubscribe", "unsubscribed")
MAX_STATUS_CHARS = 1024

# Whether either of two bare JIDs blocks the other (XEP-0191).
BlockCheck = Callable[[JID, JID], bool]
# Takes one subscription request of a user from the rate limit; False when over it.
RequestLimiter = Callable[[str], Awaitable[bool]]
# The display name of a local account, None when it has none.
NameLookup = Callable[[str], Awaitable[str | None]]


@dataclass
class _Exchange:
    """What one subscription exchange changes, collected before anything is committed."""

    # A cancellation across an XEP-0191 block changes both rosters but sends nothing across.
    blocked: bool = False
    changes: RosterChanges = field(default_factory=RosterChanges)
    deliveries: list[tuple[JID, Element]] = field(default_factory=list)
    visibility: list[tuple[JID, JID, bool]] = field(default_factory=list)

    def record(
        self,
        owner: str,
        roster: Roster,
        contact: str,
        before: SubState,
        after: SubState,
        status: str | None = None,
        nick: str | None = None,
    ) -> None:
        item = roster.items.get(contact)
        visible_change = after.in_roster and (
            not before.in_roster
            or (before.subscription, before.pending_out, before.approved)
            != (after.subscription, after.pending_out, after.approved)
        )
        if visible_change:
            updated = replace(
                item or RosterItem(contact),
                subscription=after.subscription,
                pending_out=after.pending_out,
                approved=after.approved,
            )
            upserts = self.changes.upserts
            upserts[:] = [(o, i) for o, i in upserts if (o, i.contact) != (owner, contact)]
            upserts.append((owner, updated))
        if after.pending_in and not before.pending_in:
            self.changes.pending_add.append((owner, PendingRequest(contact, status, nick)))
        elif before.pending_in and not after.pending_in:
            self.changes.pending_remove.append((owner, contact))

    def deliver(
        self,
        recipient: JID,
        kind: str,
        sender: JID,
        status: str | None = None,
        nick: str | None = None,
    ) -> None:
        if self.blocked:
            return
        stanza = subscription_stanza(kind, sender, recipient, status, nick)
        self.deliveries.append((recipient, stanza))

    def seeing(self, watcher: JID, contact: JID, before: SubState, after: SubState) -> None:
        was, now = before.subscription in SEES, after.subscription in SEES
        if was != now and not self.blocked:
            self.visibility.append((watcher, contact, now))


def state_of(roster: Roster, contact: str) -> SubState:
    item = roster.items.get(contact)
    pending_in = contact in roster.pending
    if item is None:
        return SubState(pending_in=pending_in)
    return SubState(
        subscription=subscription_of(item.subscription),
        pending_out=item.pending_out,
        pending_in=pending_in,
        approved=item.approved,
        in_roster=True,
    )


def subscription_stanza(
    kind: str, sender: JID, recipient: JID, status: str | None, nick: str | None = None
) -> Element:
    stanza = element("presence", {"type": kind, "from": str(sender), "to": str(recipient)})
    if status:
        child(stanza, "status", text=status)
    if nick:
        child(stanza, "nick", text=nick, namespace=ns.NICK)
    return stanza


def _nick_of(stanza: Element) -> str | None:
    """The checked nickname a subscription request carries, if any; bad-request if too long."""
    text = stanza.findtext(NICK)
    if text is None:
        return None
    try:
        return checked_nick(text)
    except InvalidName as error:
        raise StanzaError("bad-request", str(error)) from None


def _with_approval(state: SubState) -> SubState:
    """The owner's state as if they had pre-approved the requester (RFC 6121 section 3.4)."""
    return replace(state, approved=True, in_roster=True)


class SubscriptionService:
    """Subscription exchanges between local users, committed before anything is sent.

    A request's fate under the owner's settings is asked on `subscription/request`; blocks
    (XEP-0191) are asked of `blocked_either`, since a cancellation must still change both
    rosters across a block while sending nothing over it.
    """

    def __init__(
        self,
        bus: Bus,
        rosters: RosterService,
        presence: PresenceService,
        accounts: AccountService,
        sessions: SessionRegistry,
        request_limit: RequestLimiter,
        blocked_either: BlockCheck,
        names: NameLookup,
        *,
        domain: str,
    ) -> None:
        self._bus = bus
        self._rosters = rosters
        self._presence = presence
        self._accounts = accounts
        self._sessions = sessions
        self._request_limit = request_limit
        self._blocked_either = blocked_either
        self._names = names
        self._domain = domain

    def subscribe(self, bus: Bus) -> None:
        bus.on(topics.PRESENCE_OUT, self.on_subscription)
        bus.on(topics.RESOURCE_AVAILABLE, self.deliver_pending)
        bus.on(topics.FEATURES_POSTAUTH, _pre_approval_feature)

    async def on_subscription(self, event: StanzaEvent) -> object:
        stanza = event.stanza
        kind = stanza.get("type")
        if kind not in KINDS:
            return None
        target = event.target
        if target is None:
            raise StanzaError("bad-request", "A subscription stanza needs a 'to' address")
        user, contact = event.sender.bare, target.bare
        if contact == user:
            # Every user is implicitly subscribed to their own presence (RFC 6121 section 3).
            return STOP
        assert user.local is not None
        # Checked first: a request refused for its nickname takes nothing from the limit.
        nick = _nick_of(stanza) if kind == "subscribe" else None
        if kind == "subscribe" and not await self._request_limit(user.local):
            raise StanzaError(
                "policy-violation", "Too many subscription requests", error_type="wait"
            )
        status = stanza.findtext(STATUS)
        if status is not None:
            status = status[:MAX_STATUS_CHARS]
        await self.exchange(user, contact, kind, status, nick=nick)
        return STOP

    async def exchange(
        self,
        user: JID,
        contact: JID,
        kind: str,
        status: str | None = None,
        *,
        nick: str | None = None,
        also: RosterChanges | None = None,
    ) -> None:
        """One subscription stanza from `user` to `contact`, both sides processed; `nick` is
        a request's checked nickname; `also` holds changes that commit in the same
        transaction (a visibility move's list entry)."""
        await self._exchange_all([(user, contact, kind, status, nick)], also)

    async def exchange_all(
        self, moves: list[tuple[JID, JID, str, str | None]], *, also: RosterChanges | None = None
    ) -> None:
        """Several exchanges committed as one transaction. Each must concern a different pair
        of users: they are all worked out from the rosters as they were before any of them."""
        await self._exchange_all([(*move, None) for move in moves], also)

    async def _exchange_all(
        self, moves: list[tuple[JID, JID, str, str | None, str | None]], also: RosterChanges | None
    ) -> None:
        work = _Exchange(changes=also or RosterChanges())
        accounts = [jid for user, contact, *_words in moves for jid in (user, contact)]
        async with self._rosters.hold(*accounts, *_owners(work.changes)):
            for user, contact, kind, status, nick in moves:
                await self._plan(work, user, contact, kind, status, nick)
            await self._rosters.commit(work.changes)
        self._finish(work)

    async def _plan(
        self,
        work: _Exchange,
        user: JID,
        contact: JID,
        kind: str,
        status: str | None,
        nick: str | None,
    ) -> None:
        blocked = self._blocked_either(user, contact)
        if blocked and kind in ("subscribe", "subscribed"):
            # XEP-0191: nothing that would grant a view of presence crosses a block, whichever
            # side set it; neither roster changes, so the two stay in step (RFC 6121 App. A).
            return
        work.blocked = blocked
        rosters = self._rosters
        assert user.local is not None
        user_roster = await rosters.roster(user.local)
        contact_key, user_key = str(contact), str(user)
        user_before = state_of(user_roster, contact_key)
        sent = outbound(user_before, _kind(kind))
        work.record(user.local, user_roster, contact_key, user_before, sent.state)
        user_after = sent.state
        decision = None
        if sent.route and kind == "subscribe":
            decision = await self._bus.fire(
                topics.SUBSCRIPTION_REQUEST, SubscriptionRequest(contact, user, work.changes)
            )
        if decision == "drop":
            pass
        elif sent.route and (decision == "refuse" or not await self._is_local_account(contact)):
            if kind == "subscribe" and contact.domain == self._domain:
                # RFC 6121 section 3.1.3: a request to a user who does not exist, or one the
                # contact's policy refuses, is answered with unsubscribed.
                answer = inbound(user_after, "unsubscribed")
                work.record(user.local, user_roster, contact_key, user_after, answer.state)
                user_after = answer.state
                work.deliver(user, "unsubscribed", contact)
        elif sent.route:
            assert contact.local is not None
            contact_roster = await rosters.roster(contact.local)
            contact_before = state_of(contact_roster, user_key)
            if decision == "approve":
                contact_before = _with_approval(contact_before)
            received = inbound(contact_before, _kind(kind))
            work.record(
                contact.local,
                contact_roster,
                user_key,
                contact_before,
                received.state,
                status,
                nick,
            )
            if received.deliver and kind == "subscribe":
                shown = nick or await self._names(user.local)
                work.deliver(contact, kind, user, status, shown)
            elif received.deliver:
                work.deliver(contact, kind, user)
            if received.auto_reply is not None:
                answer = inbound(user_after, received.auto_reply)
                work.record(user.local, user_roster, contact_key, user_after, answer.state)
                user_after = answer.state
                if answer.deliver:
                    work.deliver(user, received.auto_reply, contact)
            work.seeing(contact, user, contact_before, received.state)
        work.seeing(user, contact, user_before, user_after)
        work.blocked = False

    async def remove_contact(self, owner: str, contact_text: str) -> None:
        """RFC 6121 section 2.5: delete the item and cancel subscriptions both ways."""
        rosters = self._rosters
        user = JID(owner, self._domain)
        contact = JID.parse(contact_text)
        work = _Exchange()
        async with rosters.hold(owner, contact):
            roster = await rosters.roster(owner)
            before = state_of(roster, contact_text)
            if not before.in_roster:
                raise StanzaError("item-not-found", f"{contact} is not in your roster")
            work.changes.deletes.append((owner, contact_text))
            if before.pending_in:
                work.changes.pending_remove.append((owner, contact_text))
            work.seeing(user, contact, before, SubState())
            if await self._is_local_account(contact):
                assert contact.local is not None
                contact_roster = await rosters.roster(contact.local)
                contact_before = state_of(contact_roster, str(user))
                contact_state = contact_before
                cancels: list[Kind] = []
                if before.subscription in SEES or before.pending_out:
                    cancels.append("unsubscribe")
                if before.subscription in SENDS_TO or before.pending_in:
                    cancels.append("unsubscribed")
                for kind in cancels:
                    received = inbound(contact_state, kind)
                    if received.deliver:
                        work.deliver(contact, kind, user)
                    contact_state = received.state
                work.record(contact.local, contact_roster, str(user), contact_before, contact_state)
                work.seeing(contact, user, contact_before, contact_state)
            await rosters.commit(work.changes)
        self._finish(work)

    async def deliver_pending(self, event: SessionEvent) -> None:
        """RFC 6121 section 3.1.3: unanswered requests are delivered again at each login."""
        session = event.session
        assert session.jid.local is not None
        roster = await self._rosters.roster(session.jid.local)
        for request in list(roster.pending.values()):
            sender = JID.parse(request.contact)
            if self._blocked_either(session.jid.bare, sender):
                continue
            session.send(await self.request_stanza(sender, session.jid.bare, request))

    async def request_stanza(self, sender: JID, owner: JID, request: PendingRequest) -> Element:
        """A pending request as it goes out again: with its nickname, else the requester's
        display name. The caller has checked that no block stands between the two."""
        nick = request.nick
        if nick is None and sender.domain == self._domain and sender.local is not None:
            nick = await self._names(sender.local)
        return subscription_stanza("subscribe", sender, owner, request.status, nick)

    def _finish(self, work: _Exchange) -> None:
        for recipient, stanza in work.deliveries:
            for session, _state in self._presence.available(recipient):
                session.send(stanza)
        for watcher, contact, can_see in work.visibility:
            self._presence.visibility_changed(watcher, contact, can_see=can_see)

    async def _is_local_account(self, jid: JID) -> bool:
        if jid.domain != self._domain or jid.local is None:
            return False
        return self._sessions.is_online(jid) or await self._accounts.exists(jid.local)


def _owners(changes: RosterChanges) -> set[str]:
    """Whose rows `changes` writes."""
    owners = {owner for owner, _ in (*changes.upserts, *changes.deletes, *changes.pending_add)}
    owners.update(owner for owner, _ in changes.pending_remove)
    owners.update(owner for owner, _ in changes.presence_blocks_add)
    owners.update(owner for owner, _ in changes.presence_blocks_remove)
    owners.update(owner for owner, _ in changes.settings)
    return owners


def _kind(kind: str) -> Kind:
    if kind not in KINDS:
        raise ValueError(f"not a subscription stanza type: {kind!r}")
    return cast(Kind, kind)


def _pre_approval_feature(event: StreamFeatures) -> None:
    event.features.append(element("sub", namespace=ns.PRE_APPROVAL_FEATURE))
