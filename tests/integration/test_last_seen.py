"""Last seen and away since, through the wire with real clients and a clock the tests move:
XEP-0319 idle time on the automated Away (also after a restart), a client's own idle time
passed on in UTC and bad ones handled, "Show when I was last seen" switched off hiding it both
ways (presence and XEP-0012 last activity), visibility still deciding who learns anything, the
setting kept across restarts, the ad-hoc command, the command line and disco."""

from __future__ import annotations

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
    config_of,
    execute,
    fields,
    ok,
    online,
    sync,
    visibility,
)

ALICE, BOB, CAROL, DAVE = (f"{name}@{DOMAIN}" for name in ("alice", "bob", "carol", "dave"))
IDLE_NS = "urn:xmpp:idle:1"
IDLE = f"{{{IDLE_NS}}}idle"
STATE = "{urn:chorus:presence:0}state"
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


def chorus(client: Any) -> Any:
    if "chorus" not in client.plugin:
        client.register_plugin("chorus", module="chorus_presence.client.plugin")
    return client.plugin["chorus"]


def send_idle(client: Any, since: str | None, *, show: str = "away") -> None:
    presence = client.make_presence(pshow=show)
    presence.append(ET.Element(IDLE, {} if since is None else {"since": since}))
    presence.send()


def since_of(presence: Any) -> str | None:
    node = presence.xml.find(IDLE)
    return None if node is None else node.get("since")


def available_from(sender: str) -> Any:
    return lambda p: str(p["from"]) == sender and p.xml.get("type") is None


def away_from(sender: str) -> Any:
    return lambda p: available_from(sender)(p) and p["show"] == "away"


def not_logged_in(user: str = ALICE) -> Any:
    return lambda p: available_from(user)(p) and p.xml.findtext(STATE) == "offline"


async def last_activity(client: Any, jid: str) -> int | str:
    """The seconds XEP-0012 answers for `jid`, or the error condition."""
    iq = client.make_iq_get(queryxmlns="jabber:iq:last", ito=jid)
    try:
        result = await iq.send(timeout=TIMEOUT)
    except IqError as error:
        assert error.iq["error"]["text"] == ""
        return str(error.iq["error"]["condition"])
    return int(result.xml.find("{jabber:iq:last}query").get("seconds"))


async def friends(harness: Harness, *names: str) -> dict[str, tuple[Any, Inbox]]:
    """Each user online, and everyone a contact of everyone both ways."""
    online_users = {name: await online(harness, name) for name in names}
    listed = list(online_users.values())
    for index, (first, first_in) in enumerate(listed):
        for second, second_in in listed[index + 1 :]:
            await befriend(first, first_in, second, second_in)
    for _client, inbox in listed:
        inbox.drain()
    return online_users


async def test_the_automated_away_says_since_when_the_user_logged_out(
    clocked: tuple[Harness, ManualClock],
) -> None:
    harness, clock = clocked
    users = await friends(harness, "alice", "bob")
    alice, _ = users["alice"]
    bob, bob_in = users["bob"]
    await visibility(alice, **{"away-when-offline": "true"})
    clock.advance(65.4)
    alice.abort()
    away = await bob_in.expect(not_logged_in(), "alice shown Not logged in")
    assert since_of(away) == "2026-05-04T12:01:05Z"

    await harness.ctx.background.drain()
    clock.advance(2 * 3600)
    assert await last_activity(bob, ALICE) == 2 * 3600

    # Answered from storage after a restart: the probe of a contact logging in says the same.
    await harness.restart()
    bob, bob_in = await online(harness, "bob", "again")
    probed = await bob_in.expect(not_logged_in(), "the probe's answer after the restart")
    assert since_of(probed) == "2026-05-04T12:01:05Z"

    # Back online, the real presence carries no idle time of the server's.
    alice, _ = await online(harness, "alice")
    back = await bob_in.expect(available_from(f"{ALICE}/test"), "alice back")
    assert since_of(back) is None
    assert await last_activity(bob, ALICE) == 0


async def test_a_clients_idle_time_goes_out_in_utc(clocked: tuple[Harness, ManualClock]) -> None:
    harness, _clock = clocked
    users = await friends(harness, "alice", "bob")
    alice, alice_in = users["alice"]
    _bob, bob_in = users["bob"]
    send_idle(alice, "2026-05-04T13:30:00.250+02:00")
    seen = await bob_in.expect(available_from(f"{ALICE}/test"), "alice away and idle")
    assert since_of(seen) == "2026-05-04T11:30:00Z"
    assert seen["show"] == "away"
    mine = await alice_in.expect(available_from(f"{ALICE}/test"), "her own presence")
    assert since_of(mine) == "2026-05-04T11:30:00Z"


@pytest.mark.parametrize(
    "since", [None, "", "yesterday", "2026-05-04T11:30:00", "2026-13-04T11:30:00Z"]
)
async def test_an_idle_time_that_is_no_datetime_is_refused(
    clocked: tuple[Harness, ManualClock], since: str | None
) -> None:
    harness, _clock = clocked
    users = await friends(harness, "alice", "bob")
    alice, alice_in = users["alice"]
    bob, bob_in = users["bob"]
    send_idle(alice, since)
    error = await alice_in.expect(lambda p: p["type"] == "error", "the refusal")
    assert error["error"]["condition"] == "bad-request"
    await sync(alice, bob)
    assert not [p for p in bob_in.drain() if p["from"].bare == ALICE]


async def test_going_offline_with_a_bad_idle_time_is_not_refused(
    clocked: tuple[Harness, ManualClock],
) -> None:
    harness, _clock = clocked
    users = await friends(harness, "alice", "bob")
    alice, _ = users["alice"]
    _bob, bob_in = users["bob"]
    presence = alice.make_presence(ptype="unavailable")
    presence.append(ET.Element(IDLE, {"since": "soon"}))
    presence.send()
    gone = await bob_in.expect(lambda p: p["type"] == "unavailable", "alice gone")
    assert str(gone["from"]) == f"{ALICE}/test"
    assert since_of(gone) is None


async def test_an_idle_time_in_the_future_is_dropped(
    clocked: tuple[Harness, ManualClock],
) -> None:
    harness, _clock = clocked
    users = await friends(harness, "alice", "bob")
    alice, _ = users["alice"]
    _bob, bob_in = users["bob"]
    send_idle(alice, "2026-05-04T12:00:01Z")
    seen = await bob_in.expect(available_from(f"{ALICE}/test"), "alice away")
    assert seen["show"] == "away"
    assert since_of(seen) is None
    send_idle(alice, "2026-05-04T12:00:00Z", show="xa")
    now = await bob_in.expect(lambda p: p["show"] == "xa", "idle since now")
    assert since_of(now) == "2026-05-04T12:00:00Z"


async def test_a_hidden_last_seen_is_hidden_both_ways(
    clocked: tuple[Harness, ManualClock],
) -> None:
    harness, clock = clocked
    users = await friends(harness, "alice", "bob", "carol")
    alice, alice_in = users["alice"]
    bob, bob_in = users["bob"]
    carol, carol_in = users["carol"]
    dave, _ = await online(harness, "dave")
    assert await chorus(alice).last_seen_shown() is True
    assert await chorus(alice).show_last_seen(False) is False
    assert await chorus(alice).last_seen_shown() is False

    # Nobody sees hers.
    send_idle(alice, "2026-05-04T11:00:00Z")
    seen = await bob_in.expect(available_from(f"{ALICE}/test"), "alice away")
    assert seen["show"] == "away" and since_of(seen) is None
    mine = await alice_in.expect(available_from(f"{ALICE}/test"), "her own")
    assert since_of(mine) is None
    clock.advance(600)
    assert await last_activity(bob, ALICE) == "forbidden"
    # What a stranger gets, word for word.
    assert await last_activity(dave, ALICE) == "forbidden"

    # She sees nobody's, while carol, who shows hers, still sees bob's.
    send_idle(bob, "2026-05-04T11:45:00Z")
    to_alice = await alice_in.expect(available_from(f"{BOB}/test"), "bob away, to alice")
    assert to_alice["show"] == "away" and since_of(to_alice) is None
    to_carol = await carol_in.expect(available_from(f"{BOB}/test"), "bob away, to carol")
    assert since_of(to_carol) == "2026-05-04T11:45:00Z"
    assert await last_activity(alice, BOB) == "forbidden"
    assert await last_activity(carol, BOB) == 0
    assert await last_activity(alice, ALICE) == 0

    # Nor does the automated Away say since when, to anyone.
    await visibility(alice, **{"away-when-offline": "true"})
    await visibility(carol, **{"away-when-offline": "true"})
    alice.abort()
    away = await bob_in.expect(not_logged_in(), "alice Not logged in")
    assert since_of(away) is None
    carol.abort()
    await bob_in.expect(not_logged_in(CAROL), "carol Not logged in, to bob")
    alice, alice_in = await online(harness, "alice", "again")
    carol_away = await alice_in.expect(not_logged_in(CAROL), "carol, to alice")
    assert since_of(carol_away) is None

    # Shown again, both ways.
    assert await chorus(alice).show_last_seen(True) is True
    send_idle(bob, "2026-05-04T11:50:00Z", show="xa")
    now = await alice_in.expect(lambda p: p["show"] == "xa", "bob, to alice again")
    assert since_of(now) == "2026-05-04T11:50:00Z"
    assert await last_activity(alice, BOB) == 0
    assert await last_activity(bob, ALICE) == 0
    await sync(bob, alice)


async def test_hiding_takes_the_idle_time_off_the_presence_already_out(
    clocked: tuple[Harness, ManualClock],
) -> None:
    harness, _clock = clocked
    users = await friends(harness, "alice", "bob")
    alice, _ = users["alice"]
    _bob, bob_in = users["bob"]
    send_idle(alice, "2026-05-04T11:00:00Z")
    seen = await bob_in.expect(available_from(f"{ALICE}/test"), "alice idle")
    assert since_of(seen) == "2026-05-04T11:00:00Z"
    await chorus(alice).show_last_seen(False)
    again = await bob_in.expect(available_from(f"{ALICE}/test"), "alice without it")
    assert again["show"] == "away" and since_of(again) is None


async def test_last_activity_follows_visibility(clocked: tuple[Harness, ManualClock]) -> None:
    harness, clock = clocked
    users = await friends(harness, "alice", "bob")
    alice, _ = users["alice"]
    bob, bob_in = users["bob"]
    dave, _ = await online(harness, "dave")
    alice.abort()
    await bob_in.expect(lambda p: p["type"] == "unavailable", "alice gone")
    await harness.ctx.background.drain()
    clock.advance(300)
    assert await last_activity(bob, ALICE) == 300
    assert await last_activity(dave, ALICE) == "forbidden"
    # A contact alice keeps from seeing her presence learns nothing more either.
    alice, _ = await online(harness, "alice")
    block = ET.Element("{urn:chorus:visibility:0}block", {"jid": BOB})
    iq = alice.make_iq_set()
    iq.append(block)
    await iq.send(timeout=TIMEOUT)
    assert await last_activity(bob, ALICE) == "forbidden"


@pytest.mark.parametrize("clocked", ["sqlite", "postgresql"], indirect=True)
async def test_the_setting_survives_a_restart(clocked: tuple[Harness, ManualClock]) -> None:
    harness, _clock = clocked
    users = await friends(harness, "alice", "bob")
    alice, _ = users["alice"]
    await chorus(alice).show_last_seen(False)
    await harness.restart()
    alice, alice_in = await online(harness, "alice")
    bob, bob_in = await online(harness, "bob")
    assert await chorus(alice).last_seen_shown() is False
    assert await last_activity(bob, ALICE) == "forbidden"
    # Their initial presences carry no idle time: the away ones that follow are the test.
    send_idle(bob, "2026-05-04T11:00:00Z")
    seen = await alice_in.expect(away_from(f"{BOB}/test"), "bob idle, to alice")
    assert since_of(seen) is None
    send_idle(alice, "2026-05-04T11:00:00Z")
    hers = await bob_in.expect(away_from(f"{ALICE}/test"), "alice idle, to bob")
    assert since_of(hers) is None


async def test_the_setting_refuses_others_and_nonsense(
    clocked: tuple[Harness, ManualClock],
) -> None:
    harness, _clock = clocked
    alice, _ = await online(harness, "alice")
    for attributes, to, condition in (
        ({"show": "maybe"}, None, "bad-request"),
        ({}, None, "bad-request"),
        ({"show": "false"}, BOB, "forbidden"),
    ):
        iq = alice.make_iq_set(ito=to)
        iq.append(ET.Element("{urn:chorus:presence:0}last-seen", attributes))
        with pytest.raises(IqError) as refused:
            await iq.send(timeout=TIMEOUT)
        assert refused.value.iq["error"]["condition"] == condition
    assert await chorus(alice).last_seen_shown() is True


async def test_the_last_seen_command_and_disco(clocked: tuple[Harness, ManualClock]) -> None:
    harness, _clock = clocked
    alice, _ = await online(harness, "alice", plugins=ADHOC)
    info = await alice.plugin["xep_0030"].get_info(jid=DOMAIN, timeout=TIMEOUT)
    features = info["disco_info"]["features"]
    assert IDLE_NS in features
    assert "urn:chorus:presence:0#last-seen" in features

    command = await execute(alice, "urn:chorus:cmd:last-seen")
    form = fields(command)
    assert form["show"]["label"] == "Show when I was last seen"
    assert form["show"]["value"] is True
    assert await complete(alice, command, {"show": False}) == "Show when I was last seen: off."
    assert await chorus(alice).last_seen_shown() is False
    items = await alice.plugin["xep_0030"].get_items(
        jid=DOMAIN, node="http://jabber.org/protocol/commands", timeout=TIMEOUT
    )
    assert "urn:chorus:cmd:last-seen" in [item[1] for item in items["disco_items"]["items"]]


async def test_the_command_line_shows_and_hides_it(clocked: tuple[Harness, ManualClock]) -> None:
    harness, _clock = clocked
    users = await friends(harness, "alice", "bob")
    alice, _ = users["alice"]
    bob, bob_in = users["bob"]
    config = config_of(harness)
    overview = (await ok(config, "visibility", "last-seen", "alice", "off", "--json")).json()
    assert overview["last_seen_shown"] is False
    assert await chorus(alice).last_seen_shown() is False
    assert await last_activity(bob, ALICE) == "forbidden"
    table = await ok(config, "visibility", "show", "alice")
    assert "last seen shown: no" in table.out
    await ok(config, "visibility", "last-seen", "alice", "on")
    assert await last_activity(bob, ALICE) == 0
    send_idle(alice, "2026-05-04T11:00:00Z")
    seen = await bob_in.expect(available_from(f"{ALICE}/test"), "alice idle again")
    assert since_of(seen) == "2026-05-04T11:00:00Z"


async def test_appearing_offline_is_shown_since_going(clocked: tuple[Harness, ManualClock]) -> None:
    harness, clock = clocked
    users = await friends(harness, "alice", "bob")
    alice, _ = users["alice"]
    _bob, bob_in = users["bob"]
    await visibility(alice, **{"away-when-offline": "true"})
    clock.advance(600)
    await chorus(alice).set_appear_offline(True)
    away = await bob_in.expect(not_logged_in(), "alice Not logged in")
    assert since_of(away) == "2026-05-04T12:10:00Z"
    # Logging out later, or in again, changes nothing a contact could see.
    clock.advance(600)
    alice.send_presence(ptype="unavailable")
    await sync(alice)
    alice.abort()
    _again, again_in = await online(harness, "bob", "again")
    probed = await again_in.expect(not_logged_in(), "the probe's answer")
    assert since_of(probed) == "2026-05-04T12:10:00Z"
    clock.advance(600)
    await online(harness, "alice", "back")
    _third, third_in = await online(harness, "bob", "third")
    probed = await third_in.expect(not_logged_in(), "the probe's answer, alice back")
    assert since_of(probed) == "2026-05-04T12:10:00Z"


async def test_quiet_hours_say_since_when_their_state_holds(
    clocked: tuple[Harness, ManualClock],
) -> None:
    harness, clock = clocked
    users = await friends(harness, "alice", "bob")
    alice, _ = users["alice"]
    _bob, bob_in = users["bob"]
    iq = alice.make_iq_set()
    schedule = ET.SubElement(iq.xml, "{urn:chorus:presence:0}quiet-hours")
    ET.SubElement(
        schedule,
        "{urn:chorus:presence:0}slot",
        days="daily",
        start="12:30",
        end="13:00",
        state="dnd",
    )
    await iq.send(timeout=TIMEOUT)
    clock.advance(1800)
    quiet = await bob_in.expect(lambda p: p.xml.findtext(STATE) == "dnd", "alice in quiet hours")
    assert since_of(quiet) == "2026-05-04T12:30:00Z"
    clock.advance(1800)
    back = await bob_in.expect(lambda p: p.xml.findtext(STATE) == "available", "quiet hours end")
    assert since_of(back) is None
