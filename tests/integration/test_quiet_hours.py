"""Quiet hours through the wire with real clients and a clock the tests move: a boundary
applies a slot and its end reverts it, a login inside a slot, a state set by hand lasting until
the next boundary, daylight-saving changes in Europe/Berlin, a status that clears itself
reverting to the schedule, blocks, restarts, the IQ extension, the ad-hoc command, the
plugin and the admin command line."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from slixmpp.exceptions import IqError
from slixmpp.xmlstream import ET

from chorus_presence.client.plugin import QuietSlot
from chorus_presence.core.clock import ManualClock
from chorus_presence.services.quiet_hours import parse_slot
from tests.integration.harness import (
    ADHOC,
    CLOCK_START,
    DOMAIN,
    TIMEOUT,
    Harness,
    Inbox,
    befriend,
    clocked_server,
    complete,
    config_of,
    execute,
    fails,
    fields,
    ok,
    online,
    presence_of,
    sync,
)

ALICE, CAROL = f"alice@{DOMAIN}", f"carol@{DOMAIN}"
PRESENCE = "urn:chorus:presence:0"
STATE = f"{{{PRESENCE}}}state"
QUIET = f"{{{PRESENCE}}}quiet-hours"
SLOT = f"{{{PRESENCE}}}slot"
START = CLOCK_START
OFF_WORK = QuietSlot("mon-fri", "18:00", "08:00", "dnd", "Off work")
OFF_WORK_SLOT = parse_slot("mon-fri 18:00-08:00 dnd Off work")


@pytest.fixture
async def clocked(
    request: pytest.FixtureRequest, tmp_path: Path, tls_files: tuple[Path, Path]
) -> AsyncIterator[tuple[Harness, ManualClock]]:
    """A server on SQLite, or on PostgreSQL when a test asks for it (`indirect`)."""
    postgres = getattr(request, "param", "sqlite") == "postgresql"
    url = request.getfixturevalue("postgres_url") if postgres else None
    async with clocked_server(
        tmp_path, tls_files, ("alice", "bob", "carol"), postgres_url=url
    ) as running:
        yield running


def utc(*parts: int) -> float:
    return dt.datetime(*parts, tzinfo=dt.UTC).timestamp()


def until(clock: ManualClock, at: float) -> None:
    clock.advance(at - clock.now())


def with_state(state: str, text: str = "", sender: str = f"{ALICE}/test") -> Any:
    return lambda p: (
        str(p["from"]) == sender
        and p.xml.get("type") is None
        and p.xml.findtext(STATE) == state
        and p["status"] == text
    )


def heard(inbox: Inbox, sender: str = ALICE) -> list[Any]:
    return [
        p
        for p in inbox.drain()
        if p["from"].bare == sender and p.xml.get("type") in (None, "unavailable")
    ]


async def chorus_client(harness: Harness, user: str) -> tuple[Any, Inbox]:
    """A logged-in client with the chorus plugin, its initial presence sent and seen back."""
    client = harness.make_client(user)
    client.register_plugin("chorus", module="chorus_presence.client.plugin")
    client.auto_authorize = None
    client.auto_subscribe = False
    assert await harness.connect(client) == "session_start"
    inbox = Inbox(client, "presence", "message")
    client.send_presence()
    await inbox.get(lambda p: str(p["from"]) == f"{user}@{DOMAIN}/test")
    return client, inbox


async def friends(harness: Harness) -> tuple[Any, Inbox, Any, Inbox]:
    alice, alice_in = await chorus_client(harness, "alice")
    bob, bob_in = await online(harness, "bob")
    await befriend(alice, alice_in, bob, bob_in)
    await bob_in.get(with_state("available"))
    alice_in.drain()
    bob_in.drain()
    return alice, alice_in, bob, bob_in


async def quietly(client: Any, slots: list[QuietSlot], zone: str = "UTC") -> None:
    chorus = client.plugin["chorus"]
    await chorus.set_time_zone(zone)
    assert await chorus.set_quiet_hours(slots) == slots


async def test_a_boundary_applies_the_slot_and_its_end_reverts(
    clocked: tuple[Harness, ManualClock],
) -> None:
    harness, clock = clocked
    alice, alice_in, bob, bob_in = await friends(harness)
    await quietly(alice, [OFF_WORK], "Europe/Berlin")
    # 18:00 in Berlin is 16:00 UTC in May.
    until(clock, utc(2026, 5, 4, 15, 59, 59))
    await sync(alice, bob)
    assert not heard(bob_in)
    clock.advance(1)
    seen = await bob_in.expect(with_state("dnd", "Off work"), "quiet hours begin")
    assert seen["show"] == "dnd"
    await alice_in.expect(with_state("dnd", "Off work"), "her own resource told")
    until(clock, utc(2026, 5, 5, 6, 0))
    back = await bob_in.expect(with_state("available"), "quiet hours end")
    assert back["show"] == ""
    await alice_in.expect(with_state("available"), "her own resource told again")


async def test_a_state_set_by_hand_wins_until_the_next_boundary(
    clocked: tuple[Harness, ManualClock],
) -> None:
    harness, clock = clocked
    alice, _alice_in, bob, bob_in = await friends(harness)
    await quietly(alice, [OFF_WORK, QuietSlot("sat-sun", "00:00", "24:00", "dnd", "Off work")])
    until(clock, utc(2026, 5, 8, 18, 0))
    await bob_in.expect(with_state("dnd", "Off work"), "Friday evening")
    alice.send_presence(pshow="away", pstatus="On call")
    await bob_in.expect(with_state("away", "On call"), "set by hand")
    # Friday's slot and the weekend's meet and say the same: the next boundary is the end of
    # Sunday (a slot is on the days it starts, so Monday's begins at 18:00).
    until(clock, utc(2026, 5, 10, 23, 59, 59))
    await sync(alice, bob)
    assert not heard(bob_in)
    clock.advance(1)
    await bob_in.expect(with_state("available"), "Monday 00:00")


async def test_a_login_inside_a_slot_takes_it_on(clocked: tuple[Harness, ManualClock]) -> None:
    harness, clock = clocked
    alice, _alice_in, bob, bob_in = await friends(harness)
    await quietly(alice, [QuietSlot("mon", "13:00", "14:00", "in-meeting", "Weekly")])
    alice.disconnect()
    await bob_in.expect(presence_of(bob, "unavailable", f"{ALICE}/test"), "alice left")
    until(clock, utc(2026, 5, 4, 13, 30))
    await sync(bob)
    bob_in.drain()
    phone = await harness.login("alice", resource="phone")
    phone_in = Inbox(phone)
    phone.send_presence()
    phone_sender = f"{ALICE}/phone"
    await bob_in.expect(with_state("in-meeting", "Weekly", phone_sender), "the slot at login")
    await phone_in.expect(with_state("in-meeting", "Weekly", phone_sender), "her own presence")
    # A client that says a state of its own at login keeps it.
    laptop = await harness.login("alice", resource="laptop")
    laptop.send_presence(pshow="chat")
    await bob_in.expect(with_state("available", sender=f"{ALICE}/laptop"), "the laptop's own")


@pytest.mark.parametrize("clocked", ["sqlite", "postgresql"], indirect=True)
async def test_a_schedule_survives_a_restart_and_applies_inside_its_slot(
    clocked: tuple[Harness, ManualClock],
) -> None:
    harness, clock = clocked
    alice, _alice_in, _bob, _bob_in = await friends(harness)
    await quietly(alice, [OFF_WORK], "America/New_York")

    async def evening() -> None:
        # The command line reads it from the database while the server is down.
        shown = await ok(config_of(harness), "quiet-hours", "show", "alice", "--json")
        assert shown.json()["slots"] == ["mon-fri 18:00-08:00 dnd Off work"]
        assert shown.json()["time_zone"] == "America/New_York"
        # 19:00 in New York.
        until(clock, utc(2026, 5, 4, 23, 0))

    await harness.restart(while_stopped=evening)
    _bob, bob_in = await online(harness, "bob")
    alice, alice_in = await chorus_client(harness, "alice")
    assert await alice.plugin["chorus"].quiet_hours() == [OFF_WORK]
    await bob_in.expect(with_state("dnd", "Off work"), "the slot after the restart")
    # 08:00 in New York.
    until(clock, utc(2026, 5, 5, 12, 0))
    await bob_in.expect(with_state("available"), "the slot ends after the restart")
    await alice_in.expect(with_state("available"), "her own resource told")


async def test_spring_forward_reads_a_skipped_time_with_the_offset_before_the_gap(
    clocked: tuple[Harness, ManualClock],
) -> None:
    harness, clock = clocked
    alice, _alice_in, bob, bob_in = await friends(harness)
    # In Berlin, 28 March 2027 goes from 02:00 CET to 03:00 CEST: 02:30 does not happen.
    await quietly(alice, [QuietSlot("sun", "02:30", "05:00", "away")], "Europe/Berlin")
    # The test's clock starts in May 2026: the next spring-forward is on 28 March 2027.
    until(clock, utc(2027, 3, 28, 1, 29, 59))
    bob_in.drain()
    await sync(alice, bob)
    assert not heard(bob_in)
    # 02:30 at +01:00, the offset before the gap: 01:30 UTC, 03:30 on the wall clock.
    clock.advance(1)
    await bob_in.expect(with_state("away"), "the skipped 02:30")
    # 05:00 CEST.
    until(clock, utc(2027, 3, 28, 2, 59, 59))
    await sync(alice, bob)
    assert not heard(bob_in)
    clock.advance(1)
    await bob_in.expect(with_state("available"), "05:00 summer time")


async def test_fall_back_applies_a_boundary_in_the_repeated_hour_once(
    clocked: tuple[Harness, ManualClock],
) -> None:
    harness, clock = clocked
    alice, _alice_in, bob, bob_in = await friends(harness)
    # In Berlin, 25 October 2026 goes from 03:00 CEST back to 02:00 CET: 02:30 happens twice.
    await quietly(alice, [QuietSlot("sun", "02:30", "04:00", "busy")], "Europe/Berlin")
    until(clock, utc(2026, 10, 25, 0, 29, 59))
    bob_in.drain()
    await sync(alice, bob)
    assert not heard(bob_in)
    clock.advance(1)
    await bob_in.expect(with_state("busy", "Busy"), "the first 02:30, summer time")
    alice.send_presence(pstatus="Still up")
    await bob_in.expect(with_state("available", "Still up"), "set by hand")
    # The second 02:30, winter time, is no boundary: the state set by hand stays.
    until(clock, utc(2026, 10, 25, 1, 30))
    await sync(alice, bob)
    assert not heard(bob_in)
    # 04:00 CET.
    until(clock, utc(2026, 10, 25, 3, 0))
    await bob_in.expect(with_state("available"), "04:00 winter time")


async def test_a_status_that_clears_itself_reverts_to_the_schedule(
    clocked: tuple[Harness, ManualClock],
) -> None:
    harness, clock = clocked
    alice, _alice_in, _bob, bob_in = await friends(harness)
    await quietly(alice, [OFF_WORK])
    until(clock, utc(2026, 5, 4, 18, 0))
    await bob_in.expect(with_state("dnd", "Off work"), "quiet hours begin")
    alice.plugin["chorus"].send_state("busy", status="Release", clear_after="PT30M")
    await bob_in.expect(with_state("busy", "Release"), "busy for half an hour")
    clock.advance(1800)
    seen = await bob_in.expect(with_state("dnd", "Off work"), "back to the schedule")
    assert seen.xml.find(STATE).get("until") is None
    # Outside the slot, the same expiry reverts to Available.
    until(clock, utc(2026, 5, 5, 9, 0))
    await bob_in.expect(with_state("available"), "quiet hours end")
    alice.plugin["chorus"].send_state("busy", clear_after="PT30M")
    await bob_in.expect(with_state("busy", "Busy"), "busy again")
    clock.advance(1800)
    await bob_in.expect(with_state("available"), "Available outside the slot")


async def test_a_blocked_contact_learns_nothing(clocked: tuple[Harness, ManualClock]) -> None:
    harness, clock = clocked
    alice, alice_in, bob, bob_in = await friends(harness)
    carol, carol_in = await online(harness, "carol")
    await befriend(alice, alice_in, carol, carol_in)
    await carol_in.expect(with_state("available"), "carol sees alice")
    block = ET.Element("{urn:chorus:visibility:0}block", {"jid": CAROL})
    iq = alice.make_iq_set()
    iq.append(block)
    await iq.send(timeout=TIMEOUT)
    await carol_in.expect(presence_of(carol, "unavailable", f"{ALICE}/test"), "carol cut off")
    await quietly(alice, [OFF_WORK])
    until(clock, utc(2026, 5, 4, 18, 0))
    await bob_in.expect(with_state("dnd", "Off work"), "bob sees the slot")
    until(clock, utc(2026, 5, 5, 8, 0))
    await bob_in.expect(with_state("available"), "bob sees it end")
    await sync(alice, bob, carol)
    assert not heard(carol_in)


async def test_setting_a_schedule_inside_a_slot_applies_it_and_clearing_ends_it(
    clocked: tuple[Harness, ManualClock],
) -> None:
    harness, _clock = clocked
    alice, _alice_in, _bob, bob_in = await friends(harness)
    await quietly(alice, [QuietSlot("daily", "11:00", "13:00", "away", "Lunch")])
    await bob_in.expect(with_state("away", "Lunch"), "in force as soon as it is set")
    await quietly(alice, [])
    await bob_in.expect(with_state("available"), "cleared")
    assert await alice.plugin["chorus"].quiet_hours() == []


@pytest.mark.parametrize(
    "slots,text",
    [
        (
            [OFF_WORK, QuietSlot("fri", "20:00", "23:00", "away")],
            "Slot 2 (fri 20:00-23:00 away) overlaps slot 1 (mon-fri 18:00-08:00 dnd Off work)"
            " with another state or text",
        ),
        (
            [QuietSlot("sun", "23:00", "02:00", "dnd"), QuietSlot("mon", "01:00", "03:00", "brb")],
            "Slot 2 (mon 01:00-03:00 brb) overlaps slot 1 (sun 23:00-02:00 dnd)"
            " with another state or text",
        ),
        ([QuietSlot("mon", "09:00", "09:00", "dnd")], "Slot 1 has no length"),
        ([QuietSlot("mon", "09:00", "10:00", "asleep")], "Slot 1 has the state 'asleep'"),
        ([QuietSlot("someday", "09:00", "10:00", "dnd")], "Slot 1: 'someday' is not days"),
        ([QuietSlot("mon", "9", "10:00", "dnd")], "Slot 1: '9' is not a time"),
        ([QuietSlot("mon", "24:00", "10:00", "dnd")], "Slot 1: '24:00' is not a time"),
    ],
)
async def test_a_bad_schedule_is_refused_and_changes_nothing(
    clocked: tuple[Harness, ManualClock], slots: list[QuietSlot], text: str
) -> None:
    harness, _clock = clocked
    alice, _alice_in = await chorus_client(harness, "alice")
    chorus = alice.plugin["chorus"]
    await chorus.set_quiet_hours([OFF_WORK])
    with pytest.raises(IqError) as refused:
        await chorus.set_quiet_hours(slots)
    assert refused.value.iq["error"]["condition"] == "bad-request"
    assert refused.value.iq["error"]["text"].startswith(text)
    assert await chorus.quiet_hours() == [OFF_WORK]


async def test_the_iq_speaks_canonical_slots_and_only_to_its_owner(
    clocked: tuple[Harness, ManualClock],
) -> None:
    harness, _clock = clocked
    alice, _alice_in = await chorus_client(harness, "alice")
    iq = alice.make_iq_set()
    schedule = ET.SubElement(iq.xml, QUIET)
    attributes = {"days": "sat,sun,fri", "start": "7:00", "end": "24:00", "state": "away"}
    ET.SubElement(schedule, SLOT, attributes)
    answer = (await iq.send(timeout=TIMEOUT)).xml.find(QUIET)
    [slot] = answer.findall(SLOT)
    assert dict(slot.attrib) == {"days": "fri-sun", "start": "07:00", "end": "24:00"} | {
        "state": "away"
    }
    iq = alice.make_iq_get(ito=f"bob@{DOMAIN}")
    iq.append(ET.Element(QUIET))
    with pytest.raises(IqError) as refused:
        await iq.send(timeout=TIMEOUT)
    assert refused.value.iq["error"]["condition"] == "forbidden"


async def test_the_server_advertises_quiet_hours(clocked: tuple[Harness, ManualClock]) -> None:
    harness, _clock = clocked
    alice = await harness.login("alice", plugins=("xep_0030",))
    info = await alice.plugin["xep_0030"].get_info(jid=DOMAIN, timeout=TIMEOUT)
    assert f"{PRESENCE}#quiet-hours" in info["disco_info"]["features"]


async def test_the_quiet_hours_command_round_trip(clocked: tuple[Harness, ManualClock]) -> None:
    harness, clock = clocked
    alice, alice_in = await online(harness, "alice", plugins=ADHOC)
    bob, bob_in = await online(harness, "bob")
    await befriend(alice, alice_in, bob, bob_in)
    await bob_in.get(with_state("available"))
    command = await execute(alice, "urn:chorus:cmd:quiet-hours")
    slots = fields(command)["slots"]
    assert slots["type"] == "text-multi"
    assert slots["label"] == "Slots, one a line"
    assert not slots["value"]
    lines = "mon-fri 18:00-08:00 DND Off work\n\nsat,sun 10:00-16:00 away"
    note = await complete(alice, command, {"slots": lines})
    assert note == (
        "Your quiet hours are 2 slots: mon-fri 18:00-08:00 dnd Off work; sat-sun 10:00-16:00 away."
    )
    command = await execute(alice, "urn:chorus:cmd:quiet-hours")
    assert fields(command)["slots"]["value"] == [
        "mon-fri 18:00-08:00 dnd Off work",
        "sat-sun 10:00-16:00 away",
    ]
    until(clock, utc(2026, 5, 4, 18, 0))
    await bob_in.expect(with_state("dnd", "Off work"), "the slot from the command")

    command = await execute(alice, "urn:chorus:cmd:quiet-hours")
    with pytest.raises(IqError) as refused:
        await complete(alice, command, {"slots": "mon-fri 18:00-08:00 dnd\nweekends 10:00 away"})
    assert refused.value.iq["error"]["condition"] == "bad-request"
    assert refused.value.iq["error"]["text"] == (
        "Line 2: 'weekends 10:00 away' is not a slot such as 'mon-fri 18:00-08:00 dnd Off work'"
    )
    command = await execute(alice, "urn:chorus:cmd:quiet-hours")
    assert await complete(alice, command, {"slots": ""}) == "You have no quiet hours."
    await bob_in.expect(with_state("available"), "cleared by the command")


async def test_the_schedule_goes_with_the_account(clocked: tuple[Harness, ManualClock]) -> None:
    harness, _clock = clocked
    alice, _alice_in = await chorus_client(harness, "alice")
    await alice.plugin["chorus"].set_quiet_hours([OFF_WORK])
    assert "alice" in await harness.ctx.repositories.quiet_hours.all()
    await harness.ctx.accounts.remove("alice")
    assert "alice" not in await harness.ctx.repositories.quiet_hours.all()
    assert harness.ctx.quiet_hours.schedule("alice") == []


async def test_the_admin_command_line_keeps_the_schedule(
    clocked: tuple[Harness, ManualClock],
) -> None:
    harness, clock = clocked
    config = config_of(harness)
    _alice, _alice_in, _bob, bob_in = await friends(harness)
    run = await ok(config, "quiet-hours", "set", "alice", "mon-fri 18:00-08:00 dnd Off work")
    assert run.out.splitlines() == [
        f"{ALICE}: quiet hours (1 slot), in UTC",
        "  mon-fri 18:00-08:00 dnd Off work",
    ]
    until(clock, utc(2026, 5, 4, 18, 0))
    await bob_in.expect(with_state("dnd", "Off work"), "the slot set on the command line")
    run = await ok(config, "quiet-hours", "show", "alice", "--json")
    assert run.json() == {
        "user": ALICE,
        "time_zone": "UTC",
        "slots": ["mon-fri 18:00-08:00 dnd Off work"],
    }
    await fails(
        config,
        1,
        "quiet-hours",
        "set",
        "alice",
        "daily 12:00-13:00 away",
        "sun 25:00-26:00 dnd",
        needle="Slot 2: '25:00' is not a time from 00:00 to 23:59",
    )
    await fails(
        config,
        1,
        "quiet-hours",
        "set",
        "alice",
        "mon-fri 18:00-08:00 dnd Off work",
        "fri 20:00-23:00 away",
        needle="Slot 2 (fri 20:00-23:00 away) overlaps slot 1",
    )
    await fails(config, 1, "quiet-hours", "show", "nobody", needle=f"No such user nobody@{DOMAIN}")
    assert harness.ctx.quiet_hours.schedule("alice") == [OFF_WORK_SLOT]
    run = await ok(config, "quiet-hours", "clear", "alice", "--json")
    assert run.json()["slots"] == []
    await bob_in.expect(with_state("available"), "cleared inside the slot")


async def test_a_new_time_zone_moves_the_boundaries(clocked: tuple[Harness, ManualClock]) -> None:
    harness, clock = clocked
    alice, _alice_in, bob, bob_in = await friends(harness)
    await quietly(alice, [QuietSlot("mon", "14:00", "15:00", "away", "Walk")])
    await sync(alice, bob)
    assert not heard(bob_in)
    # 12:00 UTC is 14:00 in Berlin: inside the slot there, so it applies at once.
    assert await alice.plugin["chorus"].set_time_zone("Europe/Berlin") == "Europe/Berlin"
    await bob_in.expect(with_state("away", "Walk"), "the slot in the new zone")
    # The end moves too: 15:00 in Berlin, 13:00 UTC.
    until(clock, utc(2026, 5, 4, 12, 59, 59))
    await sync(alice, bob)
    assert not heard(bob_in)
    clock.advance(1)
    await bob_in.expect(with_state("available"), "the slot's end in Berlin")
