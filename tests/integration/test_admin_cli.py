"""The admin command line end to end: each group run as an operator would (a separate process)
against a running server, with connected clients seeing every change live, and against a
stopped server, where the commands that need only the database still work."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import stat
from pathlib import Path

import pytest

from chorus_presence.admin.channel import AdminChannelInUse
from tests.integration.harness import (
    DOMAIN,
    PASSWORD,
    TIMEOUT,
    Harness,
    cli,
    config_of,
    ending,
    fails,
    link,
    ok,
    online,
    plain_token,
    presence_of,
    pushed,
    roster_of,
    start_server,
    starttls,
    write_config,
)

ALICE, BOB, CAROL = f"alice@{DOMAIN}", f"bob@{DOMAIN}", f"carol@{DOMAIN}"
# Beside the test's config, so that every test has its own admin socket.
pytestmark = pytest.mark.server_config(admin={"socket": "admin.sock"})
ROSTER_ITEM = "{jabber:iq:roster}query/{jabber:iq:roster}item"


async def test_user_commands_are_live(harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="chorus_presence")
    config = config_of(harness)
    added = await ok(config, "user", "add", "dave", "--password-stdin", stdin="n3w pass\n")
    assert f"dave@{DOMAIN}" in added.out
    dave = await harness.login("dave", "n3w pass")
    assert (await cli(config, "user", "list", "--json")).json() == [
        {"username": "dave", "jid": f"dave@{DOMAIN}", "disabled": False, "name": None}
    ]
    await fails(
        config, 1, "user", "add", "dave", "--password-stdin", needle=f"dave@{DOMAIN} already exists"
    )

    # Disabling ends the session at once and refuses the next login; enabling lets it in.
    ended, errors = ending(dave)
    assert (await ok(config, "user", "disable", "dave", "--json")).json()["jid"] == f"dave@{DOMAIN}"
    await asyncio.wait_for(ended, TIMEOUT)
    assert errors == ["not-authorized"]
    # From an address of its own: the refusal starts a back-off for (dave, that address),
    # which must not hold up dave's own login from his usual address below.
    refused = await harness.raw(source="127.0.0.9")
    await starttls(harness, refused)
    token = plain_token("dave", "n3w pass")
    refused.send(f"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{token}</auth>")
    await refused.expect(b"<not-authorized/>")
    assert (await ok(config, "user", "export")).out == "username,disabled,name\ndave,true,\n"
    await ok(config, "user", "enable", "dave")
    assert (await cli(config, "user", "export", "--json")).json() == [
        {"username": "dave", "disabled": False, "name": None}
    ]
    await ok(config, "user", "passwd", "dave", "--password-stdin", stdin="other\n")
    dave = await harness.login("dave", "other")

    ended, errors = ending(dave)
    await ok(config, "user", "remove", "dave")
    await asyncio.wait_for(ended, TIMEOUT)
    assert errors == ["not-authorized"]
    await fails(config, 1, "user", "remove", "dave", needle=f"No such user dave@{DOMAIN}")
    await fails(config, 1, "user", "disable", "bad user", needle="is not a valid username")

    # Each action is logged once, and no password ever is.
    actions = [r.getMessage() for r in caplog.records if r.getMessage().startswith("admin: ")]
    assert actions.count("admin: user.add {'user': 'dave'}") == 1
    assert actions.count("admin: user.disable {'user': 'dave'}") == 1
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "n3w pass" not in logged and "other" not in logged


async def test_roster_link_and_group_sync_are_live(harness: Harness) -> None:
    config = config_of(harness)
    for name in ("alice", "bob", "carol"):
        await harness.add_user(name)
    alice, alice_in = await online(harness, "alice", roster=True)
    bob, bob_in = await online(harness, "bob", roster=True)

    linked = await ok(config, "roster", "link", "alice", "bob", "--json")
    assert linked.json() == {"user": ALICE, "contact": BOB}
    await alice_in.get(pushed(BOB, "both"))
    await bob_in.get(pushed(ALICE, "both"))
    await alice_in.get(presence_of(alice, "available", f"{BOB}/test"))
    await bob_in.get(presence_of(bob, "available", f"{ALICE}/test"))
    shown = (await ok(config, "roster", "show", "alice", "--json")).json()
    assert [(i["jid"], i["subscription"]) for i in shown["items"]] == [(BOB, "both")]

    synced = await ok(config, "group", "sync", "Staff", "alice", "bob", "carol", "--json")
    assert synced.json() == {
        "group": "Staff",
        "members": [ALICE, BOB, CAROL],
        "linked": 2,
        "tagged": 6,
    }
    await alice_in.get(pushed(CAROL, "both", ("Staff",)))
    await alice_in.get(pushed(BOB, "both", ("Staff",)))
    roster = await roster_of(bob)
    assert {jid: (i["subscription"], i["groups"]) for jid, i in roster.items()} == {
        ALICE: ("both", ["Staff"]),
        CAROL: ("both", ["Staff"]),
    }
    # Running it again changes nothing.
    again = (await ok(config, "group", "sync", "Staff", "alice", "bob", "carol", "--json")).json()
    assert (again["linked"], again["tagged"]) == (0, 0)

    await ok(config, "roster", "add", "alice", "dave@example.net", "--name", "Dave", "--group", "X")
    added = await alice_in.get(pushed("dave@example.net", "none", ("X",)))
    assert added.xml.find(ROSTER_ITEM).get("name") == "Dave"

    # Removing a contact cancels both subscriptions: bob stops seeing alice at once.
    await ok(config, "roster", "remove", "alice", "bob")
    await bob_in.get(presence_of(bob, "unavailable", f"{ALICE}/test"))
    assert BOB not in await roster_of(alice)
    await fails(config, 1, "roster", "remove", "alice", "bob", needle="is not in the roster")
    await fails(config, 1, "roster", "link", "alice", "nobody", needle="No such user")
    await fails(config, 1, "group", "sync", "Solo", "alice", needle="at least two")


async def test_visibility_changes_are_live(harness: Harness) -> None:
    config = config_of(harness)
    for name in ("alice", "bob", "carol"):
        await harness.add_user(name)
    await link(harness, "alice", "bob")
    alice, alice_in = await online(harness, "alice", roster=True)
    bob, bob_in = await online(harness, "bob", roster=True)
    await bob_in.get(presence_of(bob, "available", f"{ALICE}/test"))

    blocked = await ok(config, "visibility", "block", "alice", "bob", "--json")
    assert blocked.json()["blocked"] == [BOB]
    await bob_in.get(presence_of(bob, "unsubscribed", ALICE))
    await bob_in.get(presence_of(bob, "unavailable", f"{ALICE}/test"))

    await ok(config, "visibility", "allow", "alice", "bob")
    await bob_in.get(presence_of(bob, "available", f"{ALICE}/test"))

    carol, carol_in = await online(harness, "carol", roster=True)
    carol.send_presence(pto=ALICE, ptype="subscribe", pstatus="Hi, it's Carol")
    await alice_in.get(presence_of(alice, "subscribe", CAROL))
    pending = await ok(config, "visibility", "pending", "alice", "--json")
    assert pending.json() == [{"jid": CAROL, "nick": None, "status": "Hi, it's Carol"}]
    await ok(config, "visibility", "accept", "alice", "carol")
    await carol_in.get(presence_of(carol, "subscribed", ALICE))
    await carol_in.get(presence_of(carol, "available", f"{ALICE}/test"))

    await ok(config, "visibility", "policy", "alice", "nobody")
    overview = (await ok(config, "visibility", "automation", "alice", "on", "--json")).json()
    assert overview == {
        "user": ALICE,
        "policy": "nobody",
        "away_when_offline": True,
        "appear_offline": False,
        "last_seen_shown": True,
        "pending": [],
        "allowed": [BOB, CAROL],
        "blocked": [],
    }
    table = await ok(config, "visibility", "show", "alice")
    assert "policy nobody" in table.out and "Allowed (2)" in table.out
    await fails(config, 2, "visibility", "policy", "alice", "sometimes", needle="invalid choice")
    await fails(config, 1, "visibility", "block", "alice", "alice", needle="cannot block yourself")


async def test_presence_sessions_stats_and_routing_are_live(harness: Harness) -> None:
    config = config_of(harness)
    for name in ("alice", "bob"):
        await harness.add_user(name)
    await link(harness, "alice", "bob")
    bob, bob_in = await online(harness, "bob", roster=True)
    await online(harness, "alice", "desk", roster=True)
    phone, _ = await online(harness, "alice", "phone", roster=True)
    phone.send_presence(pshow="dnd", pstatus="On a call", ppriority=5)
    await bob_in.get(lambda p: p["from"] == f"{ALICE}/phone" and p["status"] == "On a call")

    presence = (await ok(config, "presence", "show", "alice", "--json")).json()
    assert presence["effective_state"] == "dnd"
    assert presence["resources"][0] == {
        "resource": "phone",
        "state": "dnd",
        "show": "dnd",
        "status": "On a call",
        "priority": 5,
    }
    assert presence["resources"][1]["resource"] == "desk"
    everyone = (await ok(config, "presence", "show", "--json")).json()
    assert [user["jid"] for user in everyone] == [ALICE, BOB]
    sessions = (await ok(config, "session", "list", "--json")).json()
    assert [(s["jid"], s["state"], s["tls"]) for s in sessions] == [
        (f"{ALICE}/desk", "available", True),
        (f"{ALICE}/phone", "dnd", True),
        (f"{BOB}/test", "available", True),
    ]
    stats = (await ok(config, "stats", "--json", "--interval", "0.05")).json()
    assert (stats["sessions"], stats["online_users"], stats["accounts"]) == (3, 2, 2)
    assert stats["stanzas_received"]["presence"] >= 4
    assert set(stats["rates"]["stanzas_sent"]) == {"message", "presence", "iq"}

    # Presence decides the device: alice is busy on the phone, so voicemail takes the call.
    configured = await ok(
        config,
        "routing",
        "set",
        "alice",
        "--device",
        "desk-phone:Desk phone",
        "--device",
        "voicemail:Voicemail",
        "--default",
        "Desk phone",
        "--map",
        "dnd=Voicemail",
        "--on",
        "--json",
    )
    assert configured.json()["map"] == {"dnd": "Voicemail"}
    route = (await ok(config, "routing", "route", "alice", "--json")).json()
    assert route == {"user": ALICE, "state": "dnd", "device": "Voicemail", "kind": "voicemail"}
    assert (await ok(config, "routing", "grant", "bob", "--json")).json()["permission"] is True
    await fails(config, 2, "routing", "set", "alice", "--device", "phone:Desk", needle="kind")
    await fails(config, 2, "routing", "set", "alice", "--map", "dnd", needle="STATE=NAME")

    # Kicking one resource ends that session only; contacts see it go.
    ended, errors = ending(phone)
    kicked = await ok(config, "session", "kick", f"{ALICE}/phone", "--json")
    assert kicked.json() == {"kicked": [f"{ALICE}/phone"]}
    await asyncio.wait_for(ended, TIMEOUT)
    assert errors == ["policy-violation"]
    await bob_in.get(presence_of(bob, "unavailable", f"{ALICE}/phone"))
    route = (await ok(config, "routing", "route", "alice", "--json")).json()
    assert (route["state"], route["device"]) == ("available", "Desk phone")
    await fails(config, 1, "session", "kick", f"{ALICE}/phone", needle="No session")


async def test_user_import_reports_each_bad_row(harness: Harness, tmp_path: Path) -> None:
    config = config_of(harness)
    rows = ["username,password,name"]
    rows += [f"user{n},pw{n},User {n}" for n in range(1, 1001)]
    rows[10] = "user10"  # one column
    rows[500] = "user1,again"  # a duplicate
    rows[999] = ",pw"  # no username
    csv_file = tmp_path / "users.csv"
    csv_file.write_text("\n".join(rows) + "\n")

    run = await cli(config, "user", "import", str(csv_file), "--json")
    assert run.code == 1, run
    result = run.json()
    assert result["imported"] == 997
    assert [(f["line"], f["error"]) for f in result["failed"]] == [
        (11, "1 column, not username,password[,name]"),
        (501, f"User user1@{DOMAIN} already exists"),
        (1000, "Empty username"),
    ]
    assert run.err.strip().endswith("3 rows not imported: line 11, 501, 1000")
    assert len(await harness.ctx.accounts.usernames()) == 997
    await harness.login("user998", "pw998")


async def test_admin_channel_answers_every_request_on_one_line(harness: Harness) -> None:
    socket_path = harness.server.config.admin.socket
    reader, writer = await asyncio.open_unix_connection(str(socket_path))
    try:
        answers = []
        for request in (
            b"not json",
            b'["user.list"]',
            b'{"command": "user.frobnicate"}',
            b'{"command": "user.add", "args": {"user": "erin"}}',
            b'{"command": "user.list", "args": {}}',
        ):
            writer.write(request + b"\n")
            answers.append(json.loads(await asyncio.wait_for(reader.readline(), TIMEOUT)))
    finally:
        writer.close()
    assert [answer["ok"] for answer in answers] == [False, False, False, False, True]
    assert "not JSON" in answers[0]["error"]
    assert "Unknown admin command 'user.frobnicate'" in answers[2]["error"]
    assert "password" in answers[3]["error"]
    assert answers[4]["result"] == []


async def test_offline_commands_work_on_the_database(
    tmp_path: Path, tls_files: tuple[Path, Path]
) -> None:
    config = write_config(tmp_path, tls_files, admin={"socket": "admin.sock"})
    # A socket file left by a server that died: nobody answers, so the server is stopped.
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(tmp_path / "admin.sock"))
    stale.close()

    for name in ("alice", "bob"):
        await ok(config, "user", "add", name, "--password-stdin", stdin=f"{PASSWORD}\n")
    await ok(config, "roster", "link", "alice", "bob")
    await ok(config, "visibility", "policy", "alice", "everyone")
    await ok(config, "routing", "set", "alice", "--device", "mobile:Mobile", "--default", "Mobile")
    route = (await ok(config, "routing", "route", "alice", "--json")).json()
    assert (route["state"], route["device"]) == ("offline", "Mobile")
    for command in (["presence", "show"], ["session", "list"], ["stats"]):
        await fails(config, 1, *command, needle="The server is not running")
    await fails(config, 1, "session", "kick", "alice", needle="The server is not running")

    # Started on that database, the server has what the commands wrote, and its admin socket
    # replaced the stale one, readable by its own user only.
    harness = await start_server(config, tls_files[0])
    try:
        mode = (tmp_path / "admin.sock").stat().st_mode
        assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o600
        alice, _ = await online(harness, "alice", roster=True)
        assert (await roster_of(alice))[BOB]["subscription"] == "both"
        presence = await ok(config, "presence", "show", "alice", "--json")
        assert presence.json()["effective_state"] == "available"
        # A second server on the same configuration stops at the admin socket.
        with pytest.raises(AdminChannelInUse):
            await start_server(config, tls_files[0])
    finally:
        await harness.close()
    assert not (tmp_path / "admin.sock").exists()
