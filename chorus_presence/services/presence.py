"""Presence (RFC 6121 section 4): initial presence, broadcast, probes, directed presence,
unavailable, priority, and each user's effective state.

Everything here works from memory: each available resource's last presence lives in this
service, and the rosters of online users are cached by the roster service, so a presence update
never touches the database. Blocks (XEP-0191) are asked of `ctx.router.blocked`; what a user
with no online resource looks like (plain unavailable, or the automation's "Not logged in") is
asked of `offline_presence`.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from chorus_presence.server.context import ServerContext
from chorus_presence.services import rich_states
from chorus_presence.services.subscription_states import SEES, SENDS_TO
from chorus_presence.storage.rosters import Roster
from chorus_presence.xmpp import namespaces as ns
from chorus_presence.xmpp.errors import StanzaError
from chorus_presence.xmpp.jid import JID
from chorus_presence.xmpp.stanza import Element, element, serialize

log = logging.getLogger(__name__)

PRIORITY = ns.qname(ns.CLIENT, "priority")

InitialPresenceHook = Callable[[object], Awaitable[None]]
OfflinePresence = Callable[[JID], Element | None]


@dataclass(slots=True)
class ResourcePresence:
    """An available resource: its last presence (from stamped, no 'to'), priority and state."""

    stanza: Element
    priority: int
    state: str
    # Orders presence changes across resources: the highest is the user's latest choice.
    sequence: int
    directed: set[JID] = field(default_factory=set)


def _no_offline_presence(_user: JID) -> Element | None:
    return None


class PresenceService:
    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx
        self._available: dict[object, ResourcePresence] = {}
        # Sessions whose connection dropped but may resume (XEP-0198), with their last presence.
        self._suspended: dict[object, ResourcePresence] = {}
        self._sequence = itertools.count(1)
        self.on_initial_presence: list[InitialPresenceHook] = []
        # Told of each resource that stops being available, with its unavailable presence.
        self.on_resource_unavailable: list[Callable[[object, Element], None]] = []
        # What contacts see of a user with no available resource, instead of unavailable.
        self.offline_presence: OfflinePresence = _no_offline_presence

    # Queries used by other services

    def is_available(self, session: object) -> bool:
        return session in self._available

    def available(self, bare: JID) -> list[tuple[object, ResourcePresence]]:
        found = []
        for session in self.ctx.sessions.of_account(bare):
            state = self._available.get(session)
            if state is not None:
                found.append((session, state))
        return found

    def effective_state(self, bare: JID) -> str:
        """The state of the user's most recently changed available resource, or 'offline'."""
        resources = self.available(bare)
        if not resources:
            return rich_states.OFFLINE
        return max(resources, key=lambda pair: pair[1].sequence)[1].state

    def blocked_either(self, first: JID, second: JID) -> bool:
        return self.ctx.router.blocked_either(first, second)

    # Stanza handlers

    async def on_available(self, session, stanza: Element, target: JID | None) -> None:
        started = time.perf_counter()
        priority = _priority(stanza)
        if target is not None:
            self._directed(session, stanza, target)
            return
        state_name = rich_states.normalise(stanza)
        owner = session.jid.local
        roster = await self.ctx.rosters.roster(owner)
        stanza.attrib.pop("to", None)
        state = self._available.get(session)
        initial = state is None
        sequence = next(self._sequence)
        if state is None:
            state = self._available[session] = ResourcePresence(
                stanza, priority, state_name, sequence
            )
        else:
            state.stanza, state.priority = stanza, priority
            state.state, state.sequence = state_name, sequence
        self._broadcast(session, roster, stanza)
        self.ctx.metrics.presence_latency.observe(time.perf_counter() - started)
        if initial:
            self._answer_probes(session, roster)
            for hook in self.on_initial_presence:
                await hook(session)

    async def on_unavailable(self, session, stanza: Element, target: JID | None) -> None:
        if target is not None:
            self._directed(session, stanza, target)
            return
        stanza.attrib.pop("to", None)
        self._go_unavailable(session, stanza)

    async def on_probe(self, session, stanza: Element, target: JID | None) -> None:
        """A probe sent by a client: answered only for contacts the user may see."""
        if target is None:
            raise StanzaError("bad-request", "A probe needs a 'to' address")
        contact, user = target.bare, session.jid.bare
        if contact != user:
            roster = await self.ctx.rosters.roster(session.jid.local)
            item = roster.items.get(str(contact))
            if item is None or item.subscription not in SEES or self.blocked_either(user, contact):
                return
        if not self._send_presence_of(contact, session):
            offline = self.offline_presence(contact)
            if offline is None:
                offline = element("presence", {"from": str(contact), "type": "unavailable"})
            session.send_bytes(_addressed(offline, str(session.jid)))

    async def on_error(self, session, stanza: Element, target: JID | None) -> None:
        """Presence errors from clients answer presence this server generated; nothing to do."""

    async def session_ended(self, session) -> None:
        self._suspended.pop(session, None)
        if session in self._available:
            unavailable = element("presence", {"type": "unavailable", "from": str(session.jid)})
            self._go_unavailable(session, unavailable)

    def suspend(self, session) -> None:
        """A dropped session that may still resume: contacts see it go unavailable now."""
        state = self._available.get(session)
        if state is None:
            return
        self._suspended[session] = state
        unavailable = element("presence", {"type": "unavailable", "from": str(session.jid)})
        self._go_unavailable(session, unavailable)

    def resume(self, session) -> None:
        """A resumed session shows its presence again, and learns what it missed."""
        state = self._suspended.pop(session, None)
        if state is None:
            return
        state.sequence = next(self._sequence)
        self._available[session] = state
        roster = self.ctx.rosters.cached(session.jid.local)
        if roster is not None:
            self._broadcast(session, roster, state.stanza)
            self._answer_probes(session, roster)

    # Changes of subscription or blocks, called by the services that committed them

    def visibility_changed(self, watcher: JID, contact: JID, *, can_see: bool) -> None:
        """`watcher` started or stopped seeing `contact`: tell the watcher's resources now."""
        watchers = [session for session, _ in self.available(watcher)]
        if not watchers:
            return
        resources = self.available(contact)
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
            for watcher_session in watchers:
                watcher_session.send_presence(
                    _addressed(presence, str(watcher_session.jid)), presence.get("from")
                )

    async def rebroadcast_offline(self, user: JID) -> None:
        """Send contacts what they should now see of `user` while offline (the automation
        setting changed)."""
        if self.available(user):
            return
        presence = self.offline_presence(user)
        if presence is None:
            presence = element("presence", {"type": "unavailable", "from": str(user)})
        self._to_subscribers(user, await self.ctx.rosters.roster(user.local), presence)

    # Internals

    def _broadcast(self, session, roster: Roster, stanza: Element) -> None:
        """RFC 6121 sections 4.2.2 and 4.4.2: to every contact with a subscription from the
        user, and to all of the user's own available resources (the sender included)."""
        self._to_subscribers(session.jid.bare, roster, stanza)
        self._deliver_to_available(session.jid.bare, stanza)

    def _to_subscribers(self, user: JID, roster: Roster, stanza: Element) -> set[JID]:
        told = set()
        for contact, item in roster.items.items():
            if item.subscription in SENDS_TO:
                bare = JID.parse(contact)
                if not self.blocked_either(user, bare):
                    told.add(bare)
                    self._deliver_to_available(bare, stanza)
        return told

    def _deliver_to_available(self, bare: JID, stanza: Element) -> int:
        recipients = self.available(bare)
        if recipients:
            data = _addressed(stanza, str(bare))
            sender = stanza.get("from")
            for recipient, _ in recipients:
                recipient.send_presence(data, sender)
            self.ctx.metrics.presence_deliveries.inc(len(recipients))
        return len(recipients)

    def _send_presence_of(self, contact: JID, session) -> int:
        to = str(session.jid)
        resources = self.available(contact)
        for other, state in resources:
            if other is not session:
                session.send_presence(_addressed(state.stanza, to), str(other.jid))
        return len(resources)

    def _answer_probes(self, session, roster: Roster) -> None:
        """The server probes on the user's behalf, answering from memory (RFC 6121 4.2.2)."""
        user = session.jid.bare
        to = str(session.jid)
        for contact, item in roster.items.items():
            if item.subscription not in SEES:
                continue
            bare = JID.parse(contact)
            if self.blocked_either(user, bare):
                continue
            if not self._send_presence_of(bare, session):
                offline = self.offline_presence(bare)
                if offline is not None:
                    session.send_presence(_addressed(offline, to), contact)
        self._send_presence_of(user, session)

    def _go_unavailable(self, session, stanza: Element) -> None:
        state = self._available.pop(session, None)
        if state is None:
            return
        for hook in self.on_resource_unavailable:
            hook(session, stanza)
        user = session.jid.bare
        roster = self.ctx.rosters.cached(user.local)
        told: set[JID] = set()
        if roster is not None:
            told = self._to_subscribers(user, roster, stanza)
            if not self.available(user):
                offline = self.offline_presence(user)
                if offline is not None:
                    self._to_subscribers(user, roster, offline)
        self._deliver_to_available(user, stanza)
        for recipient in state.directed:
            if recipient.bare not in told:
                self._deliver_directed(user, recipient, stanza)

    def _directed(self, session, stanza: Element, target: JID) -> None:
        """RFC 6121 section 4.6: presence to one entity, remembered so that it also gets the
        unavailable presence when the user goes offline."""
        if target.domain != self.ctx.domain:
            raise StanzaError("remote-server-not-found", "Only local addresses are served")
        if stanza.get("type") is None:
            rich_states.normalise(stanza)
        self._deliver_directed(session.jid.bare, target, stanza)
        state = self._available.get(session)
        if state is None:
            return
        if stanza.get("type") == "unavailable":
            state.directed.discard(target)
        else:
            state.directed.add(target)

    def _deliver_directed(self, sender: JID, target: JID, stanza: Element) -> None:
        if self.blocked_either(sender, target.bare):
            return
        if target.resource is None:
            self._deliver_to_available(target, stanza)
            return
        recipient = self.ctx.sessions.get(target)
        # Presence for a full JID that is not online is silently ignored (RFC 6121 8.5.3.2.1).
        if recipient is not None:
            recipient.send_presence(_addressed(stanza, str(target)), stanza.get("from"))


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


def setup(ctx: ServerContext) -> PresenceService:
    service = PresenceService(ctx)
    ctx.presence = service
    ctx.router.on_presence((None,), service.on_available)
    ctx.router.on_presence(("unavailable",), service.on_unavailable)
    ctx.router.on_presence(("probe",), service.on_probe)
    ctx.router.on_presence(("error",), service.on_error)
    ctx.on_session_end.append(service.session_ended)
    return service
