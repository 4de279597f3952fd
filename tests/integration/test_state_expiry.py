"""A status that clears itself, through the wire with real clients and a clock the tests move:
`until` seen by contacts, `for` turned into `until`, the revert to Available when the time
comes, a client's own presence cancelling it, restarts with an expiry in force and one that
passed while the server was down, blocks and visibility, the time zone and the ad-hoc command."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from slixmpp.exceptions import IqError
from slixmpp.xmlstream import ET

from chorus_presence.core.clock import ManualClock
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
    execute,
    fields,
    online,
    options,
    presence_of,
    sync,
)

ALICE, BOB, CAROL, DAVE = (f"{name}@{DOMAIN}" for name in ("alice", "bob", "carol", "dave"))
PRESENCE = "urn:chorus:presence:0"
STATE = f"{{{PRESENCE}}}state"
START = CLOCK_START


@pytest.fixture
async def clocked(
    request: pytest.FixtureRequest, tmp_path: Path, tls_files: tuple[Path, Path]
) -> AsyncIterator[tuple[Harness, ManualClock]]:
    """A server on SQLite, or on PostgreSQL when a test asks for it (`indirect`)."""
    postgres = getattr(request, "param", "sqlite") == "postgresql"
    url = request.getfixturevalue("postgres_url") if postgres else None
    async with clocked_server(
        tmp_path, tls_files, ("alice", "bob", "carol", "dave"), postgres_url=url
    ) as running:
        yield running


def send_state(client: Any, state: str, *, status: str | None = None, **expiry: str) -> None:
    presence = client.make_presence(pstatus=status)
    node = ET.Element(STATE, {"for" if key == "period" else key: v for key, v in expiry.items()})
    node.text = state
    presence.append(node)
    presence.send()


def utc(text: str) -> str:
    return dt.datetime.fromisoformat(text).astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def with_state(state: str, sender: str = f"{ALICE}/test") -> Any:
    return lambda p: (
        str(p["from"]) == sender and p.xml.get("type") is None and p.xml.findtext(STATE) == state
    )


def reverted(sender: str = f"{ALICE}/test") -> Any:
    return lambda p: (
        with_state("available", sender)(p)
        and p.xml.find(STATE).get("until") is None
        and p["status"] == ""
    )


def heard(inbox: Inbox, sender: str = ALICE) -> list[Any]:
    """The presence updates (available or not) from `sender` the inbox received and no test
    claimed."""
    return [
        p
        for p in inbox.drain()
        if p["from"].bare == sender and p.xml.get("type") in (None, "unavailable")
    ]


async def friends(harness: Harness) -> tuple[Any, Inbox, Any, Inbox]:
    alice, alice_in = await online(harness, "alice")
    bob, bob_in = await online(harness, "bob")
    await befriend(alice, alice_in, bob, bob_in)
    await bob_in.get(with_state("available"))
    bob_in.drain()
    return alice, alice_in, bob, bob_in


async def test_contacts_see_until_and_the_server_reverts_when_it_passes(
    clocked: tuple[Harness, ManualClock],
) -> None:
    harness, clock = clocked
    alice, alice_in, bob, bob_in = await friends(harness)
    send_state(alice, "busy", status="Quarterly review", period="PT30M")
    seen = await bob_in.expect(with_state("busy"), "busy with an expiry")
    assert seen.xml.find(STATE).get("until") == "2026-05-04T12:30:00Z"
    assert seen.xml.find(STATE).get("for") is None
    assert seen["status"] == "Quarterly review"
    mine = await alice_in.expect(with_state("busy"), "her own busy")
    assert mine.xml.find(STATE).get("until") == "2026-05-04T12:30:00Z"

    clock.advance(1799)
    await sync(alice, bob)
    assert not heard(bob_in)

    clock.advance(1)
    back = await bob_in.expect(reverted(), "Available with no text")
    assert back["show"] == ""
    await alice_in.expect(reverted(), "her own resource told")


async def test_an_absolute_until_in_any_zone_is_sent_in_utc(
    clocked: tuple[Harness, ManualClock],
) -> None:
    harness, clock = clocked
    alice, _alice_in, _bob, bob_in = await friends(harness)
    send_state(alice, "in-meeting", until="2026-05-04T16:00:00+02:00")
    seen = await bob_in.expect(with_state("in-meeting"), "in a meeting")
    assert seen.xml.find(STATE).get("until") == "2026-05-04T14:00:00Z"
    clock.advance(2 * 3600)
    await bob_in.expect(reverted(), "reverted at 14:00 UTC")


@pytest.mark.parametrize(
    "attributes,condition",
    [
        ({"period": "PT0S"}, "not-acceptable"),
        ({"period": "soon"}, "bad-request"),
        ({"period": "P1M"}, "bad-request"),
        ({"until": "2026-05-04T11:00:00Z"}, "not-acceptable"),
        ({"until": "2026-05-04T13:00:00"}, "bad-request"),
        ({"until": "2026-05-04T13:00:00Z", "period": "PT1H"}, "bad-request"),
        ({"period": "P400D"}, "not-acceptable"),
    ],
)
async def test_a_bad_expiry_is_refused_and_changes_nothing(
    clocked: tuple[Harness, ManualClock], attributes: dict[str, str], condition: str
) -> None:
    harness, _clock = clocked
    alice, alice_in, bob, bob_in = await friends(harness)
    send_state(alice, "busy", **attributes)
    error = await alice_in.expect(lambda p: p["type"] == "error", "the refusal")
    assert error["error"]["condition"] == condition
    await sync(alice, bob)
    assert not heard(bob_in)


async def test_a_clients_own_presence_cancels_the_expiry(
    clocked: tuple[Harness, ManualClock],
) -> None:
    harness, clock = clocked
    alice, _alice_in, bob, bob_in = await friends(harness)
    send_state(alice, "dnd", period="PT1H")
    await bob_in.expect(with_state("dnd"), "dnd")
    send_state(alice, "away", status="Lunch")
    lunch = await bob_in.expect(with_state("away"), "away, set by the client")
    assert lunch.xml.find(STATE).get("until") is None
    clock.advance(3600)
    await sync(alice, bob)
    assert not heard(bob_in)


async def test_every_resource_that_carried_it_is_reverted(
    clocked: tuple[Harness, ManualClock],
) -> None:
    harness, clock = clocked
    alice, _alice_in, bob, bob_in = await friends(harness)
    phone, _phone_in = await online(harness, "alice", "phone")
    await bob_in.expect(with_state("available", f"{ALICE}/phone"), "the phone")
    send_state(alice, "brb", period="PT30M")
    send_state(phone, "brb", period="PT1H")
    await bob_in.expect(with_state("brb"), "brb on the laptop")
    await bob_in.expect(with_state("brb", f"{ALICE}/phone"), "brb on the phone")
    clock.advance(1800)
    await bob_in.expect(reverted(), "the laptop reverted")
    await sync(alice, phone, bob)
    assert not [p for p in heard(bob_in) if str(p["from"]) == f"{ALICE}/phone"]
    clock.advance(1800)
    await bob_in.expect(reverted(f"{ALICE}/phone"), "the phone reverted")


async def test_blocked_and_hidden_contacts_learn_nothing(
    clocked: tuple[Harness, ManualClock],
) -> None:
    harness, clock = clocked
    alice, alice_in = await online(harness, "alice", plugins=("xep_0191",))
    others = {}
    for name in ("bob", "carol", "dave"):
        client, inbox = await online(harness, name)
        await befriend(alice, alice_in, client, inbox)
        await inbox.expect(with_state("available"), f"{name} sees alice")
        others[name] = (client, inbox)
    await alice.plugin["xep_0191"].block(DAVE, timeout=TIMEOUT)
    block = ET.Element("{urn:chorus:visibility:0}block", {"jid": CAROL})
    iq = alice.make_iq_set()
    iq.append(block)
    await iq.send(timeout=TIMEOUT)
    for name in ("carol", "dave"):
        client, inbox = others[name]
        await inbox.expect(presence_of(client, "unavailable", f"{ALICE}/test"), f"{name} cut off")
    send_state(alice, "busy", period="PT30M")
    _bob, bob_in = others["bob"]
    await bob_in.expect(with_state("busy"), "bob sees busy")
    clock.advance(1800)
    await bob_in.expect(reverted(), "bob sees the revert")
    await sync(alice, *(client for client, _ in others.values()))
    for name in ("carol", "dave"):
        _client, inbox = others[name]
        assert not heard(inbox), name


@pytest.mark.parametrize("clocked", ["sqlite", "postgresql"], indirect=True)
async def test_an_expiry_in_force_survives_a_restart_and_returns_at_login(
    clocked: tuple[Harness, ManualClock],
) -> None:
    harness, clock = clocked
    alice, alice_in, bob, bob_in = await friends(harness)
    send_state(alice, "in-meeting", status="Board", period="PT4H")
    await bob_in.expect(with_state("in-meeting"), "in a meeting")
    await harness.ctx.background.drain()
    await harness.restart()
    clock.advance(3600)
    bob, bob_in = await online(harness, "bob")
    alice = await harness.login("alice")
    alice_in = Inbox(alice)
    # What a client sends at login, saying nothing of its own.
    alice.send_presence()
    await alice_in.expect(with_state("in-meeting"), "her own presence, as stored")
    seen = await bob_in.expect(with_state("in-meeting"), "the meeting comes back")
    assert seen["status"] == "Board"
    assert seen.xml.find(STATE).get("until") == "2026-05-04T16:00:00Z"
    clock.advance(3 * 3600)
    await bob_in.expect(reverted(), "reverted after the restart")
    await alice_in.expect(reverted(), "her own resource told")
    # Gone once it passed: the next login starts as it says.
    await harness.ctx.background.drain()
    alice.disconnect()
    await bob_in.expect(presence_of(bob, "unavailable", f"{ALICE}/test"), "alice left")
    alice, _ = await online(harness, "alice")
    again = await bob_in.expect(with_state("available"), "alice back")
    assert again.xml.find(STATE).get("until") is None


@pytest.mark.parametrize("clocked", ["sqlite", "postgresql"], indirect=True)
async def test_an_expiry_that_passed_while_down_is_applied_at_start(
    clocked: tuple[Harness, ManualClock],
) -> None:
    harness, clock = clocked
    alice, _alice_in, _bob, bob_in = await friends(harness)
    send_state(alice, "dnd", status="Focus", period="PT30M")
    await bob_in.expect(with_state("dnd"), "dnd")
    await harness.ctx.background.drain()

    async def later() -> None:
        clock.advance(3600)

    await harness.restart(while_stopped=later)
    assert await harness.ctx.repositories.state_expiries.all() == []
    _bob, bob_in = await online(harness, "bob")
    await online(harness, "alice")
    seen = await bob_in.expect(with_state("available"), "alice as her client says")
    assert seen["status"] == ""
    assert seen.xml.find(STATE).get("until") is None


async def test_today_and_this_week_end_in_the_users_time_zone(
    clocked: tuple[Harness, ManualClock],
) -> None:
    harness, _clock = clocked
    alice, _alice_in, _bob, bob_in = await friends(harness)
    zone = ET.Element(f"{{{PRESENCE}}}time-zone")
    iq = alice.make_iq_get()
    iq.append(zone)
    assert (await iq.send(timeout=TIMEOUT)).xml.find(zone.tag).get("name") == "UTC"
    send_state(alice, "away", period="today")
    seen = await bob_in.expect(with_state("away"), "away for today, UTC")
    assert seen.xml.find(STATE).get("until") == "2026-05-05T00:00:00Z"

    iq = alice.make_iq_set()
    iq.append(ET.Element(zone.tag, {"name": "America/New_York"}))
    assert (await iq.send(timeout=TIMEOUT)).xml.find(zone.tag).get("name") == "America/New_York"
    send_state(alice, "busy", period="today")
    seen = await bob_in.expect(with_state("busy"), "busy for today, New York")
    assert seen.xml.find(STATE).get("until") == utc("2026-05-05T00:00:00-04:00")
    send_state(alice, "dnd", period="this-week")
    seen = await bob_in.expect(with_state("dnd"), "dnd for the week, New York")
    assert seen.xml.find(STATE).get("until") == utc("2026-05-11T00:00:00-04:00")

    iq = alice.make_iq_set()
    iq.append(ET.Element(zone.tag, {"name": "Mars/Olympus"}))
    with pytest.raises(IqError) as refused:
        await iq.send(timeout=TIMEOUT)
    assert refused.value.iq["error"]["condition"] == "bad-request"


async def test_the_server_advertises_expiry(clocked: tuple[Harness, ManualClock]) -> None:
    harness, _clock = clocked
    alice = await harness.login("alice", plugins=("xep_0030",))
    info = await alice.plugin["xep_0030"].get_info(jid=DOMAIN, timeout=TIMEOUT)
    assert f"{PRESENCE}#expiry" in info["disco_info"]["features"]


async def test_the_set_my_status_command_clears_after(
    clocked: tuple[Harness, ManualClock],
) -> None:
    harness, clock = clocked
    alice, alice_in = await online(harness, "alice", plugins=ADHOC)
    bob, bob_in = await online(harness, "bob")
    await befriend(alice, alice_in, bob, bob_in)
    await bob_in.get(with_state("available"))
    command = await execute(alice, "urn:chorus:cmd:state")
    clear = fields(command)["clear"]
    assert clear["type"] == "list-single"
    assert clear["label"] == "Clear after"
    assert clear["value"] == "never"
    assert options(clear) == {
        "never": "Don't clear",
        "PT30M": "30 minutes",
        "PT1H": "1 hour",
        "PT4H": "4 hours",
        "today": "Today",
        "this-week": "This week",
    }
    note = await complete(alice, command, {"state": "busy", "text": "Calls", "clear": "PT1H"})
    assert note == "Your status is now Busy: Calls. It clears at 2026-05-04T13:00:00Z."
    seen = await bob_in.expect(with_state("busy"), "busy from the command")
    assert seen.xml.find(STATE).get("until") == "2026-05-04T13:00:00Z"
    clock.advance(3600)
    await bob_in.expect(reverted(), "reverted after an hour")


async def test_the_plugin_sets_reads_and_zones_an_expiry(
    clocked: tuple[Harness, ManualClock],
) -> None:
    harness, clock = clocked
    alice = harness.make_client("alice")
    alice.register_plugin("chorus", module="chorus_presence.client.plugin")
    alice.auto_authorize = None
    alice.auto_subscribe = False
    assert await harness.connect(alice) == "session_start"
    alice_in = Inbox(alice)
    alice.send_presence()
    await alice_in.get(with_state("available"))
    bob, bob_in = await online(harness, "bob")
    await befriend(alice, alice_in, bob, bob_in)
    await bob_in.get(with_state("available"))
    chorus = alice.plugin["chorus"]
    assert await chorus.time_zone() == "UTC"
    assert await chorus.set_time_zone("Asia/Tokyo") == "Asia/Tokyo"
    chorus.send_state("brb", clear_after="today")
    seen = await bob_in.expect(with_state("brb"), "brb until midnight in Tokyo")
    assert chorus.until_of(seen) == dt.datetime(2026, 5, 4, 15, 0, tzinfo=dt.UTC)
    meeting = dt.datetime(2026, 5, 4, 16, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    chorus.send_state("in-meeting", until=meeting)
    seen = await bob_in.expect(with_state("in-meeting"), "in a meeting until 14:00 UTC")
    assert chorus.until_of(seen) == dt.datetime(2026, 5, 4, 14, 0, tzinfo=dt.UTC)
    clock.advance(2 * 3600)
    await bob_in.expect(reverted(), "reverted at 14:00 UTC")
