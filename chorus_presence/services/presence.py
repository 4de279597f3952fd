"""Presence (RFC 6121 section 4): initial presence, broadcast, probes, directed presence,
unavailable, priority, and each user's effective state.

Everything here works from memory: each available resource's last presence lives in this
service, and the rosters of online users are cached by the roster service, so a presence update
never touches the database. Who may receive a broadcast, and whose presence a user is shown,
is narrowed by the filters on `presence/audience` and `presence/view`; directed presence and
probes travel as `presence/in/*` events, through the same filters as every other stanza. What a
user with no online resource looks like (plain unavailable, or the automation's "Not logged
in") is asked on `presence/offline`. A user who appears offline (asked on `presence/hidden`)
is shown to everyone else exactly so, whatever resources they have: their broadcasts reach only
their own resources, probes and every other query for others answer from `shown`, and only the
directed presence they send themselves reaches anyone.
A presence the server makes for a user is announced on `presence/generated` before it goes
out (the last seen service adds idle time to it), and a recipient who hides their own last
seen receives every presence without XEP-0319 idle time.

In a cluster, the resources other nodes hold are mirrored here (`mirror`), as their node
announced them, so that probes, effective state and last activity answer for them too; their
node broadcasts their presence itself, so nothing is sent for them here unless the cluster
asks it to tell this node's contacts what a node that died could not. Every change of a
local resource's presence is announced on `resource/presence`.
"""

from __future__ import annotations

import copy
import itertools
import logging
import time
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field

from chorus_presence.core import topics
from chorus_presence.core.bus import STOP, Bus
from chorus_presence.core.events import (
    AccountRemoved,
    AppearsOffline,
    Audience,
    GeneratedPresence,
    OfflineView,
    PresenceChanged,
    ResourceUnavailable,
    SessionEvent,
    StanzaEvent,
)
from chorus_presence.core.metrics import Metrics
from chorus_presence.core.session import Session
from chorus_presence.core.sessions import SessionRegistry
from chorus_presence.services import rich_states
from chorus_presence.services.rosters import RosterService
from chorus_presence.services.subscription_states import SEES, SENDS_TO
from chorus_presence.storage.rosters import Roster
from chorus_presence.xmpp import namespaces as ns
from chorus_presence.xmpp.errors import StanzaError
from chorus_presence.xmpp.jid import JID
from chorus_presence.xmpp.stanza import Element, child, element, serialize

log = logging.getLogger(__name__)

PRIORITY = ns.qname(ns.CLIENT, "priority")
IDLE = ns.qname(ns.IDLE, "idle")
STATUS = ns.qname(ns.CLIENT, "status")
SUBSCRIPTION_TYPES = frozenset({"subscribe", "subscribed", "unsubscribe", "unsubscribed"})
# A session's end: presence lets go first, while the roster cache still holds the roster.
SESSION_END_PRIORITY = 100


@dataclass(slots=True)
class ResourcePresence:
    """An available resource: its last presence (from stamped, no 'to'), priority and state."""

    stanza: Element
    priority: int
    state: str
    # Orders presence changes across resources: the highest is the user's latest choice.
    sequence: int
    directed: set[JID] = field(default_factory=set)


class PresenceService:
    def __init__(
        self,
        bus: Bus,
        sessions: SessionRegistry,
        rosters: RosterService,
        metrics: Metrics,
        *,
        domain: str,
        last_seen_hidden: AbstractSet[str] = frozenset(),
    ) -> None:
        self._bus = bus
        self._sessions = sessions
        self._rosters = rosters
        self._metrics = metrics
        self._domain = domain
        self._available: dict[Session, ResourcePresence] = {}
        # Sessions whose connection dropped but may resume (XEP-0198), with their last presence.
        self._suspended: dict[Session, ResourcePresence] = {}
        # Resources other nodes of the cluster hold, whose presence `_available` mirrors.
        self._mirrored: set[Session] = set()
        self._sequence = itertools.count(1)
        # Users who hide their last seen, and so see nobody's: the last seen service's set.
        self._last_seen_hidden = last_seen_hidden
        self._stripped: tuple[Element, Element] | None = None

    def subscribe(self, bus: Bus) -> None:
        bus.on(topics.PRESENCE_OUT, self.on_outbound)
        bus.on(topics.PRESENCE_IN_BARE, self.on_inbound)
        bus.on(topics.PRESENCE_IN_FULL, self.on_inbound)
        bus.on(topics.SESSION_ENDED, self.session_ended, priority=SESSION_END_PRIORITY)
        bus.on(topics.SESSION_SUSPENDED, self.suspend)
        bus.on(topics.SESSION_RESUMED, self.resume)
        bus.on(topics.SERVER_STOPPING, self.server_stopping)
        bus.on(topics.ACCOUNT_REMOVED, self.account_removed, priority=SESSION_END_PRIORITY)

    # Queries used by other services

    def is_available(self, session: Session) -> bool:
        return session in self._available

    def available(self, bare: JID) -> list[tuple[Session, ResourcePresence]]:
        found = []
        for session in self._sessions.of_account(bare):
            state = self._available.get(session)
            if state is not None:
                found.append((session, state))
        return found

    def appears_offline(self, user: JID) -> bool:
        """Whether everyone but `user` is to see them as logged out, resources or not."""
        return bool(self._bus.fire_sync(topics.PRESENCE_HIDDEN, AppearsOffline(user)))

    def shown(self, user: JID, viewer: JID | None) -> list[tuple[Session, ResourcePresence]]:
        """The available resources of `user` as `viewer` (None: anyone else) is to know them:
        none while the user appears offline, unless the viewer is the user."""
        resources = self.available(user)
        hidden = self.appears_offline(user)
        if hidden and (viewer is None or viewer.bare != user):
            return []
        return resources

    def shown_state(self, bare: JID) -> str:
        """The effective state as anyone else is to know it: 'offline' while the user appears
        offline."""
        state = self.effective_state(bare)
        return rich_states.OFFLINE if self.appears_offline(bare) else state

    def effective_state(self, bare: JID) -> str:
        """The state of the user's most recently changed available resource, or 'offline'."""
        resources = self.available(bare)
        if not resources:
            return rich_states.OFFLINE
        return max(resources, key=lambda pair: pair[1].sequence)[1].state

    def offline_presence(self, user: JID) -> Element | None:
        """What contacts see of `user` with no resource online; None for plain unavailable."""
        presence: Element | None = self._bus.fire_sync(topics.PRESENCE_OFFLINE, OfflineView(user))
        if presence is not None:
            self._bus.notify_sync(topics.PRESENCE_GENERATED, GeneratedPresence(user, presence))
        return presence

    def sent_directed(self, sender: JID, recipient: JID) -> bool:
        """Whether one of `sender`'s resources has sent directed presence to `recipient`."""
        return any(
            target.bare == recipient
            for _, state in self.available(sender)
            for target in state.directed
        )

    # Stanza handlers

    async def on_outbound(self, event: StanzaEvent) -> object:
        stanza, target = event.stanza, event.target
        presence_type = stanza.get("type")
        if presence_type in SUBSCRIPTION_TYPES:
            return None
        if presence_type == "error":
            # Routed like other presence to a local account (RFC 6121 section 8.5), through the
            # same filters; never answered, so it tells the sender nothing of the recipient.
            return None if target is not None and target.domain == self._domain else STOP
        if presence_type == "probe":
            if target is None:
                raise StanzaError("bad-request", "A probe needs a 'to' address")
            return None if target.domain == self._domain else STOP
        if target is not None:
            return self._directed(event.session, stanza, target)
        stanza.attrib.pop("to", None)
        if presence_type is None:
            await self._available_presence(event.session, stanza)
        else:
            self._go_unavailable(event.session, stanza)
        return STOP

    async def on_inbound(self, event: StanzaEvent) -> object:
        """Presence for a local account from one of its contacts: directed presence, probes."""
        assert event.target is not None
        presence_type = event.stanza.get("type")
        if presence_type == "probe":
            await self._answer_probe(event.session, event.target.bare)
        elif presence_type == "error":
            self._deliver_error(event.target, event.stanza)
        else:
            self._deliver_directed(event.target, event.stanza)
        return STOP

    async def _available_presence(self, session: Session, stanza: Element) -> None:
        started = time.perf_counter()
        priority = _priority(stanza)
        state_name = rich_states.normalise(stanza)
        owner = session.jid.local
        assert owner is not None
        roster = await self._rosters.roster(owner)
        state = self._available.get(session)
        initial = state is None
        returning = initial and not self.available(session.jid.bare)
        sequence = next(self._sequence)
        if state is None:
            state = self._available[session] = ResourcePresence(
                stanza, priority, state_name, sequence
            )
        else:
            state.stanza, state.priority = stanza, priority
            state.state, state.sequence = state_name, sequence
        self._broadcast(session, roster, stanza, returning=returning)
        self._changed(session, state)
        self._metrics.presence_latency.observe(time.perf_counter() - started)
        if initial:
            self._answer_probes(session, roster)
            await self._bus.notify(topics.RESOURCE_AVAILABLE, SessionEvent(session))

    async def _answer_probe(self, session: Session, contact: JID) -> None:
        """A probe sent by a client: answered only for contacts the user may see."""
        user = session.jid.bare
        if contact != user:
            owner = user.local
            assert owner is not None
            roster = await self._rosters.roster(owner)
            item = roster.items.get(str(contact))
            if item is None or item.subscription not in SEES:
                return
        if not self._send_presence_of(contact, session):
            offline = self.offline_presence(contact)
            if offline is None:
                offline = element("presence", {"from": str(contact), "type": "unavailable"})
            session.send_bytes(self._addressed(offline, str(session.jid)))

    # Lifecycle handlers

    async def session_ended(self, event: SessionEvent) -> None:
        session = event.session
        self._suspended.pop(session, None)
        if session in self._available:
            unavailable = element("presence", {"type": "unavailable", "from": str(session.jid)})
            self._go_unavailable(session, unavailable)

    def suspend(self, event: SessionEvent) -> None:
        """A dropped session that may still resume: contacts see it go unavailable now."""
        session = event.session
        state = self._available.get(session)
        if state is None:
            return
        self._suspended[session] = state
        unavailable = element("presence", {"type": "unavailable", "from": str(session.jid)})
        self._go_unavailable(session, unavailable)

    def resume(self, event: SessionEvent) -> None:
        """A resumed session shows its presence again, and learns what it missed."""
        session = event.session
        state = self._suspended.pop(session, None)
        if state is None:
            return
        state.sequence = next(self._sequence)
        returning = not self.available(session.jid.bare)
        self._available[session] = state
        self._changed(session, state)
        owner = session.jid.local
        assert owner is not None
        roster = self._rosters.cached(owner)
        if roster is not None:
            self._broadcast(session, roster, state.stanza, returning=returning)
            self._answer_probes(session, roster)

    def server_stopping(self, _event: object) -> None:
        """Every contact hears each user of this node go offline while their connections are
        still open; other nodes' users stay as they are."""
        for session in list(self._available):
            if session in self._mirrored:
                continue
            unavailable = element("presence", {"type": "unavailable", "from": str(session.jid)})
            self._go_unavailable(session, unavailable)

    def account_removed(self, event: AccountRemoved) -> None:
        """Contacts see the removed account go, whether it was online or shown as offline."""
        user = event.user
        online = self.available(user)
        shown_offline = not self.shown(user, None)
        offline_shown = shown_offline and self.offline_presence(user) is not None
        for session, _ in online:
            if session in self._mirrored:
                # Its node tells the contacts when the session it holds closes.
                continue
            unavailable = element("presence", {"type": "unavailable", "from": str(session.jid)})
            self._go_unavailable(session, unavailable, quietly=True)
        if offline_shown:
            unavailable = element("presence", {"type": "unavailable", "from": str(user)})
            for owner, (item, _version) in event.rows.roster_items.items():
                if item.subscription in SEES:
                    self._deliver_to_available(JID(owner, self._domain), unavailable)

    # Changes of subscription or blocks, called by the services that committed them

    def visibility_changed(self, watcher: JID, contact: JID, *, can_see: bool) -> None:
        """`watcher` started or stopped seeing `contact`: tell the watcher's resources now."""
        watchers = [session for session, _ in self.available(watcher)]
        if not watchers:
            return
        resources = self.shown(contact, watcher)
        if can_see:
            presences = [state.stanza for _, state in resources]
            if not presences:
                offline = self.offline_presence(contact)
                presences = [offline] if offline is not None else []
        else:
            presences = [
                element("presence", {"type": "unavailable", "from": str(session.jid)})
                for session, _ in resources
            ] or [element("presence", {"type": "unavailable", "from": str(contact)})]
        for presence in presences:
            sender = presence.get("from", "")
            for watcher_session in watchers:
                watcher_session.send_presence(
                    self._addressed(presence, str(watcher_session.jid)), sender
                )

    async def rebroadcast_offline(self, user: JID) -> None:
        """Send contacts what they should now see of `user` while offline (the automation
        setting changed)."""
        if self.shown(user, None):
            return
        presence = self.offline_presence(user)
        if presence is None:
            presence = element("presence", {"type": "unavailable", "from": str(user)})
        assert user.local is not None
        # To every subscriber, as for a logout, whether or not the user appears offline.
        for bare in self._subscribers(user, await self._rosters.roster(user.local)):
            self._deliver_to_available(bare, presence)

    async def conceal(self, user: JID) -> None:
        """The user now appears offline: contacts, and whoever had their directed presence,
        see each of this node's resources go unavailable as at a logout, then what they see of
        a user who is not logged in. The resources stay available to the user."""
        resources = [(s, state) for s, state in self.available(user) if s not in self._mirrored]
        if not resources:
            return
        assert user.local is not None
        audience = self._subscribers(user, await self._rosters.roster(user.local))
        for session, state in resources:
            # As a client logging out with the status it had says it: last activity keeps it.
            unavailable = element("presence", {"type": "unavailable", "from": str(session.jid)})
            status = state.stanza.findtext(STATUS)
            if status:
                child(unavailable, "status", text=status)
            for bare in audience:
                self._deliver_to_available(bare, unavailable)
            directed = [target for target in state.directed if target.bare not in audience]
            state.directed.clear()
            if directed:
                view = Audience(user, {target.bare for target in directed})
                self._bus.fire_sync(topics.PRESENCE_AUDIENCE, view)
                for target in directed:
                    if target.bare in view.others:
                        self._deliver_directed(target, unavailable)
        offline = self.offline_presence(user)
        if offline is not None:
            for bare in audience:
                self._deliver_to_available(bare, offline)

    async def reveal(self, user: JID) -> None:
        """The user no longer appears offline: contacts see what a login would show them, the
        "not logged in" presence withdrawn and each of this node's resources' presence."""
        resources = [(s, state) for s, state in self.available(user) if s not in self._mirrored]
        if not resources:
            return
        assert user.local is not None
        audience = self._audience(user, await self._rosters.roster(user.local))
        if self.offline_presence(user) is not None:
            withdrawn = element("presence", {"type": "unavailable", "from": str(user)})
            for bare in audience:
                self._deliver_to_available(bare, withdrawn)
        for _session, state in resources:
            for bare in audience:
                self._deliver_to_available(bare, state.stanza)

    async def replace_presence(self, session: Session, stanza: Element) -> bool:
        """Make `stanza` the presence of `session` as if the session had sent it: normalised,
        kept, and broadcast through the same filters (a state set by an ad-hoc command for a
        client that cannot say it). Only an available session's: False for any other."""
        if session not in self._available:
            return False
        stanza.attrib.pop("to", None)
        stanza.set("from", str(session.jid))
        await self._available_presence(session, stanza)
        return True

    # Resources other nodes of the cluster hold

    def mirror(
        self,
        session: Session,
        stanza: Element | None,
        priority: int = 0,
        state: str = rich_states.OFFLINE,
        *,
        tell: bool = False,
    ) -> None:
        """The presence of a resource another node holds, as that node announced it (None:
        unavailable, or gone). Nothing is sent, as that node broadcasts it itself; with `tell`,
        it is broadcast from here as if the resource were local (its node died or could not
        say it), to every resource this node can reach."""
        if stanza is None:
            self._mirrored.discard(session)
            if not tell:
                self._available.pop(session, None)
                return
            unavailable = element("presence", {"type": "unavailable", "from": str(session.jid)})
            self._go_unavailable(session, unavailable)
            return
        known = self._available.get(session)
        returning = tell and known is None and not self.available(session.jid.bare)
        sequence = next(self._sequence)
        if known is None:
            self._available[session] = ResourcePresence(stanza, priority, state, sequence)
        else:
            known.stanza, known.priority = stanza, priority
            known.state, known.sequence = state, sequence
        self._mirrored.add(session)
        if not tell:
            return
        owner = session.jid.local
        assert owner is not None
        roster = self._rosters.cached(owner)
        if roster is not None:
            self._broadcast(session, roster, stanza, returning=returning)

    # Internals

    def _changed(self, session: Session, state: ResourcePresence | None) -> None:
        if not self._bus.has(topics.RESOURCE_PRESENCE):
            return
        if state is None:
            event = PresenceChanged(session, None)
        else:
            event = PresenceChanged(session, state.stanza, state.priority, state.state)
        self._bus.notify_sync(topics.RESOURCE_PRESENCE, event)

    def _broadcast(
        self, session: Session, roster: Roster, stanza: Element, *, returning: bool = False
    ) -> None:
        """RFC 6121 sections 4.2.2 and 4.4.2: to every contact with a subscription from the
        user, and to all of the user's own available resources (the sender included).

        `returning`: the user had no resource available. Contacts shown the automation's
        presence, which comes from the bare JID, see it withdrawn from that JID before the real
        presence arrives from the full one; otherwise their clients keep both."""
        user = session.jid.bare
        audience = self._audience(user, roster)
        if returning and self.offline_presence(user) is not None:
            withdrawn = element("presence", {"type": "unavailable", "from": str(user)})
            for bare in audience:
                self._deliver_to_available(bare, withdrawn)
        for bare in audience:
            self._deliver_to_available(bare, stanza)
        self._deliver_to_available(user, stanza)

    def _audience(self, user: JID, roster: Roster) -> set[JID]:
        """The contacts that receive the user's presence broadcasts: none while the user
        appears offline."""
        others = self._subscribers(user, roster)
        return set() if self.appears_offline(user) else others

    def _subscribers(self, user: JID, roster: Roster) -> set[JID]:
        """The contacts that may receive the user's presence, as the filters leave them."""
        audience = Audience(user, _contacts(roster, SENDS_TO))
        self._bus.fire_sync(topics.PRESENCE_AUDIENCE, audience)
        return audience.others

    def _to_subscribers(self, user: JID, roster: Roster, stanza: Element) -> set[JID]:
        others = self._audience(user, roster)
        for bare in others:
            self._deliver_to_available(bare, stanza)
        return others

    def _addressed(self, stanza: Element, to: str) -> bytes:
        """The stanza serialised for `to`: without XEP-0319 idle time when the recipient hides
        their own last seen."""
        if self._last_seen_hidden and to.partition("@")[0] in self._last_seen_hidden:
            stanza = self._without_idle(stanza)
        return _addressed(stanza, to)

    def _without_idle(self, stanza: Element) -> Element:
        # A broadcast sends the same stanza to each such recipient: it is looked at, and
        # stripped if need be, once for them all.
        if self._stripped is None or self._stripped[0] is not stanza:
            has_idle = stanza.find(IDLE) is not None
            self._stripped = (stanza, without_idle(stanza) if has_idle else stanza)
        return self._stripped[1]

    def _deliver_to_available(self, bare: JID, stanza: Element) -> int:
        recipients = self.available(bare)
        if recipients:
            data = self._addressed(stanza, str(bare))
            sender = stanza.get("from", "")
            for recipient, _ in recipients:
                recipient.send_presence(data, sender)
            self._metrics.presence_deliveries.inc(len(recipients))
        return len(recipients)

    def _send_presence_of(self, contact: JID, session: Session) -> int:
        to = str(session.jid)
        resources = self.shown(contact, session.jid)
        for other, state in resources:
            if other is not session:
                session.send_presence(self._addressed(state.stanza, to), str(other.jid))
        return len(resources)

    def _answer_probes(self, session: Session, roster: Roster) -> None:
        """The server probes on the user's behalf, answering from memory (RFC 6121 4.2.2)."""
        user = session.jid.bare
        to = str(session.jid)
        view = Audience(user, _contacts(roster, SEES))
        self._bus.fire_sync(topics.PRESENCE_VIEW, view)
        for bare in view.others:
            if not self._send_presence_of(bare, session):
                offline = self.offline_presence(bare)
                if offline is not None:
                    session.send_presence(self._addressed(offline, to), str(bare))
        self._send_presence_of(user, session)

    def _go_unavailable(self, session: Session, stanza: Element, *, quietly: bool = False) -> None:
        state = self._available.pop(session, None)
        if state is None:
            return
        self._changed(session, None)
        user = session.jid.bare
        last = not self.available(user)
        if not quietly:
            self._bus.notify_sync(
                topics.RESOURCE_UNAVAILABLE, ResourceUnavailable(session, stanza, last)
            )
        assert user.local is not None
        roster = self._rosters.cached(user.local)
        told: set[JID] = set()
        if roster is not None:
            told = self._to_subscribers(user, roster, stanza)
            if last and not quietly:
                offline = self.offline_presence(user)
                if offline is not None:
                    self._to_subscribers(user, roster, offline)
        self._deliver_to_available(user, stanza)
        directed = [recipient for recipient in state.directed if recipient.bare not in told]
        if directed:
            # The server sends these on the user's behalf, through the same audience filters.
            audience = Audience(user, {recipient.bare for recipient in directed})
            self._bus.fire_sync(topics.PRESENCE_AUDIENCE, audience)
            for recipient in directed:
                if recipient.bare in audience.others:
                    self._deliver_directed(recipient, stanza)

    def _directed(self, session: Session, stanza: Element, target: JID) -> object:
        """RFC 6121 section 4.6: presence to one entity, remembered so that it also gets the
        unavailable presence when the user goes offline. Delivery is the `presence/in/*`
        event's, which the router fires next."""
        if target.domain != self._domain:
            raise StanzaError("remote-server-not-found", "Only local addresses are served")
        if stanza.get("type") is None:
            rich_states.normalise(stanza)
        state = self._available.get(session)
        if state is not None:
            if stanza.get("type") == "unavailable":
                state.directed.discard(target)
            else:
                state.directed.add(target)
        return None

    def _deliver_directed(self, target: JID, stanza: Element) -> None:
        if target.resource is None:
            self._deliver_to_available(target, stanza)
            return
        recipient = self._sessions.get(target)
        # Presence for a full JID that is not online is silently ignored (RFC 6121 8.5.3.2.1).
        if recipient is not None:
            recipient.send_presence(self._addressed(stanza, str(target)), stanza.get("from", ""))

    def _deliver_error(self, target: JID, stanza: Element) -> None:
        """A presence error, delivered as presence of no type is: to every available resource
        of a bare JID (RFC 6121 section 8.5.2.1.2), or to the full JID's session (8.5.3.1);
        silently ignored when there is none. Sent at once, its 'to' as addressed: it is no
        presence update for client state indication (XEP-0352) to condense with others."""
        if target.resource is None:
            recipients = [session for session, _ in self.available(target)]
        else:
            session = self._sessions.get(target)
            recipients = [session] if session is not None else []
        if recipients:
            data = serialize(stanza)
            for recipient in recipients:
                recipient.send_bytes(data)


def without_idle(presence: Element) -> Element:
    """A copy of the presence with no XEP-0319 idle time; the original is left as it is."""
    stripped = copy.deepcopy(presence)
    for node in stripped.findall(IDLE):
        stripped.remove(node)
    return stripped


def _contacts(roster: Roster, subscriptions: frozenset[str]) -> set[JID]:
    """The roster's contacts whose subscription is one of `subscriptions`."""
    return {
        JID.parse(contact)
        for contact, item in roster.items.items()
        if item.subscription in subscriptions
    }


class _LastSerialised:
    """The most recent stanza serialised without 'to', split where 'to' goes in.

    A broadcast addresses one stanza to every recipient in turn; this makes that one
    serialisation plus a byte join per recipient. Stored presence is never changed after it is
    first sent, and the cache holds its stanza, so the identity check is safe.
    """

    stanza: Element | None = None
    head = b""
    tail = b""


def _addressed(stanza: Element, to: str) -> bytes:
    """The stanza serialised with `to`, leaving the stored original unaddressed."""
    previous = stanza.get("to")
    if previous is not None:
        stanza.set("to", to)
        try:
            return serialize(stanza)
        finally:
            stanza.set("to", previous)
    cache = _LastSerialised
    if cache.stanza is not stanza:
        data = serialize(stanza)
        # Right after the element name: '<presence' + ' to="..."' + ' xmlns=...>'.
        split = next(i for i in range(1, len(data)) if data[i] in b" />")
        cache.stanza, cache.head, cache.tail = stanza, data[:split], data[split:]
    return b"".join((cache.head, b' to="', _escape_attribute(to), b'"', cache.tail))


def _escape_attribute(value: str) -> bytes:
    if "&" in value or "<" in value or '"' in value:
        value = value.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;")
    return value.encode()


def _priority(stanza: Element) -> int:
    text = stanza.findtext(PRIORITY)
    if text is None:
        return 0
    try:
        value = int(text.strip())
    except ValueError:
        value = None
    if value is None or not -128 <= value <= 127:
        raise StanzaError("bad-request", "Priority must be an integer from -128 to 127")
    return value
