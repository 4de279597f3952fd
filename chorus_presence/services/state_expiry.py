"""A status that clears itself: a state or custom text set with an expiry, after which the
server reverts the user to Available with no text, or to what the user's quiet hours say then.

On the wire the expiry is the `until` attribute of `<state xmlns='urn:chorus:presence:0'>`, a
UTC XEP-0082 datetime, which contacts see. A client asks for one with `until` itself or with
`for`: an ISO 8601 duration (`PT30M`) or `today` / `this-week`, which end at midnight of the
user's day or at the end of Sunday in the user's time zone (a setting of its own, IANA name,
UTC by default). The server turns `for` into `until` before the presence goes anywhere.

Each available resource whose presence carries an `until` is remembered with it; a presence of
its own without one (a later change, an automatic away) takes it off. When the time comes, every
such resource gets the presence it had with the state and text replaced by those `revert_to`
gives for the user at that time (Available and no text unless quiet hours say otherwise),
through `PresenceService.replace_presence`, so contacts hear of it through the same audience
filters (visibility, blocks) as a change set by hand. One timer, for the earliest expiry of a
heap, serves every user: no per-user polling.

The user's latest expiring state is stored, so that it survives a restart: at start-up what has
passed is dropped (nobody is online yet to be reverted), the rest is scheduled again; and a
resource's initial presence that says nothing of its own (no `<state>`, `<show>` or `<status>`)
takes on the stored state, text and `until` while it is in force, read from storage so that
in a cluster what another node set or ended meanwhile counts. A later presence change of
the user without an expiry, or the expiry itself, drops the stored row.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import re
import zoneinfo
from collections import Counter
from collections.abc import Callable

from chorus_presence.core import topics
from chorus_presence.core.background import BackgroundWork
from chorus_presence.core.bus import Bus
from chorus_presence.core.clock import Clock
from chorus_presence.core.deadlines import Deadlines
from chorus_presence.core.events import (
    AccountRemoved,
    DiscoFeatures,
    IqRequest,
    PresenceChanged,
    StanzaEvent,
)
from chorus_presence.core.session import Session
from chorus_presence.services import rich_states
from chorus_presence.services.presence import PresenceService
from chorus_presence.storage.interfaces import SettingsStore, StateExpiryStore
from chorus_presence.storage.state_expiry import ExpiringState
from chorus_presence.xmpp import namespaces as ns
from chorus_presence.xmpp.errors import StanzaError
from chorus_presence.xmpp.jid import JID
from chorus_presence.xmpp.stanza import Element, child, element

FEATURE = f"{ns.CHORUS_PRESENCE}#expiry"
TIME_ZONE = ns.qname(ns.CHORUS_PRESENCE, "time-zone")
UNTIL = "until"
FOR = "for"
TODAY = "today"
THIS_WEEK = "this-week"
# The furthest a status may be set to clear itself: a year and a day.
MAX_SECONDS = 366 * 86400
# Before PresenceService (0) on `presence/out`, after the filters: `for` becomes `until`, and a
# returning resource's plain presence takes on the stored state, before anyone sees it.
PREPARE_PRIORITY = 10
# What a user reverts to at a time: a state and its text.
RevertTo = Callable[[str, float], tuple[str, str | None]]
# Told of the user and the new zone name once a time zone setting is stored.
ZoneChanged = Callable[[str, str], None]
_DURATION = re.compile(
    r"P(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?"
)


class StateExpiryService:
    def __init__(
        self,
        store: StateExpiryStore,
        settings: SettingsStore,
        presence: PresenceService,
        background: BackgroundWork,
        clock: Clock,
        *,
        domain: str,
        revert_to: RevertTo | None = None,
        zone_changed: ZoneChanged | None = None,
    ) -> None:
        self._store = store
        self._revert_to = revert_to or _available
        self._zone_changed = zone_changed
        self._settings = settings
        self._presence = presence
        self._background = background
        self._clock = clock
        self._domain = domain
        # Each available local resource whose presence ends, with when.
        self._resources: dict[Session, int] = {}
        # Each user's stored expiring state, as storage holds it (or is about to).
        self._stored: dict[str, ExpiringState] = {}
        # Owners with a write of theirs still on its way to storage: memory is ahead of it.
        self._writing: Counter[str] = Counter()
        # When each user has something that ends. Entries stay when a state changes; what
        # is due is checked against the current state when it comes up.
        self._deadlines = Deadlines(clock, self._fire)
        # Resources being reverted by the server: their new presence is no choice of the
        # user's, so it leaves another resource's stored expiring state alone.
        self._reverting: set[Session] = set()

    @classmethod
    async def load(
        cls,
        store: StateExpiryStore,
        settings: SettingsStore,
        presence: PresenceService,
        background: BackgroundWork,
        clock: Clock,
        *,
        domain: str,
        revert_to: RevertTo | None = None,
        zone_changed: ZoneChanged | None = None,
    ) -> StateExpiryService:
        """The service with the stored expiring states: those that passed while the server was
        down are dropped, so nobody's next login brings back a stale state."""
        service = cls(
            store,
            settings,
            presence,
            background,
            clock,
            domain=domain,
            revert_to=revert_to,
            zone_changed=zone_changed,
        )
        now = clock.now()
        for expiring in await store.all():
            if expiring.until <= now:
                await store.remove(expiring.owner)
            else:
                service._stored[expiring.owner] = expiring
                service._deadlines.add(expiring.until, expiring.owner)
        return service

    def subscribe(self, bus: Bus) -> None:
        bus.on(topics.PRESENCE_OUT, self.prepare, priority=PREPARE_PRIORITY)
        bus.on(topics.RESOURCE_PRESENCE, self.presence_changed)
        bus.on(topics.ACCOUNT_REMOVED, self.account_removed)
        bus.on(topics.SERVER_STOPPING, self.server_stopping)
        bus.on(topics.DISCO_FEATURES, _features)
        bus.on(topics.iq("get", "bare", TIME_ZONE), self._get_time_zone)
        bus.on(topics.iq("set", "bare", TIME_ZONE), self._set_time_zone)
        self._deadlines.start()

    # What a client sends

    async def prepare(self, event: StanzaEvent) -> None:
        """An available presence of a resource, before the presence service takes it."""
        stanza = event.stanza
        if stanza.get("type") is not None or event.target is not None:
            return
        state = stanza.find(rich_states.STATE)
        owner = event.session.jid.local
        assert owner is not None
        if state is not None and (state.get(FOR) is not None or state.get(UNTIL) is not None):
            until = await self.resolve(
                owner, until=state.attrib.pop(UNTIL, None), period=state.attrib.pop(FOR, None)
            )
            state.set(UNTIL, format_until(until))
            return
        if state is None and not self._presence.is_available(event.session):
            await self._restore(owner, stanza)

    async def _restore(self, owner: str, stanza: Element) -> None:
        if not self._writing[owner]:
            # Storage says what is in force: another node of a cluster may have set or ended
            # it since this one last knew.
            found = await self._store.get(owner)
            if found is None:
                self._stored.pop(owner, None)
            else:
                self._stored[owner] = found
        stored = self._stored.get(owner)
        if stored is None or stored.until <= self._clock.now():
            return
        if stanza.find(rich_states.SHOW) is not None or stanza.find(rich_states.STATUS) is not None:
            return
        child(
            stanza,
            "state",
            {UNTIL: format_until(stored.until)},
            namespace=ns.CHORUS_PRESENCE,
            text=stored.state,
        )
        if stored.status is not None:
            child(stanza, "status", text=stored.status)

    async def resolve(
        self, owner: str, *, until: str | None = None, period: str | None = None
    ) -> int:
        """When a status asked to end at `until` (an XEP-0082 datetime) or after `period` (a
        duration, `today` or `this-week`) ends, in whole seconds since the epoch; exactly one
        of them is given. `StanzaError` for anything else, or a time past or too far."""
        if (until is None) == (period is None):
            raise StanzaError("bad-request", "Give either 'until' or 'for', not both")
        now = self._clock.now()
        if until is not None:
            at = parse_datetime(until)
        elif period in (TODAY, THIS_WEEK):
            zone = (await self._settings.get(owner)).time_zone
            at = end_of(period, now, zone)
        else:
            assert period is not None
            at = now + parse_duration(period)
        if at <= now:
            raise StanzaError("not-acceptable", "The status would end in the past")
        if at - now > MAX_SECONDS:
            raise StanzaError("not-acceptable", "A status can be set to end within 366 days")
        return math.ceil(at)

    # Presence as it now stands

    def presence_changed(self, event: PresenceChanged) -> None:
        session = event.session
        owner = session.jid.local
        assert owner is not None
        if event.stanza is None:
            # The resource went away; the stored state stays for the user's next login.
            self._resources.pop(session, None)
            return
        state = event.stanza.find(rich_states.STATE)
        text = state.get(UNTIL) if state is not None else None
        if text is None:
            self._resources.pop(session, None)
            if owner in self._stored and session not in self._reverting:
                del self._stored[owner]
                self._persist(owner)
            return
        until = math.ceil(parse_datetime(text))
        self._resources[session] = until
        status = event.stanza.findtext(rich_states.STATUS)
        if status == rich_states.STATES[event.state].default_status:
            status = None
        expiring = ExpiringState(owner, event.state, status, until)
        if self._stored.get(owner) != expiring:
            self._stored[owner] = expiring
            self._persist(owner)
        self._deadlines.add(until, owner)

    def account_removed(self, event: AccountRemoved) -> None:
        # The stored row went with the account, by cascade.
        assert event.user.local is not None
        self._stored.pop(event.user.local, None)

    def server_stopping(self, _event: object) -> None:
        """No expiry is applied while the server stops: it applies at the next start."""
        self._deadlines.stop()

    # The timer

    def _fire(self, entries: list[tuple[float, str]], _now: float) -> None:
        for owner in sorted({user for _, user in entries}):
            self._background.run(self._expire(owner))

    async def _expire(self, owner: str) -> None:
        """Revert each of the user's resources whose state has ended, and forget the stored
        state once it has."""
        now = self._clock.now()
        stored = self._stored.get(owner)
        if stored is not None and stored.until <= now:
            del self._stored[owner]
            self._persist(owner)
        for session, resource in self._presence.available(JID(owner, self._domain)):
            until = self._resources.get(session)
            if until is None or until > now:
                continue
            del self._resources[session]
            reverted = rich_states.with_state(resource.stanza, *self._revert_to(owner, now))
            self._reverting.add(session)
            try:
                await self._presence.replace_presence(session, reverted)
            finally:
                self._reverting.discard(session)

    def _persist(self, owner: str) -> None:
        """Bring the owner's row in line with memory. Each write stores what memory holds when
        it runs, so writes finishing out of order still leave the latest."""
        self._writing[owner] += 1
        self._background.run(self._write(owner))

    async def _write(self, owner: str) -> None:
        try:
            expiring = self._stored.get(owner)
            if expiring is None:
                await self._store.remove(owner)
            else:
                await self._store.put(expiring)
        finally:
            self._writing[owner] -= 1
            if not self._writing[owner]:
                del self._writing[owner]

    # The time zone setting

    async def _get_time_zone(self, request: IqRequest) -> Element:
        owner = request.own_account("settings")
        return request.reply(time_zone_element((await self._settings.get(owner)).time_zone))

    async def _set_time_zone(self, request: IqRequest) -> Element:
        owner = request.own_account("settings")
        name = checked_time_zone(request.payload.get("name") or "")
        await self._settings.update(owner, time_zone=name)
        if self._zone_changed is not None:
            self._zone_changed(owner, name)
        return request.reply(time_zone_element(name))


def _available(_owner: str, _at: float) -> tuple[str, str | None]:
    return ("available", None)


def _features(event: DiscoFeatures) -> None:
    event.features.add(FEATURE)


def time_zone_element(name: str) -> Element:
    return element("time-zone", {"name": name}, namespace=ns.CHORUS_PRESENCE)


@functools.cache
def _zone_names() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def checked_time_zone(name: str) -> str:
    """An IANA time zone name as given; `StanzaError` for anything zoneinfo does not know."""
    name = name.strip()
    if name not in _zone_names():
        raise StanzaError("bad-request", f"'{name}' is not an IANA time zone name")
    return name


def parse_datetime(text: str) -> float:
    """An XEP-0082 datetime (its zone designator required) as seconds since the epoch."""
    try:
        parsed = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise StanzaError(
            "bad-request", f"'{text}' is not a datetime with a zone, such as 2026-05-04T14:30:00Z"
        )
    return parsed.timestamp()


def parse_duration(text: str) -> float:
    """An ISO 8601 duration in weeks, days, hours, minutes and seconds (`PT30M`, `P1DT2H`), in
    seconds; `StanzaError` for anything else, or nothing."""
    match = _DURATION.fullmatch(text.strip())
    if match is None or not any(match.groupdict().values()) or text.strip().endswith("T"):
        raise StanzaError(
            "bad-request",
            f"'{text}' is not a duration such as PT30M, nor {TODAY} or {THIS_WEEK}",
        )
    parts = {name: float(value) for name, value in match.groupdict().items() if value}
    return (
        parts.get("weeks", 0) * 604800
        + parts.get("days", 0) * 86400
        + parts.get("hours", 0) * 3600
        + parts.get("minutes", 0) * 60
        + parts.get("seconds", 0)
    )


def end_of(period: str, now: float, zone_name: str) -> float:
    """The next midnight in the zone (`today`), or the midnight that ends Sunday
    (`this-week`), as seconds since the epoch; daylight-saving changes are the zone's."""
    zone = zoneinfo.ZoneInfo(zone_name)
    local = dt.datetime.fromtimestamp(now, zone)
    days = 1 if period == TODAY else 7 - local.weekday()
    midnight = dt.datetime.combine(local.date() + dt.timedelta(days=days), dt.time(), zone)
    return midnight.timestamp()


def format_until(seconds: float) -> str:
    """Seconds since the epoch as an XEP-0082 UTC datetime, to the second."""
    return dt.datetime.fromtimestamp(math.ceil(seconds), dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
