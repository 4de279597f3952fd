"""Appear offline: a user whom everyone else sees as logged out while the user goes on using
the service (chat, roster, settings, call routing configuration), until the user turns it off.

The setting is per account and durable (`appear_offline` of the user's settings), so it holds
on every resource, across logins and restarts. The visibility service changes it, with its
other settings, and tells this service (`changed`); on the other nodes of a cluster its
`refresh` does the same for what another node committed.

Whoever is not the user must not be able to tell the user from one who is logged out, so what
this service answers is asked on the paths that answer for others:

- `presence/hidden`, which `PresenceService.shown` and `shown_state` ask: broadcasts reach only
  the user's own resources; probes, the presence shown at a contact's login and after a new
  subscription, last activity, messages and call routing all see no resource. Contacts see the
  presence of a user who is not logged in, with its "Away while not logged in" automation.
  Directed presence the user sends still reaches its target, and that target gets the user's
  unavailable at the end, as RFC 6121 says.
- IQ gets and sets from anyone else to one of the user's full JIDs (disco#info among them) are
  refused here with the `service-unavailable` a resource that is not online gets; results and
  errors, the answers to what the user asked, pass.

Going offline in appearance is recorded as a logout for last activity (XEP-0012), with the
status the user had, and no later logout is recorded while it lasts: contacts asking are told
the user has been offline since they went.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from chorus_presence.core import topics
from chorus_presence.core.bus import Bus
from chorus_presence.core.events import AccountRemoved, AppearsOffline, DiscoFeatures, StanzaEvent
from chorus_presence.services.presence import PresenceService
from chorus_presence.storage.interfaces import LastActivityStore, SettingsStore
from chorus_presence.xmpp import namespaces as ns
from chorus_presence.xmpp.errors import StanzaError
from chorus_presence.xmpp.jid import JID

FEATURE = f"{ns.CHORUS_VISIBILITY}#appear-offline"
STATUS = ns.qname(ns.CLIENT, "status")
# Below the block filter (500), which refuses first across a block, and above the cluster's
# refusal when Redis is lost (400), which would answer `wait` for a resource another node holds.
FILTER_PRIORITY = 450


class AppearOfflineService:
    def __init__(
        self,
        presence: PresenceService,
        last_activity: LastActivityStore,
        hidden: set[str],
        *,
        domain: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._presence = presence
        self._last_activity = last_activity
        # Read on every presence broadcast and probe, so kept in memory.
        self._hidden = hidden
        self._domain = domain
        self._clock = clock

    @classmethod
    async def load(
        cls,
        settings: SettingsStore,
        presence: PresenceService,
        last_activity: LastActivityStore,
        *,
        domain: str,
        clock: Callable[[], float] = time.time,
    ) -> AppearOfflineService:
        hidden = await settings.owners_with("appear_offline")
        return cls(presence, last_activity, hidden, domain=domain, clock=clock)

    def subscribe(self, bus: Bus) -> None:
        bus.on(topics.PRESENCE_HIDDEN, self._appears_offline)
        bus.on(topics.IQ_IN_FULL, self._iq_to_resource, priority=FILTER_PRIORITY)
        bus.on(topics.ACCOUNT_REMOVED, self.account_removed)
        bus.on(topics.DISCO_FEATURES, _feature)

    def is_hidden(self, owner: str) -> bool:
        return owner in self._hidden

    def hidden(self) -> set[str]:
        """Every user who appears offline, as this node knows it."""
        return set(self._hidden)

    async def changed(self, owner: str, hidden: bool, *, here: bool = True) -> None:
        """The owner's setting is now `hidden`: contacts see the user go (or come back) as at
        a logout (or a login). `here` is False on a node that only hears of the change: the
        node that committed it records the logout."""
        if hidden == (owner in self._hidden):
            return
        user = JID(owner, self._domain)
        if hidden:
            resources = self._presence.available(user)
            self._hidden.add(owner)
            if here and resources:
                latest = max(resources, key=lambda pair: pair[1].sequence)[1]
                status = latest.stanza.findtext(STATUS)
                await self._last_activity.record(owner, self._clock(), status)
            await self._presence.conceal(user)
        else:
            self._hidden.discard(owner)
            await self._presence.reveal(user)

    def account_removed(self, event: AccountRemoved) -> None:
        assert event.user.local is not None
        self._hidden.discard(event.user.local)

    def _appears_offline(self, event: AppearsOffline) -> bool | None:
        return True if event.user.local in self._hidden else None

    def _iq_to_resource(self, event: StanzaEvent) -> None:
        """A get or set from anyone else to a resource of a user who appears offline gets what
        a resource that is not online gets."""
        target = event.target
        if target is None or target.local not in self._hidden:
            return
        if event.stanza.get("type") not in ("get", "set") or event.sender.bare == target.bare:
            return
        raise StanzaError("service-unavailable")


def _feature(event: DiscoFeatures) -> None:
    event.features.add(FEATURE)
