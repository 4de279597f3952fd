"""Who may see my presence: the visibility policy, the allowed and blocked lists, pending
requests, and presence automation ("Away" while not logged in).

The lists are views of RFC 6121 state plus one table: allowed = contacts with a subscription
from the user (`from`/`both`) or a pre-approval; blocked = the user's presence blocks; pending =
unanswered requests. Every move between them is a real subscription exchange, so contacts see
or stop seeing the user's presence at once with the stanzas RFC 6121 prescribes. The same
service backs the IQ extension below, the ad-hoc commands and the admin command line.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from chorus_presence.server.context import ServerContext
from chorus_presence.server.router import IqRequest
from chorus_presence.services import rich_states
from chorus_presence.services.subscription_states import SEES, SENDS_TO
from chorus_presence.storage.rosters import PendingRequest
from chorus_presence.storage.settings import SettingsRepository
from chorus_presence.storage.visibility import PresenceBlockRepository
from chorus_presence.xmpp import namespaces as ns
from chorus_presence.xmpp.errors import StanzaError
from chorus_presence.xmpp.jid import JID, JIDError
from chorus_presence.xmpp.stanza import Element, child, element

log = logging.getLogger(__name__)

POLICIES = ("ask", "everyone", "nobody")


@dataclass(frozen=True, slots=True)
class VisibilityOverview:
    policy: str
    away_when_offline: bool
    pending: list[PendingRequest]
    allowed: list[str]
    blocked: list[str]


class VisibilityService:
    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx
        self.settings = SettingsRepository(ctx.database)
        self.blocks = PresenceBlockRepository(ctx.database)
        # Presence automation is read on the presence path, so it is kept in memory.
        self._automated: set[str] = set()

    async def load(self) -> None:
        self._automated = await self.settings.owners_with("away_when_offline")

    def forget(self, username: str) -> None:
        self._automated.discard(username)

    # Queries

    async def overview(self, owner: str) -> VisibilityOverview:
        settings = await self.settings.get(owner)
        roster = await self.ctx.rosters.roster(owner)
        allowed = sorted(
            contact
            for contact, item in roster.items.items()
            if item.subscription in SENDS_TO or item.approved
        )
        return VisibilityOverview(
            policy=settings.visibility_policy,
            away_when_offline=settings.away_when_offline,
            pending=list(roster.pending.values()),
            allowed=allowed,
            blocked=await self.blocks.list(owner),
        )

    def offline_presence(self, user: JID) -> Element | None:
        if user.local in self._automated:
            return rich_states.offline_presence(str(user))
        return None

    # Changes

    async def set_policy(self, owner: str, policy: str) -> None:
        """Change the policy; it applies at once to the requests still pending."""
        if policy not in POLICIES:
            raise StanzaError("bad-request", f"The policy must be one of {', '.join(POLICIES)}")
        await self.settings.update(owner, visibility_policy=policy)
        log.info("visibility policy of %s set to %s", owner, policy)
        if policy == "ask":
            return
        roster = await self.ctx.rosters.roster(owner)
        for contact in list(roster.pending):
            if policy == "everyone" and not await self.blocks.contains(owner, contact):
                await self.accept(owner, contact)
            else:
                await self.block(owner, contact)

    async def set_away_when_offline(self, owner: str, enabled: bool) -> None:
        await self.settings.update(owner, away_when_offline=enabled)
        if enabled:
            self._automated.add(owner)
        else:
            self._automated.discard(owner)
        await self.ctx.presence.rebroadcast_offline(self._jid(owner))

    async def accept(self, owner: str, contact: str) -> None:
        """Answer a pending request with yes: the requester joins the allowed list."""
        contact = _bare(contact)
        roster = await self.ctx.rosters.roster(owner)
        if contact not in roster.pending:
            raise StanzaError("item-not-found", "No pending request from that contact")
        await self.blocks.remove(owner, contact)
        await self.ctx.subscriptions.exchange(self._jid(owner), JID.parse(contact), "subscribed")

    async def block(self, owner: str, contact: str) -> None:
        """Keep a contact from seeing the user's presence: a pending request is refused, a
        subscription cancelled (the contact gets unsubscribed and unavailable), and later
        requests are refused."""
        contact = _bare(contact)
        if contact == str(self._jid(owner)):
            raise StanzaError("not-allowed", "You cannot block yourself")
        await self.blocks.add(owner, contact)
        await self.ctx.subscriptions.exchange(self._jid(owner), JID.parse(contact), "unsubscribed")
        log.info("%s blocked %s from seeing their presence", owner, contact)

    async def allow(self, owner: str, contact: str) -> None:
        """Let a contact see the user's presence: the block goes, the contact is approved (or
        pre-approved), and a contact who still has the user in their roster starts seeing the
        user's presence at once, their earlier request standing."""
        contact = _bare(contact)
        if contact == str(self._jid(owner)):
            raise StanzaError("not-allowed", "You always see your own presence")
        user, other = self._jid(owner), JID.parse(contact)
        await self.blocks.remove(owner, contact)
        await self.ctx.subscriptions.exchange(user, other, "subscribed")
        if other.domain == self.ctx.domain and other.local is not None:
            their_roster = await self.ctx.rosters.roster(other.local)
            item = their_roster.items.get(str(user))
            if item is not None and item.subscription not in SEES:
                await self.ctx.subscriptions.exchange(other, user, "subscribe")
        log.info("%s allowed %s to see their presence", owner, contact)

    async def request_policy(self, owner: JID, requester: JID) -> str | None:
        """Decides an inbound request by the owner's blocked list and policy."""
        if owner.local is None:
            return None
        requester_text = str(requester.bare)
        roster = await self.ctx.rosters.roster(owner.local)
        item = roster.items.get(requester_text)
        if item is not None and item.subscription in SENDS_TO:
            # Already allowed: RFC 6121 section 3.1.3 answers subscribed and changes nothing.
            return None
        if await self.blocks.contains(owner.local, requester_text):
            return "refuse"
        policy = (await self.settings.get(owner.local)).visibility_policy
        if policy == "everyone":
            return "approve"
        if policy == "nobody":
            if item is not None and item.approved:
                return None
            await self.blocks.add(owner.local, requester_text)
            return "refuse"
        return None

    def _jid(self, owner: str) -> JID:
        return JID(owner, self.ctx.domain)


def _bare(text: str) -> str:
    try:
        jid = JID.parse(text)
    except JIDError as exc:
        raise StanzaError("jid-malformed", "Not a valid JID") from exc
    return str(jid.bare)


def overview_element(overview: VisibilityOverview) -> Element:
    node = element(
        "visibility",
        {"policy": overview.policy, "away-when-offline": _bool(overview.away_when_offline)},
        namespace=ns.CHORUS_VISIBILITY,
    )
    pending = child(node, "pending", {"count": str(len(overview.pending))})
    for request in overview.pending:
        item = child(pending, "contact", {"jid": request.contact})
        if request.status:
            child(item, "status", text=request.status)
    for name, contacts in (("allowed", overview.allowed), ("blocked", overview.blocked)):
        group = child(node, name, {"count": str(len(contacts))})
        for contact in contacts:
            child(group, "contact", {"jid": contact})
    return node


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _parse_bool(text: str) -> bool:
    if text in ("true", "1"):
        return True
    if text in ("false", "0"):
        return False
    raise StanzaError("bad-request", "Booleans are true or false")


async def start(ctx: ServerContext) -> None:
    await ctx.visibility.load()


def setup(ctx: ServerContext) -> VisibilityService:
    service = VisibilityService(ctx)
    ctx.visibility = service
    ctx.presence.offline_presence = service.offline_presence
    ctx.subscriptions.request_policies.append(service.request_policy)
    ctx.on_account_removed.append(service.forget)
    ctx.disco_features.update({ns.CHORUS_PRESENCE, ns.CHORUS_VISIBILITY})

    def own_account(request: IqRequest) -> str:
        sender = request.sender
        assert sender is not None and sender.local is not None
        if request.target is not None and request.target != sender.bare:
            raise StanzaError("forbidden", "Only your own settings can be read or changed")
        return sender.local

    async def get(request: IqRequest) -> Element:
        return request.reply(overview_element(await service.overview(own_account(request))))

    async def configure(request: IqRequest) -> Element:
        owner = own_account(request)
        policy = request.payload.get("policy")
        automation = request.payload.get("away-when-offline")
        if policy is not None:
            await service.set_policy(owner, policy)
        if automation is not None:
            await service.set_away_when_offline(owner, _parse_bool(automation))
        return request.reply(overview_element(await service.overview(owner)))

    def action(method):
        async def handler(request: IqRequest) -> Element:
            owner = own_account(request)
            contact = request.payload.get("jid")
            if not contact:
                raise StanzaError("bad-request", "A 'jid' attribute is required")
            await method(owner, contact)
            return request.reply()

        return handler

    query = ns.qname(ns.CHORUS_VISIBILITY, "visibility")
    ctx.router.on_iq("account", "get", query, get)
    ctx.router.on_iq("account", "set", query, configure)
    for name, method in (
        ("accept", service.accept),
        ("block", service.block),
        ("allow", service.allow),
    ):
        ctx.router.on_iq("account", "set", ns.qname(ns.CHORUS_VISIBILITY, name), action(method))
    return service
