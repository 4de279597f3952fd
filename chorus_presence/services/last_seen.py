"""Last seen: since when a user has been away or offline (XEP-0319 idle in presence), and the
user's choice to hide it ("Show when I was last seen"), which each node of a cluster follows
(`last-seen/changed`).

The server stamps `<idle xmlns='urn:xmpp:idle:1' since='...'/>` on the presence it generates
for a user: the automation's "Away, Not logged in" carries the moment the user's last resource
went, and any other server-made presence can be stamped through `stamp`. A client that reports
idleness itself has its `since` checked on `presence/out`: one that is not a datetime with a
zone is refused with `bad-request` (the presence is not applied, as for a bad priority); one
later than the server's clock is dropped and the presence goes without it, so that a client
whose clock runs ahead is not kept from publishing its presence. What passes goes out in UTC, to
the second.

A user who hides their last seen is never shown with an idle time: it is taken off their own
presence, the server stamps none, and XEP-0012 last activity at their account answers every
other user as it answers a stranger, a bare `forbidden`. As messengers do it, such a user sees
nobody's either: the presence service takes idle off every presence it sends them (it shares
the set of hiding users with this service), and their own last-activity queries at other
accounts get the same `forbidden`. Last activity still follows visibility first: the last
activity service answers only those who may see the user's presence.

The automated Away's `since` is the logout XEP-0012 answers with: the last activity store the
last activity and appear-offline services record logouts in is this service's `recorder`, which
notes each time as it is recorded, for users shown "Not logged in" and users who appear offline
(who may switch the automation on while shown offline); nobody else's is kept. A user who
appears offline is so shown with the moment they went, as for a logout, and a resource of
theirs logging in or out changes nothing of it. Times come from the server's
`Clock`.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Coroutine
from typing import Any

from chorus_presence.core import topics
from chorus_presence.core.bus import Bus
from chorus_presence.core.clock import Clock
from chorus_presence.core.events import (
    AccountRemoved,
    DiscoFeatures,
    GeneratedPresence,
    IqRequest,
    LastSeenChanged,
    SessionEvent,
    StanzaEvent,
)
from chorus_presence.core.sessions import SessionRegistry
from chorus_presence.services.presence import IDLE, PresenceService, without_idle
from chorus_presence.storage.interfaces import LastActivityStore, SettingsStore
from chorus_presence.storage.last_activity import LastLogout
from chorus_presence.xmpp import namespaces as ns
from chorus_presence.xmpp.errors import StanzaError
from chorus_presence.xmpp.jid import JID
from chorus_presence.xmpp.stanza import Element, child, element

SETTING = ns.qname(ns.CHORUS_PRESENCE, "last-seen")
LAST_QUERY = ns.qname(ns.LAST_ACTIVITY, "query")
FEATURE = f"{ns.CHORUS_PRESENCE}#last-seen"
# The setting's column: stored as what is hidden, so that the default (shown) needs no row.
HIDE = "hide_last_seen"
# On `presence/out`, after the filters and before the state expiry (10) and presence (0).
CHECK_PRIORITY = 20
# Before the last activity service (0) on its query.
QUERY_PRIORITY = 10
_TYPES = (None, "unavailable")


class LastSeenService:
    def __init__(
        self,
        bus: Bus,
        settings: SettingsStore,
        presence: PresenceService,
        sessions: SessionRegistry,
        clock: Clock,
        hidden: set[str],
        logouts: dict[str, float],
        *,
        domain: str,
        shown_when_offline: Callable[[JID], bool],
    ) -> None:
        self._bus = bus
        self._settings = settings
        self._presence = presence
        self._sessions = sessions
        self._clock = clock
        self._domain = domain
        self._shown_when_offline = shown_when_offline
        # The users who hide their last seen; the presence service reads the same set.
        self.hidden = hidden
        # When each user shown "Not logged in" while offline logged out; nobody else's is kept.
        self._logouts = logouts

    @classmethod
    async def load(
        cls,
        bus: Bus,
        settings: SettingsStore,
        last_activity: LastActivityStore,
        presence: PresenceService,
        sessions: SessionRegistry,
        clock: Clock,
        hidden: set[str],
        *,
        domain: str,
        shown_when_offline: Callable[[JID], bool],
    ) -> LastSeenService:
        """The service, with the logout time of each user whose automation is on or who
        appears offline, so that their "Not logged in" says since when from the first probe
        after a restart."""
        logouts: dict[str, float] = {}
        owners = await settings.owners_with("away_when_offline")
        owners |= await settings.owners_with("appear_offline")
        for owner in sorted(owners):
            last = await last_activity.get(owner)
            if last is not None:
                logouts[owner] = last.at
        return cls(
            bus,
            settings,
            presence,
            sessions,
            clock,
            hidden,
            logouts,
            domain=domain,
            shown_when_offline=shown_when_offline,
        )

    def subscribe(self, bus: Bus) -> None:
        bus.on(topics.PRESENCE_OUT, self.check_idle, priority=CHECK_PRIORITY)
        bus.on(topics.PRESENCE_GENERATED, self.generated)
        bus.on(topics.RESOURCE_AVAILABLE, self.came_back)
        bus.on(topics.ACCOUNT_REMOVED, self.account_removed)
        bus.on(topics.LAST_SEEN_CHANGED, self.changed)
        bus.on(topics.iq("get", "bare", LAST_QUERY), self.refuse_hidden, priority=QUERY_PRIORITY)
        bus.on(topics.iq("get", "bare", SETTING), self._get)
        bus.on(topics.iq("set", "bare", SETTING), self._set)
        bus.on(topics.DISCO_FEATURES, _features)

    # Idle in presence

    def check_idle(self, event: StanzaEvent) -> None:
        """A client's own idle time: checked and put in UTC, dropped when in the future or
        when the user hides their last seen."""
        stanza = event.stanza
        presence_type = stanza.get("type")
        # On every presence a client sends: the cheapest look lxml offers comes first.
        if presence_type not in _TYPES or next(stanza.iterchildren(IDLE), None) is None:
            return
        nodes = list(stanza.iterchildren(IDLE))
        if event.session.jid.local in self.hidden:
            for node in nodes:
                stanza.remove(node)
            return
        try:
            if len(nodes) > 1:
                raise StanzaError("bad-request", "A presence carries at most one <idle/>")
            since = parse_since(nodes[0].get("since"))
        except StanzaError:
            if presence_type is None:
                raise
            # Going offline is never refused: what it said of idleness is dropped instead.
            for node in nodes:
                stanza.remove(node)
            return
        if since > self._clock.now():
            stanza.remove(nodes[0])
            return
        nodes[0].attrib.clear()
        nodes[0].set("since", format_since(since))

    def generated(self, event: GeneratedPresence) -> None:
        """The automation's "Not logged in" says since when the user logged out."""
        since = self._logouts.get(event.user.local or "")
        if since is not None:
            self.stamp(event.user, event.presence, since)

    def stamp(self, user: JID, presence: Element, since: float) -> Element:
        """Add XEP-0319 idle time to a presence the server makes for `user` (an automatic
        state), unless the user hides their last seen; returns the presence."""
        if user.local in self.hidden:
            return presence
        for node in presence.findall(IDLE):
            presence.remove(node)
        child(presence, "idle", {"since": format_since(since)}, namespace=ns.IDLE)
        return presence

    def recorder(self, store: LastActivityStore) -> LastActivityStore:
        """`store`, noting here each logout recorded in it."""
        return _Recording(store, self._recorded)

    def _recorded(self, owner: str, at: float) -> None:
        user = JID(owner, self._domain)
        if self._shown_when_offline(user) or self._presence.appears_offline(user):
            self._logouts[owner] = at

    def came_back(self, event: SessionEvent) -> None:
        user = event.session.jid.bare
        assert user.local is not None
        # Still shown offline, since the moment the user went.
        if not self._presence.appears_offline(user):
            self._logouts.pop(user.local, None)

    def account_removed(self, event: AccountRemoved) -> None:
        assert event.user.local is not None
        self.hidden.discard(event.user.local)
        self._logouts.pop(event.user.local, None)

    # Last activity (XEP-0012)

    def refuse_hidden(self, request: IqRequest) -> None:
        """Neither a user who hides their last seen nor anyone asking about them learns it
        from the other: the answer a stranger gets."""
        assert request.sender is not None
        user = request.target or request.user
        if user.bare == request.sender.bare:
            return
        if user.local in self.hidden or request.sender.local in self.hidden:
            raise StanzaError("forbidden")

    # The setting

    def shows(self, owner: str) -> bool:
        return owner not in self.hidden

    async def set_shown(self, owner: str, shown: bool) -> None:
        """Show or hide the user's last seen, on every node of a cluster."""
        await self._settings.update(owner, **{HIDE: not shown})
        # The other nodes hear of it before any presence this change sends them.
        await self._bus.notify(topics.LAST_SEEN_CHANGED, LastSeenChanged(owner))
        await self._apply(owner, shown)

    async def changed(self, event: LastSeenChanged) -> None:
        """Another node changed the setting: this one follows what is stored."""
        if event.elsewhere:
            hidden = (await self._settings.get(event.owner)).hide_last_seen
            await self._apply(event.owner, not hidden)

    async def _apply(self, owner: str, shown: bool) -> None:
        """Hiding also takes the idle time off the presence each of the user's resources on
        this node has out now (another node's are its own)."""
        if shown:
            self.hidden.discard(owner)
            return
        self.hidden.add(owner)
        for session, resource in self._presence.available(JID(owner, self._domain)):
            if self._sessions.is_remote(session) or resource.stanza.find(IDLE) is None:
                continue
            await self._presence.replace_presence(session, without_idle(resource.stanza))

    async def _get(self, request: IqRequest) -> Element:
        return request.reply(setting_element(self.shows(request.own_account("settings"))))

    async def _set(self, request: IqRequest) -> Element:
        owner = request.own_account("settings")
        shown = _parse_bool(request.payload.get("show"))
        await self.set_shown(owner, shown)
        return request.reply(setting_element(shown))


class _Recording:
    """A last activity store that tells of each logout as it is recorded, before the write
    runs: the presence that follows a logout is generated before any write completes."""

    def __init__(self, store: LastActivityStore, recorded: Callable[[str, float], None]) -> None:
        self._store = store
        self._recorded = recorded

    def record(self, owner: str, at: float, status: str | None) -> Coroutine[Any, Any, None]:
        self._recorded(owner, at)
        return self._store.record(owner, at, status)

    async def get(self, owner: str) -> LastLogout | None:
        return await self._store.get(owner)


def parse_since(text: str | None) -> float:
    """An XEP-0082 datetime with its zone, as seconds since the epoch; `bad-request` else."""
    try:
        parsed = dt.datetime.fromisoformat(text.strip()) if text else None
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise StanzaError(
            "bad-request",
            "<idle/> needs 'since', a datetime with a zone such as 2026-05-04T14:05:00Z",
        )
    return parsed.timestamp()


def format_since(seconds: float) -> str:
    """Seconds since the epoch as an XEP-0082 UTC datetime, to the second."""
    return dt.datetime.fromtimestamp(math.floor(seconds), dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def setting_element(shown: bool) -> Element:
    return element(
        "last-seen", {"show": "true" if shown else "false"}, namespace=ns.CHORUS_PRESENCE
    )


def _features(event: DiscoFeatures) -> None:
    event.features.update({FEATURE, ns.IDLE})


def _parse_bool(text: str | None) -> bool:
    if text in ("true", "1"):
        return True
    if text in ("false", "0"):
        return False
    raise StanzaError("bad-request", f"'show' is true or false, not {text!r}")
