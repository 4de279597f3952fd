"""Quiet hours: each user's weekly schedule of states in the user's time zone (weekdays
18:00-08:00 and all weekend in Do Not Disturb), which the server applies at its boundaries.

A schedule is a list of slots, each a set of weekdays it starts on, a local start and end time
(an end at or before the start is the next day's; `24:00` ends the day), one of the six states
and optional text. Slots may overlap only where they say the same (state and text): there they
are one stretch, so `mon-fri 18:00-08:00` and `sat-sun 00:00-24:00` keep a user in Do Not
Disturb from Friday evening to Monday morning. Slots that overlap saying different things are
refused. Local times become instants through `zoneinfo` as RFC 5545 reads them: a time the
clocks skip (02:30 on the night of spring-forward) is read with the offset before the gap, so
it falls an hour later on the wall clock (03:30); a time that happens twice is its first
occurrence, so a boundary in the repeated hour happens once.

A boundary is an instant where what the schedule says changes. There every available resource
of the user gets its presence with the scheduled state and text (Available and no text outside
every slot), through `PresenceService.replace_presence`, so contacts hear of it through the
same audience filters (visibility, blocks) as a change set by hand. A state set by hand in
between stays until the next boundary. One timer, for the earliest boundary of a heap, serves
every user: no per-user polling. A resource's initial presence that says nothing of its own
(no `<state>`, `<show>` or `<status>`) takes on the state in force, and `state_at` tells a
status that clears itself what to revert to.

Schedules are stored (`QuietHoursStore`), so they hold across restarts; the rows go with the
account. In a cluster each node applies the schedules to its own resources; a change on one
node (`QuietHoursChanged`, announced by the cluster) makes the others read the user's schedule
and time zone again.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from collections.abc import Callable, Iterable, Iterator

from chorus_presence.core import topics
from chorus_presence.core.background import BackgroundWork
from chorus_presence.core.bus import Bus
from chorus_presence.core.clock import Clock
from chorus_presence.core.deadlines import Deadlines
from chorus_presence.core.events import (
    AccountRemoved,
    DiscoFeatures,
    IqRequest,
    QuietHoursChanged,
    StanzaEvent,
)
from chorus_presence.core.sessions import SessionRegistry
from chorus_presence.services import rich_states
from chorus_presence.services.presence import PresenceService, without_idle
from chorus_presence.storage.interfaces import QuietHoursStore, SettingsStore
from chorus_presence.storage.quiet_hours import QuietSlot
from chorus_presence.xmpp import namespaces as ns
from chorus_presence.xmpp.errors import StanzaError
from chorus_presence.xmpp.jid import JID
from chorus_presence.xmpp.stanza import Element, child, element

FEATURE = f"{ns.CHORUS_PRESENCE}#quiet-hours"
QUIET_HOURS = ns.qname(ns.CHORUS_PRESENCE, "quiet-hours")
SLOT = ns.qname(ns.CHORUS_PRESENCE, "slot")
MAX_SLOTS = 50
DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
EVERY_DAY = "daily"
ALL_DAYS = 0b1111111
DAY_MINUTES = 1440
WEEK_MINUTES = 7 * DAY_MINUTES
# After StateExpiry (10) on `presence/out`, which restores a stored state of the user's own
# first: a login's plain presence takes on the schedule only when nothing else said a state.
PREPARE_PRIORITY = 9
# Around an instant, the days whose slots can reach it or its next boundary: two before, for
# a slot that started the day before and crossed midnight, and a week and a day after.
_DAYS_BEFORE, _DAYS_AFTER = 2, 9
_TIME = re.compile(r"(\d{1,2}):(\d{2})")

# What the schedule says at an instant: a state and its text, or None outside every slot.
Scheduled = tuple[str, str | None] | None
AVAILABLE: tuple[str, str | None] = ("available", None)


class QuietHoursService:
    def __init__(
        self,
        store: QuietHoursStore,
        settings: SettingsStore,
        presence: PresenceService,
        sessions: SessionRegistry,
        background: BackgroundWork,
        clock: Clock,
        *,
        domain: str,
        stamp: Callable[[JID, Element, float], Element] | None = None,
    ) -> None:
        self._store = store
        self._settings = settings
        self._presence = presence
        self._sessions = sessions
        self._background = background
        self._clock = clock
        self._domain = domain
        # Adds XEP-0319 idle time to a presence the server makes (the last seen service's).
        self._stamp = stamp
        self._schedules: dict[str, list[QuietSlot]] = {}
        # The time zone of each user with a schedule, as the settings hold it.
        self._zones: dict[str, zoneinfo.ZoneInfo] = {}
        # Each user's next boundary; a deadline that is not it any more is passed over.
        self._next: dict[str, float] = {}
        self._deadlines = Deadlines(clock, self._fire)
        # Where this service tells the other nodes of a cluster of a change.
        self._bus: Bus | None = None

    @classmethod
    async def load(
        cls,
        store: QuietHoursStore,
        settings: SettingsStore,
        presence: PresenceService,
        sessions: SessionRegistry,
        background: BackgroundWork,
        clock: Clock,
        *,
        domain: str,
        stamp: Callable[[JID, Element, float], Element] | None = None,
    ) -> QuietHoursService:
        """The service with every stored schedule, each user's next boundary in its heap."""
        service = cls(
            store, settings, presence, sessions, background, clock, domain=domain, stamp=stamp
        )
        for owner, slots in (await store.all()).items():
            service._schedules[owner] = slots
            service._zones[owner] = zoneinfo.ZoneInfo((await settings.get(owner)).time_zone)
            service._plan(owner, clock.now())
        return service

    def subscribe(self, bus: Bus) -> None:
        self._bus = bus
        bus.on(topics.PRESENCE_OUT, self.prepare, priority=PREPARE_PRIORITY)
        bus.on(topics.QUIET_HOURS_CHANGED, self.changed_elsewhere)
        bus.on(topics.ACCOUNT_REMOVED, self.account_removed)
        bus.on(topics.SERVER_STOPPING, self.server_stopping)
        bus.on(topics.DISCO_FEATURES, _features)
        bus.on(topics.iq("get", "bare", QUIET_HOURS), self._get)
        bus.on(topics.iq("set", "bare", QUIET_HOURS), self._set)
        self._deadlines.start()

    # What others ask

    def schedule(self, owner: str) -> list[QuietSlot]:
        return list(self._schedules.get(owner, ()))

    def state_at(self, owner: str, at: float) -> tuple[str, str | None]:
        """The state and text the schedule gives the user at `at`: Available and no text
        outside every slot, or without a schedule."""
        return self._scheduled(owner, at) or AVAILABLE

    async def set_schedule(self, owner: str, slots: list[QuietSlot]) -> list[QuietSlot]:
        """Check and store the user's schedule (none when empty) and plan its boundaries. If it
        changes what is in force now, that applies at once, as at a boundary."""
        checked = checked_slots(slots)
        now = self._clock.now()
        before = self._scheduled(owner, now)
        await self._store.put(owner, checked)
        if checked:
            self._schedules[owner] = checked
            self._zones[owner] = zoneinfo.ZoneInfo((await self._settings.get(owner)).time_zone)
        else:
            self._schedules.pop(owner, None)
            self._zones.pop(owner, None)
        self._plan(owner, now)
        if self._scheduled(owner, now) != before:
            await self._apply(owner)
        self._tell(owner)
        return self.schedule(owner)

    def time_zone_changed(self, owner: str, name: str) -> None:
        """The user's time zone is now `name`: the boundaries move with it, and what is in force
        in the new zone applies at once if it differs."""
        if owner not in self._schedules:
            return
        now = self._clock.now()
        before = self._scheduled(owner, now)
        self._zones[owner] = zoneinfo.ZoneInfo(name)
        self._plan(owner, now)
        if self._scheduled(owner, now) != before:
            self._background.run(self._apply(owner))
        self._tell(owner)

    async def changed_elsewhere(self, event: QuietHoursChanged) -> None:
        """Another node changed the user's schedule or time zone: read both again, and apply
        what is now in force here if it differs, as that node did for its own resources."""
        if not event.elsewhere:
            return
        owner = event.owner
        now = self._clock.now()
        before = self._scheduled(owner, now)
        slots = await self._store.get(owner)
        if slots:
            self._schedules[owner] = slots
            self._zones[owner] = zoneinfo.ZoneInfo((await self._settings.get(owner)).time_zone)
        else:
            self._schedules.pop(owner, None)
            self._zones.pop(owner, None)
        self._plan(owner, now)
        if self._scheduled(owner, now) != before:
            await self._apply(owner)

    def _tell(self, owner: str) -> None:
        if self._bus is not None:
            changed = QuietHoursChanged(owner)
            self._background.run(self._bus.notify(topics.QUIET_HOURS_CHANGED, changed))

    # What a client sends

    def prepare(self, event: StanzaEvent) -> None:
        """A resource's initial presence that says nothing of its own takes on the state the
        schedule has in force."""
        stanza = event.stanza
        if stanza.get("type") is not None or event.target is not None:
            return
        if self._presence.is_available(event.session):
            return
        if any(stanza.find(tag) is not None for tag in _OWN_SAY):
            return
        owner = event.session.jid.local
        assert owner is not None
        scheduled = self._scheduled(owner, self._clock.now())
        if scheduled is None:
            return
        state, text = scheduled
        child(stanza, "state", namespace=ns.CHORUS_PRESENCE, text=state)
        if text is not None:
            child(stanza, "status", text=text)

    def account_removed(self, event: AccountRemoved) -> None:
        # The stored rows went with the account, by cascade.
        assert event.user.local is not None
        owner = event.user.local
        self._schedules.pop(owner, None)
        self._zones.pop(owner, None)
        self._next.pop(owner, None)

    def server_stopping(self, _event: object) -> None:
        """No boundary is applied while the server stops."""
        self._deadlines.stop()

    # The schedule in time

    def _scheduled(self, owner: str, at: float) -> Scheduled:
        slots = self._schedules.get(owner)
        if not slots:
            return None
        return _in_force(_occurrences(slots, self._zones[owner], at), at)

    def _next_boundary(self, owner: str, after: float) -> float | None:
        """The first instant after `after` where what the schedule says changes."""
        slots = self._schedules.get(owner)
        if not slots:
            return None
        spans = list(_occurrences(slots, self._zones[owner], after))
        said = _in_force(spans, after)
        for candidate in sorted({t for start, end, _ in spans for t in (start, end) if t > after}):
            if _in_force(spans, candidate) != said:
                return candidate
        return None

    def _plan(self, owner: str, after: float) -> None:
        at = self._next_boundary(owner, after)
        if at is None:
            self._next.pop(owner, None)
            return
        self._next[owner] = at
        self._deadlines.add(at, owner)

    def _fire(self, entries: list[tuple[float, str]], now: float) -> None:
        due = sorted({user for at, user in entries if self._next.get(user) == at})
        for owner in due:
            del self._next[owner]
            self._plan(owner, now)
            self._background.run(self._apply(owner))

    async def _apply(self, owner: str) -> None:
        """Give each of the user's available resources on this node what the schedule says now
        (another node's are its own to change)."""
        now = self._clock.now()
        state, text = self.state_at(owner, now)
        user = JID(owner, self._domain)
        for session, resource in self._presence.available(user):
            if self._sessions.is_remote(session):
                continue
            if resource.state == state and _custom_text(resource.stanza, state) == text:
                continue
            presence = rich_states.with_state(resource.stanza, state, text)
            if self._stamp is not None:
                # Contacts see since when the slot's state holds; Available says no idle time.
                presence = without_idle(presence)
                if state != "available":
                    self._stamp(user, presence, now)
            await self._presence.replace_presence(session, presence)

    # The IQ extension

    async def _get(self, request: IqRequest) -> Element:
        owner = request.own_account("quiet hours")
        return request.reply(schedule_element(self.schedule(owner)))

    async def _set(self, request: IqRequest) -> Element:
        owner = request.own_account("quiet hours")
        slots = [
            _slot_from_element(position, node)
            for position, node in enumerate(request.payload.iterfind(SLOT), 1)
        ]
        return request.reply(schedule_element(await self.set_schedule(owner, slots)))


_OWN_SAY = (rich_states.STATE, rich_states.SHOW, rich_states.STATUS)


def _features(event: DiscoFeatures) -> None:
    event.features.add(FEATURE)


def _custom_text(presence: Element, state: str) -> str | None:
    text = presence.findtext(rich_states.STATUS)
    return None if text == rich_states.STATES[state].default_status else text


def _occurrences(
    slots: Iterable[QuietSlot], zone: zoneinfo.ZoneInfo, around: float
) -> Iterator[tuple[float, float, tuple[str, str | None]]]:
    """Each slot's stretches, as instants, on the days around `around`."""
    today = dt.datetime.fromtimestamp(around, zone).date()
    for offset in range(-_DAYS_BEFORE, _DAYS_AFTER + 1):
        day = today + dt.timedelta(days=offset)
        for slot in slots:
            if not slot.days & (1 << day.weekday()):
                continue
            start = _instant(day, slot.start, zone)
            end_day = day if slot.end > slot.start else day + dt.timedelta(days=1)
            end = _instant(end_day, slot.end, zone)
            if end > start:
                yield start, end, (slot.state, slot.status)


def _instant(day: dt.date, minute: int, zone: zoneinfo.ZoneInfo) -> float:
    # fold=0: a skipped wall time takes the offset before the gap, a repeated one is its first.
    wall = dt.datetime.combine(day, dt.time()) + dt.timedelta(minutes=minute)
    return wall.replace(tzinfo=zone).timestamp()


def _in_force(spans: Iterable[tuple[float, float, tuple[str, str | None]]], at: float) -> Scheduled:
    # Where a daylight-saving shift makes two different stretches meet, the later one rules.
    found: tuple[float, tuple[str, str | None]] | None = None
    for start, end, said in spans:
        if start <= at < end and (found is None or start > found[0]):
            found = (start, said)
    return None if found is None else found[1]


# Checking and writing schedules


def checked_slots(slots: list[QuietSlot]) -> list[QuietSlot]:
    """The slots as given, or `StanzaError('bad-request')` naming the first that is wrong or
    that overlaps an earlier one saying something else."""
    if len(slots) > MAX_SLOTS:
        raise StanzaError("bad-request", f"At most {MAX_SLOTS} slots are allowed")
    for position, slot in enumerate(slots, 1):
        _check_slot(position, slot)
    spans = [(position, span) for position, s in enumerate(slots, 1) for span in _week_spans(s)]
    for i, (first, (a_start, a_end)) in enumerate(spans):
        for second, (b_start, b_end) in spans[i + 1 :]:
            one, other = slots[first - 1], slots[second - 1]
            if first == second or (one.state, one.status) == (other.state, other.status):
                continue
            if a_start < b_end and b_start < a_end:
                raise StanzaError(
                    "bad-request",
                    f"Slot {second} ({format_slot(other)}) overlaps slot {first}"
                    f" ({format_slot(one)}) with another state or text",
                )
    return list(slots)


def _check_slot(position: int, slot: QuietSlot) -> None:
    problem = None
    if not 0 < slot.days <= ALL_DAYS:
        problem = "no weekday"
    elif not 0 <= slot.start < DAY_MINUTES or not 0 <= slot.end <= DAY_MINUTES:
        problem = "a time outside 00:00-24:00"
    elif slot.start == slot.end:
        problem = "no length (for a whole day, 00:00-24:00)"
    elif slot.state not in rich_states.STATES:
        problem = f"the state '{slot.state}', not one of {', '.join(rich_states.STATES)}"
    elif slot.status is not None and len(slot.status) > rich_states.MAX_STATUS_CHARS:
        problem = f"text over {rich_states.MAX_STATUS_CHARS} characters"
    if problem is not None:
        raise StanzaError("bad-request", f"Slot {position} has {problem}")


def _week_spans(slot: QuietSlot) -> Iterator[tuple[int, int]]:
    """The slot's stretches in minutes of the local week from Monday 00:00, split at its end."""
    length = (slot.end - slot.start) % DAY_MINUTES or DAY_MINUTES
    for day in range(7):
        if slot.days & (1 << day):
            start = day * DAY_MINUTES + slot.start
            end = start + length
            yield start, min(end, WEEK_MINUTES)
            if end > WEEK_MINUTES:
                yield 0, end - WEEK_MINUTES


def parse_days(text: str) -> int:
    """`mon-fri`, `sat,sun`, `mon,wed-fri`, `fri-mon` or `daily` as a weekday mask."""
    words = text.strip().lower()
    if words == EVERY_DAY:
        return ALL_DAYS
    mask = 0
    for part in words.split(","):
        ends = part.strip().split("-")
        if len(ends) > 2 or not all(end in DAY_NAMES for end in ends):
            raise StanzaError(
                "bad-request",
                f"'{text}' is not days such as mon-fri, sat,sun or {EVERY_DAY}",
            )
        first, last = DAY_NAMES.index(ends[0]), DAY_NAMES.index(ends[-1])
        for step in range((last - first) % 7 + 1):
            mask |= 1 << ((first + step) % 7)
    return mask


def format_days(mask: int) -> str:
    """A weekday mask as `parse_days` reads it, runs of days as ranges."""
    if mask == ALL_DAYS:
        return EVERY_DAY
    parts = []
    day = 0
    while day < 7:
        if mask & (1 << day):
            last = day
            while last + 1 < 7 and mask & (1 << (last + 1)):
                last += 1
            parts.append(DAY_NAMES[day] if last == day else f"{DAY_NAMES[day]}-{DAY_NAMES[last]}")
            day = last + 1
        else:
            day += 1
    return ",".join(parts)


def parse_time(text: str, *, end: bool = False) -> int:
    """`HH:MM` as minutes after midnight; `24:00` only as an end."""
    match = _TIME.fullmatch(text.strip())
    limit = DAY_MINUTES if end else DAY_MINUTES - 1
    if match is not None:
        minute = int(match[1]) * 60 + int(match[2])
        if int(match[2]) < 60 and minute <= limit:
            return minute
    highest = "24:00" if end else "23:59"
    raise StanzaError("bad-request", f"'{text}' is not a time from 00:00 to {highest}")


def format_time(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def format_slot(slot: QuietSlot) -> str:
    """The slot as one line: `mon-fri 18:00-08:00 dnd Off work`."""
    line = f"{format_days(slot.days)} {format_time(slot.start)}-{format_time(slot.end)}"
    line += f" {slot.state}"
    return f"{line} {slot.status}" if slot.status else line


def parse_slot(line: str) -> QuietSlot:
    """One line, `DAYS HH:MM-HH:MM STATE [text]`, as a slot; `StanzaError` saying what is
    wrong."""
    words = line.split(None, 3)
    if len(words) < 3 or "-" not in words[1]:
        raise StanzaError(
            "bad-request",
            f"'{line.strip()}' is not a slot such as 'mon-fri 18:00-08:00 dnd Off work'",
        )
    start, _, end = words[1].partition("-")
    status = words[3].strip() if len(words) > 3 else None
    return QuietSlot(
        parse_days(words[0]),
        parse_time(start),
        parse_time(end, end=True),
        words[2].lower(),
        status or None,
    )


def parse_lines(text: str) -> list[QuietSlot]:
    """One slot a line, blank lines skipped; errors name the line."""
    slots = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            slots.append(parse_slot(line))
        except StanzaError as error:
            raise StanzaError("bad-request", f"Line {number}: {error.text}") from None
    return slots


def _slot_from_element(position: int, node: Element) -> QuietSlot:
    try:
        return QuietSlot(
            parse_days(node.get("days") or ""),
            parse_time(node.get("start") or ""),
            parse_time(node.get("end") or "", end=True),
            (node.get("state") or "").strip(),
            (node.text or "").strip() or None,
        )
    except StanzaError as error:
        raise StanzaError("bad-request", f"Slot {position}: {error.text}") from None


def schedule_element(slots: list[QuietSlot]) -> Element:
    schedule = element("quiet-hours", namespace=ns.CHORUS_PRESENCE)
    for slot in slots:
        child(
            schedule,
            "slot",
            {
                "days": format_days(slot.days),
                "start": format_time(slot.start),
                "end": format_time(slot.end),
                "state": slot.state,
            },
            namespace=ns.CHORUS_PRESENCE,
            text=slot.status,
        )
    return schedule
