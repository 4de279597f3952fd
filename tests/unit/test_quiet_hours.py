"""Quiet hours below the wire: the store on every backend (schedules replaced whole, kept in
order, gone with the account, nothing for an account that is gone), and the schedule's own
rules: the line and days syntax both ways, overlaps, and where boundaries fall across
midnight and daylight-saving changes."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import AsyncIterator

import pytest

from chorus_presence.services import quiet_hours
from chorus_presence.storage.factory import Repositories
from chorus_presence.storage.quiet_hours import QuietSlot
from chorus_presence.xmpp.errors import StanzaError
from tests.engines.stores import StoreUnderTest

OFF_WORK = QuietSlot(0b0011111, 18 * 60, 8 * 60, "dnd", "Off work")
WEEKEND = QuietSlot(0b1100000, 0, 1440, "away")


@pytest.fixture
async def repos(store: StoreUnderTest) -> AsyncIterator[Repositories]:
    opened = await store.open()
    for name in ("alice", "bob"):
        await opened.accounts.create(name, {})
    try:
        yield opened
    finally:
        await opened.close()


async def test_schedules_round_trip_in_order_and_are_replaced(repos: Repositories) -> None:
    store = repos.quiet_hours
    assert await store.all() == {}
    await store.put("alice", [WEEKEND, OFF_WORK])
    await store.put("bob", [OFF_WORK])
    assert await store.all() == {"alice": [WEEKEND, OFF_WORK], "bob": [OFF_WORK]}
    assert await store.get("alice") == [WEEKEND, OFF_WORK]
    await store.put("alice", [OFF_WORK])
    await store.put("bob", [])
    assert await store.all() == {"alice": [OFF_WORK]}
    assert await store.get("bob") == []


async def test_a_schedule_goes_with_its_account(repos: Repositories) -> None:
    store = repos.quiet_hours
    await store.put("alice", [OFF_WORK])
    await repos.accounts.delete("alice")
    assert await store.all() == {}
    await store.put("alice", [OFF_WORK])
    await store.put("nobody", [OFF_WORK])
    assert await store.all() == {}


@pytest.mark.parametrize(
    "line,canonical",
    [
        ("mon-fri 18:00-08:00 dnd Off work", "mon-fri 18:00-08:00 dnd Off work"),
        ("Sat,SUN 0:00-24:00 AWAY", "sat-sun 00:00-24:00 away"),
        ("fri-mon 22:00-06:30 brb  back   soon ", "mon,fri-sun 22:00-06:30 brb back   soon"),
        ("daily 12:00-13:00 away Lunch", "daily 12:00-13:00 away Lunch"),
        ("mon,wed,fri 09:00-09:15 in-meeting", "mon,wed,fri 09:00-09:15 in-meeting"),
    ],
)
def test_lines_read_and_write_back(line: str, canonical: str) -> None:
    assert quiet_hours.format_slot(quiet_hours.parse_slot(line)) == canonical


@pytest.mark.parametrize(
    "text,error",
    [
        ("mon 18:00 dnd", "Line 1: 'mon 18:00 dnd' is not a slot such as"),
        ("\nmon-fry 18:00-19:00 dnd", "Line 2: 'mon-fry' is not days"),
        ("mon 18:60-19:00 dnd", "Line 1: '18:60' is not a time from 00:00 to 23:59"),
        ("mon 18:00-24:01 dnd", "Line 1: '24:01' is not a time from 00:00 to 24:00"),
    ],
)
def test_bad_lines_say_what_is_wrong(text: str, error: str) -> None:
    with pytest.raises(StanzaError) as refused:
        quiet_hours.parse_lines(text)
    assert refused.value.condition == "bad-request"
    assert refused.value.text.startswith(error)


def test_overlaps_saying_the_same_join_and_others_are_refused() -> None:
    same = QuietSlot(0b1100000, 0, 1440, "dnd", "Off work")
    assert quiet_hours.checked_slots([OFF_WORK, same]) == [OFF_WORK, same]
    # Sunday night crosses into Monday, the start of the week.
    sunday = QuietSlot(0b1000000, 23 * 60, 2 * 60, "dnd")
    monday = QuietSlot(0b0000001, 60, 3 * 60, "brb")
    with pytest.raises(StanzaError, match=r"Slot 2 .* overlaps slot 1"):
        quiet_hours.checked_slots([sunday, monday])
    touching = QuietSlot(0b0000001, 2 * 60, 3 * 60, "brb")
    assert quiet_hours.checked_slots([sunday, touching]) == [sunday, touching]
    with pytest.raises(StanzaError, match="At most 50 slots"):
        quiet_hours.checked_slots([QuietSlot(1, m, m + 1, "away") for m in range(51)])


def spans(slot: QuietSlot, zone: str, around: dt.datetime) -> list[tuple[str, str]]:
    found = quiet_hours._occurrences([slot], zoneinfo.ZoneInfo(zone), around.timestamp())
    return [
        (
            dt.datetime.fromtimestamp(start, dt.UTC).strftime("%m-%d %H:%M"),
            dt.datetime.fromtimestamp(end, dt.UTC).strftime("%m-%d %H:%M"),
        )
        for start, end, _ in found
    ]


def test_a_skipped_time_takes_the_offset_before_the_gap_and_a_repeated_one_is_first() -> None:
    sunday = QuietSlot(0b1000000, 2 * 60 + 30, 4 * 60, "busy")
    # Berlin, 29 March 2026: 02:30 is skipped, read at +01:00 (01:30 UTC); 04:00 is CEST.
    spring = spans(sunday, "Europe/Berlin", dt.datetime(2026, 3, 29, tzinfo=dt.UTC))
    assert ("03-29 01:30", "03-29 02:00") in spring
    # 25 October 2026: 02:30 happens twice, the first (CEST, 00:30 UTC) is the one; 04:00 CET.
    autumn = spans(sunday, "Europe/Berlin", dt.datetime(2026, 10, 25, tzinfo=dt.UTC))
    assert ("10-25 00:30", "10-25 03:00") in autumn
