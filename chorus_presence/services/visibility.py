"""Who may see my presence: the visibility policy, the allowed and blocked lists, pending
requests, the pending count pushed to the user's resources, presence automation ("Away"
while not logged in) and appearing offline (`services/appear_offline.py` applies it).

The lists are views of RFC 6121 state plus one table: allowed = contacts with a subscription
from the user (`from`/`both`) or a pre-approval; blocked = the user's presence blocks; pending =
unanswered requests. Every move between them is a real subscription exchange, so contacts see
or stop seeing the user's presence at once with the stanzas RFC 6121 prescribes. The same
service backs the IQ extension below, the ad-hoc commands and the admin command line, and it
alone decides who may be put on a list: users of this server (the server talks to no other,
so nobody else could ever see the user's presence), or whoever is on one of the user's lists
already, so that rows older versions let in can still be moved.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from chorus_presence.core import topics
from chorus_presence.core.bus import Bus
from chorus_presence.core.events import (
    AccountRemoved,
    IqRequest,
    OfflineView,
    RosterCommitted,
    SubscriptionRequest,
)
from chorus_presence.core.sessions import SessionRegistry
from chorus_presence.services import rich_states
from chorus_presence.services.accounts import AccountService
from chorus_presence.services.appear_offline import AppearOfflineService
from chorus_presence.services.contact_lists import jid_action, parse_contact
from chorus_presence.services.presence import PresenceService
from chorus_presence.services.rosters import RosterService
from chorus_presence.services.subscription_states import SEES, SENDS_TO
from chorus_presence.services.subscriptions import SubscriptionService
from chorus_presence.storage.interfaces import PresenceBlockStore, SettingsStore
from chorus_presence.storage.rosters import PendingRequest, RosterChanges
from chorus_presence.xmpp import namespaces as ns
from chorus_presence.xmpp.errors import StanzaError
from chorus_presence.xmpp.jid import JID
from chorus_presence.xmpp.stanza import Element, child, element

log = logging.getLogger(__name__)

POLICIES = ("ask", "everyone", "nobody")
QUERY = ns.qname(ns.CHORUS_VISIBILITY, "visibility")


@dataclass(frozen=True, slots=True)
class VisibilityOverview:
    policy: str
    away_when_offline: bool
    appear_offline: bool
    pending: list[PendingRequest]
    allowed: list[str]
    blocked: list[str]


class VisibilityService:
    def __init__(
        self,
        settings: SettingsStore,
        presence_blocks: PresenceBlockStore,
        rosters: RosterService,
        subscriptions: SubscriptionService,
        presence: PresenceService,
        accounts: AccountService,
        sessions: SessionRegistry,
        automated: set[str],
        appear_offline: AppearOfflineService,
        *,
        domain: str,
    ) -> None:
        self.settings = settings
        self.presence_blocks = presence_blocks
        self._rosters = rosters
        self._subscriptions = subscriptions
        self._presence = presence
        self._accounts = accounts
        self._sessions = sessions
        self._domain = domain
        # Presence automation is read on the presence path, so it is kept in memory.
        self._automated = automated
        self._appear_offline = appear_offline

    @classmethod
    async def load(
        cls,
        settings: SettingsStore,
        presence_blocks: PresenceBlockStore,
        rosters: RosterService,
        subscriptions: SubscriptionService,
        presence: PresenceService,
        accounts: AccountService,
        sessions: SessionRegistry,
        appear_offline: AppearOfflineService,
        *,
        domain: str,
    ) -> VisibilityService:
        automated = await settings.owners_with("away_when_offline")
        return cls(
            settings,
            presence_blocks,
            rosters,
            subscriptions,
            presence,
            accounts,
            sessions,
            automated,
            appear_offline,
            domain=domain,
        )

    def subscribe(self, bus: Bus) -> None:
        bus.on(topics.SUBSCRIPTION_REQUEST, self.request_policy)
        bus.on(topics.PRESENCE_OFFLINE, self.offline_presence)
        bus.on(topics.ROSTER_COMMITTED, self.roster_committed)
        bus.on(topics.ACCOUNT_REMOVED, self.account_removed)
        bus.on(
            topics.DISCO_FEATURES,
            lambda event: event.features.update({ns.CHORUS_PRESENCE, ns.CHORUS_VISIBILITY}),
        )
        bus.on(topics.iq("get", "bare", QUERY), self._get)
        bus.on(topics.iq("set", "bare", QUERY), self._configure)
        for name, method in (("accept", self.accept), ("block", self.block), ("allow", self.allow)):
            bus.on(
                topics.iq("set", "bare", ns.qname(ns.CHORUS_VISIBILITY, name)),
                jid_action("settings", method),
            )

    async def account_removed(self, event: AccountRemoved) -> None:
        assert event.user.local is not None
        self._automated.discard(event.user.local)
        # Storage took the requests the account had made; their owners hear the new count.
        for owner in event.rows.pending_owners:
            await self._push_pending(owner, gone=str(event.user))

    async def roster_committed(self, event: RosterCommitted) -> None:
        """Whoever's pending requests changed hears the new count; so does whoever gained a
        row on the presence blocked list, which a request refused under `nobody` adds with
        nothing else to tell the owner, so that their clients read the lists again."""
        changes = event.changes
        owners = {owner for owner, _ in changes.pending_add}
        owners.update(owner for owner, _ in changes.pending_remove)
        owners.update(owner for owner, _ in changes.presence_blocks_add)
        for owner in sorted(owners):
            await self._push_pending(owner)

    async def _push_pending(self, owner: str, *, gone: str | None = None) -> None:
        """The owner's pending count to each of their bound resources. `gone` is a requester
        whose requests are gone from storage, whether or not the cache has caught up yet."""
        user = self._jid(owner)
        sessions = self._sessions.of_account(user)
        if not sessions:
            return
        pending = (await self._rosters.roster(owner)).pending
        count = sum(1 for contact in pending if contact != gone)
        for session in sessions:
            session.send(pending_notification(user, session.jid, count))

    # Queries

    async def overview(self, owner: str) -> VisibilityOverview:
        settings = await self.settings.get(owner)
        roster = await self._rosters.roster(owner)
        allowed = sorted(
            contact
            for contact, item in roster.items.items()
            if item.subscription in SENDS_TO or item.approved
        )
        return VisibilityOverview(
            policy=settings.visibility_policy,
            away_when_offline=settings.away_when_offline,
            appear_offline=settings.appear_offline,
            pending=list(roster.pending.values()),
            allowed=allowed,
            blocked=await self.presence_blocks.list(owner),
        )

    async def refresh(self, owner: str) -> None:
        """Another node changed the owner's settings: the presence automation and appearing
        offline kept here follow what is stored."""
        settings = await self.settings.get(owner)
        if settings.away_when_offline:
            self._automated.add(owner)
        else:
            self._automated.discard(owner)
        await self._appear_offline.changed(owner, settings.appear_offline, here=False)

    async def resync(self) -> None:
        """What other nodes said may have been lost: the presence automation follows what is
        stored, for every user."""
        automated = await self.settings.owners_with("away_when_offline")
        self._automated.intersection_update(automated)
        self._automated.update(automated)
        hidden = await self.settings.owners_with("appear_offline")
        for owner in sorted(hidden ^ self._appear_offline.hidden()):
            await self._appear_offline.changed(owner, owner in hidden, here=False)

    def offline_presence(self, view: OfflineView) -> Element | None:
        if view.user.local in self._automated:
            return rich_states.offline_presence(str(view.user))
        return None

    # Changes

    async def set_policy(self, owner: str, policy: str) -> None:
        """Change the policy; it applies at once to the requests still pending."""
        await self.configure(owner, policy=policy)

    async def set_away_when_offline(self, owner: str, enabled: bool) -> None:
        await self.configure(owner, away_when_offline=enabled)

    async def set_appear_offline(self, owner: str, enabled: bool) -> None:
        await self.configure(owner, appear_offline=enabled)

    async def configure(
        self,
        owner: str,
        *,
        policy: str | None = None,
        away_when_offline: bool | None = None,
        appear_offline: bool | None = None,
    ) -> None:
        """Change the policy, presence automation, appearing offline or several, in one
        transaction with the answers a new policy gives the requests still pending."""
        if policy is not None and policy not in POLICIES:
            raise StanzaError(
                "bad-request", f"{policy!r} is not a policy: choose {', '.join(POLICIES)}"
            )
        settings: dict[str, object] = {}
        if policy is not None:
            settings["visibility_policy"] = policy
        if away_when_offline is not None:
            settings["away_when_offline"] = away_when_offline
        if appear_offline is not None:
            settings["appear_offline"] = appear_offline
        if not settings:
            return
        changes = RosterChanges(settings=[(owner, settings)])
        user = self._jid(owner)
        moves: list[tuple[JID, JID, str, str | None]] = []
        if policy in ("everyone", "nobody"):
            roster = await self._rosters.roster(owner)
            for contact in list(roster.pending):
                blocked = await self.presence_blocks.contains(owner, contact)
                if policy == "everyone" and not blocked:
                    changes.presence_blocks_remove.append((owner, contact))
                    moves.append((user, JID.parse(contact), "subscribed", None))
                else:
                    changes.presence_blocks_add.append((owner, contact))
                    moves.append((user, JID.parse(contact), "unsubscribed", None))
        await self._subscriptions.exchange_all(moves, also=changes)
        if policy is not None:
            log.info("visibility policy of %s set to %s", owner, policy)
        if away_when_offline is not None:
            if away_when_offline:
                self._automated.add(owner)
            else:
                self._automated.discard(owner)
            await self._presence.rebroadcast_offline(user)
        if appear_offline is not None:
            await self._appear_offline.changed(owner, appear_offline)
            log.info("%s %s", owner, "appears offline" if appear_offline else "appears as is")

    async def accept(self, owner: str, contact: str) -> None:
        """Answer a pending request with yes: the requester joins the allowed list."""
        jid = parse_contact(contact)
        _refuse_domain(jid)
        contact = str(jid)
        roster = await self._rosters.roster(owner)
        if contact not in roster.pending:
            raise StanzaError("item-not-found", f"No pending request from {contact}")
        await self._subscriptions.exchange(
            self._jid(owner),
            jid,
            "subscribed",
            also=RosterChanges(presence_blocks_remove=[(owner, contact)]),
        )

    async def block(self, owner: str, contact: str) -> None:
        """Keep a contact from seeing the user's presence: a pending request is refused, a
        subscription cancelled (the contact gets unsubscribed and unavailable), and later
        requests are refused."""
        contact = await self._list_candidate(owner, contact, "You cannot block yourself")
        await self._subscriptions.exchange(
            self._jid(owner),
            JID.parse(contact),
            "unsubscribed",
            also=RosterChanges(presence_blocks_add=[(owner, contact)]),
        )
        log.info("%s blocked %s from seeing their presence", owner, contact)

    async def allow(self, owner: str, contact: str) -> None:
        """Let a contact see the user's presence: the block goes, the contact is approved (or
        pre-approved), and a contact who still has the user in their roster starts seeing the
        user's presence at once, their earlier request standing."""
        contact = await self._list_candidate(owner, contact, "You always see your own presence")
        user, other = self._jid(owner), JID.parse(contact)
        await self._subscriptions.exchange(
            user,
            other,
            "subscribed",
            also=RosterChanges(presence_blocks_remove=[(owner, contact)]),
        )
        if other.domain == self._domain and other.local is not None:
            their_roster = await self._rosters.roster(other.local)
            item = their_roster.items.get(str(user))
            if item is not None and item.subscription not in SEES:
                await self._subscriptions.exchange(other, user, "subscribe")
        log.info("%s allowed %s to see their presence", owner, contact)

    async def request_policy(self, request: SubscriptionRequest) -> str | None:
        """Decides an inbound request by the owner's blocked list and policy."""
        owner = request.owner.local
        if owner is None:
            return None
        requester_text = str(request.requester.bare)
        roster = await self._rosters.roster(owner)
        item = roster.items.get(requester_text)
        if item is not None and item.subscription in SENDS_TO:
            # Already allowed: RFC 6121 section 3.1.3 answers subscribed and changes nothing.
            return None
        if await self.presence_blocks.contains(owner, requester_text):
            return "refuse"
        policy = (await self.settings.get(owner)).visibility_policy
        if policy == "everyone":
            return "approve"
        if policy == "nobody":
            if item is not None and item.approved:
                return None
            request.changes.presence_blocks_add.append((owner, requester_text))
            return "refuse"
        return None

    # Who may go on a list

    async def _list_candidate(self, owner: str, text: str, yourself: str) -> str:
        """The bare JID of a contact that may go on the owner's allowed or blocked list: a user
        of this server, or a contact already on one of the owner's lists; else StanzaError."""
        jid = parse_contact(text)
        contact = str(jid)
        if jid == self._jid(owner):
            raise StanzaError("not-allowed", yourself)
        if await self._listed(owner, contact):
            return contact
        _refuse_domain(jid)
        if jid.domain != self._domain:
            raise StanzaError(
                "item-not-found",
                f"{contact} is not a user of {self._domain}, and only its users can see your"
                " presence",
            )
        assert jid.local is not None
        if not await self._accounts.exists(jid.local):
            raise StanzaError("item-not-found", f"No such user {contact}")
        return contact

    async def _listed(self, owner: str, contact: str) -> bool:
        roster = await self._rosters.roster(owner)
        item = roster.items.get(contact)
        if contact in roster.pending:
            return True
        if item is not None and (item.subscription in SENDS_TO or item.approved):
            return True
        return await self.presence_blocks.contains(owner, contact)

    # The IQ extension

    async def _get(self, request: IqRequest) -> Element:
        return request.reply(overview_element(await self.overview(request.own_account("settings"))))

    async def _configure(self, request: IqRequest) -> Element:
        owner = request.own_account("settings")
        policy = request.payload.get("policy")
        # Everything is checked before anything changes: a refused request changes nothing.
        away = _bool_attribute(request.payload, "away-when-offline")
        hidden = _bool_attribute(request.payload, "appear-offline")
        await self.configure(owner, policy=policy, away_when_offline=away, appear_offline=hidden)
        return request.reply(overview_element(await self.overview(owner)))

    def _jid(self, owner: str) -> JID:
        return JID(owner, self._domain)


def _refuse_domain(jid: JID) -> None:
    if jid.local is None:
        raise StanzaError("bad-request", f"{jid.domain} is a domain, not a user")


def pending_notification(user: JID, resource: JID, count: int) -> Element:
    """The pending count pushed to one of the user's resources: a headline, which is never
    kept for a user who is not logged in."""
    message = element("message", {"type": "headline", "from": str(user), "to": str(resource)})
    child(message, "pending", {"count": str(count)}, namespace=ns.CHORUS_VISIBILITY)
    return message


def overview_element(overview: VisibilityOverview) -> Element:
    node = element(
        "visibility",
        {
            "policy": overview.policy,
            "away-when-offline": _bool(overview.away_when_offline),
            "appear-offline": _bool(overview.appear_offline),
        },
        namespace=ns.CHORUS_VISIBILITY,
    )
    pending = child(node, "pending", {"count": str(len(overview.pending))})
    for request in overview.pending:
        item = child(pending, "contact", {"jid": request.contact})
        if request.status:
            child(item, "status", text=request.status)
        if request.nick:
            child(item, "nick", text=request.nick, namespace=ns.NICK)
    for name, contacts in (("allowed", overview.allowed), ("blocked", overview.blocked)):
        group = child(node, name, {"count": str(len(contacts))})
        for contact in contacts:
            child(group, "contact", {"jid": contact})
    return node


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _bool_attribute(node: Element, name: str) -> bool | None:
    """A boolean attribute of `node`; None when absent."""
    text = node.get(name)
    if text is None:
        return None
    if text in ("true", "1"):
        return True
    if text in ("false", "0"):
        return False
    raise StanzaError("bad-request", f"'{name}' is true or false, not {text!r}")
