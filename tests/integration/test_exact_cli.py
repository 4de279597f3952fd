"""The admin command line as an operator types it and as a script reads it: `--config` after
the command, tables piped into other tools at 80 columns with JIDs too long for them, disabled
accounts in listings, changing one routing setting at a time, the one device syntax, error
texts that name their subject, and both fingerprints a client may show."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import signal
import ssl
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.integration.harness import (
    DOMAIN,
    TIMEOUT,
    Harness,
    Run,
    config_of,
    link,
    online,
    write_config,
)
from tests.integration.harness.admin import CLI_TIMEOUT

pytestmark = pytest.mark.server_config(admin={"socket": "admin.sock"})

ALICE, BOB = f"alice@{DOMAIN}", f"bob@{DOMAIN}"
# Long enough that no table holding them fits in 80 columns.
LONG_USER = "alexandra.konstantinopoulou-papadimitriou"
LONG_JID = f"{LONG_USER}@{DOMAIN}"
LONG_RESOURCE = "workstation-on-the-third-floor-by-the-window"
LONG_FULL_JID = f"{LONG_JID}/{LONG_RESOURCE}"
BOX_DRAWING = re.compile("[\u2500-\u257f]")
COLUMNS = re.compile(" {2,}")


async def run(*args: str, stdin: str | None = None) -> Run:
    """`chorus-presence ARGS...` exactly as given, its output piped, in an 80-column
    environment that asks for no colour either way."""
    hidden = {"CHORUS_CONFIG", "FORCE_COLOR", "TTY_COMPATIBLE", "NO_COLOR"}
    environment = {k: v for k, v in os.environ.items() if k not in hidden}
    environment["COLUMNS"] = "80"
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "chorus_presence",
        *args,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=environment,
    )
    async with asyncio.timeout(CLI_TIMEOUT):
        out, err = await process.communicate(stdin.encode() if stdin is not None else None)
    assert process.returncode is not None
    return Run(process.returncode, out.decode(), err.decode())


async def ok(*args: str, stdin: str | None = None) -> Run:
    result = await run(*args, stdin=stdin)
    assert result.code == 0, result
    assert "Traceback" not in result.err, result.err
    return result


async def refused(code: int, *args: str) -> str:
    """The one line on stderr of a command that exits with `code`, without the program name."""
    result = await run(*args)
    assert result.code == code, result
    assert "Traceback" not in result.err, result.err
    line = result.err.strip().splitlines()[-1]
    return line.removeprefix("chorus-presence: ")


def plain_rows(output: str, header: str) -> list[list[str]]:
    """The rows under `header` in plain table output, each split into its columns; checks that
    nothing in the output is a terminal's table."""
    assert not BOX_DRAWING.search(output), output
    assert "\x1b[" not in output and "\u2026" not in output, output
    lines = output.splitlines()
    start = next(n for n, line in enumerate(lines) if COLUMNS.split(line) == header.split("|"))
    columns = len(header.split("|"))
    rows = []
    for line in lines[start + 1 :]:
        if not line.strip():
            break
        cells = COLUMNS.split(line)
        if len(cells) != columns:
            break
        rows.append(cells)
    return rows


# --config after the command


SERVE_SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "serve"


@pytest.fixture(params=["chorus-presence", "scripts/serve"])
async def served(
    request: pytest.FixtureRequest, tmp_path: Path, tls_files: tuple[Path, Path]
) -> AsyncIterator[Harness]:
    """`chorus-presence serve --config PATH` as a child process, the form the README names, and
    `./scripts/serve --config PATH`, which prepares that same configuration first."""
    config = write_config(tmp_path, tls_files)
    if request.param == "scripts/serve":
        program = [str(SERVE_SCRIPT)]
    else:
        program = [sys.executable, "-m", "chorus_presence", "serve"]
    log = tmp_path / "serve.log"
    with log.open("wb") as stderr:
        process = await asyncio.create_subprocess_exec(
            *program,
            "--config",
            str(config),
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
        )
    try:
        assert process.stdout is not None
        printed = []
        async with asyncio.timeout(TIMEOUT):
            while True:
                line = (await process.stdout.readline()).decode()
                if not line:
                    pytest.fail(f"serve --config exited before serving: {log.read_text()}")
                printed.append(line)
                match = re.search(r"serving \S+ on [\d.]+:(\d+)", line)
                if match:
                    break
        if request.param == "scripts/serve":
            # init prepared this configuration, not the default one: its hint names it.
            assert f"--config {config}" in "".join(printed)
        server = _Served(process, config, int(match[1]))
        harness = Harness(server, tls_files[0])  # type: ignore[arg-type]
    except BaseException:
        if process.returncode is None:
            process.kill()
            await process.wait()
        raise
    try:
        yield harness
    finally:
        await harness.close()


class _Served:
    """What a Harness needs of a server it did not start: its port, its config file, and
    stopping it."""

    def __init__(self, process: asyncio.subprocess.Process, source: Path, port: int) -> None:
        self.process = process
        self.source = source
        self.port = port

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            async with asyncio.timeout(TIMEOUT):
                await self.process.wait()


async def test_serve_takes_config_after_the_command(served: Harness) -> None:
    config = str(served.server.source)  # type: ignore[attr-defined]
    added = await ok("user", "add", "alice", "--config", config, "--password-stdin", stdin="pw\n")
    assert ALICE in added.out
    # The user was added through the admin socket that served config names, so the server
    # runs on it: alice logs in on the port it printed.
    await served.login("alice", "pw")
    listed = await ok("user", "list", "--json", "--config", config)
    assert [entry["jid"] for entry in listed.json()] == [ALICE]
    # Between a group and its action too, and the same file twice is no conflict.
    await ok("--config", config, "user", "--config", config, "list")


async def test_two_different_configs_are_a_usage_error(tmp_path: Path) -> None:
    first, second = tmp_path / "first.toml", tmp_path / "second.toml"
    message = await refused(2, "--config", str(first), "user", "list", "--config", str(second))
    assert message == (
        f"Two configuration files are given, {str(first)!r} and {str(second)!r}: give --config once"
    )
    assert not first.exists() and not second.exists()


# Tables piped at 80 columns


async def test_piped_tables_keep_every_jid_whole(harness: Harness) -> None:
    config = str(config_of(harness))
    await harness.add_user(LONG_USER)
    await harness.add_user("bob")
    await link(harness, LONG_USER, "bob")
    long_client, _ = await online(harness, LONG_USER, LONG_RESOURCE)
    _, bob_in = await online(harness, "bob", "phone")
    long_client.send_presence(pshow="dnd", pstatus="On a call [with] the\nsupplier")
    # Once bob has it, the server has it.
    await bob_in.get(lambda p: p["from"] == LONG_FULL_JID and p["show"] == "dnd")
    await ok("--config", config, "roster", "add", "bob", LONG_JID, "--name", "Alexandra")
    await ok("--config", config, "roster", "add", "bob", f"{LONG_JID}.example")

    sessions = plain_rows(
        (await ok("--config", config, "session", "list")).out,
        "JID|Peer|TLS|State|Resumable|Hibernating|Inactive",
    )
    assert [row[0] for row in sessions] == [LONG_FULL_JID, f"{BOB}/phone"]

    presence = plain_rows(
        (await ok("--config", config, "presence", "show")).out,
        "User|Effective state|Resource|State|Status|Priority",
    )
    assert presence == [
        [LONG_JID, "dnd", LONG_RESOURCE, "dnd", "On a call [with] the supplier", "0"],
        [BOB, "available", "phone", "available", "-", "0"],
    ]

    users = plain_rows(
        (await ok("--config", config, "user", "list")).out, "Username|JID|State|Name"
    )
    assert users == [[LONG_USER, LONG_JID, "enabled", "-"], ["bob", BOB, "enabled", "-"]]

    roster = plain_rows(
        (await ok("--config", config, "roster", "show", "bob")).out,
        "Contact|Name|Subscription|Asked|Pre-approved|Groups",
    )
    assert [row[:2] for row in roster] == [[LONG_JID, "Alexandra"], [f"{LONG_JID}.example", "-"]]


# Disabled accounts


async def test_user_list_shows_disabled_accounts_and_disabling_twice_says_so(
    harness: Harness,
) -> None:
    config = str(config_of(harness))
    await harness.add_user("alice")
    await harness.add_user("bob")
    assert (await ok("--config", config, "user", "disable", "alice")).out == f"Disabled {ALICE}\n"

    assert (await ok("--config", config, "user", "list", "--json")).json() == [
        {"username": "alice", "jid": ALICE, "disabled": True, "name": None},
        {"username": "bob", "jid": BOB, "disabled": False, "name": None},
    ]
    table = plain_rows(
        (await ok("--config", config, "user", "list")).out, "Username|JID|State|Name"
    )
    assert table == [["alice", ALICE, "disabled", "-"], ["bob", BOB, "enabled", "-"]]

    # Again: nothing changes, it says so, and a script that makes sure of it succeeds.
    again = await ok("--config", config, "user", "disable", "alice")
    assert again.out == f"{ALICE} is already disabled\n"
    again_json = (await ok("--config", config, "user", "disable", "alice", "--json")).json()
    assert again_json == {"username": "alice", "jid": ALICE, "disabled": True, "changed": False}
    enabled = (await ok("--config", config, "user", "enable", "alice", "--json")).json()
    assert enabled == {"username": "alice", "jid": ALICE, "disabled": False, "changed": True}
    assert (await ok("--config", config, "user", "enable", "alice")).out == (
        f"{ALICE} is already enabled\n"
    )
    await harness.login("alice")


# Routing: one setting at a time, one device syntax


async def test_routing_set_changes_only_the_options_given(harness: Harness) -> None:
    config = str(config_of(harness))
    await harness.add_user("alice")
    await ok(
        "--config",
        config,
        "routing",
        "set",
        "alice",
        "--device",
        "desk-phone:Desk phone",
        "--device",
        "voicemail:Voicemail",
        "--device",
        "other:SIP: 1234",
        "--default",
        "Desk phone",
        "--map",
        "dnd=Voicemail",
    )

    def shown() -> dict:
        return {k: v for k, v in routing.json().items() if k != "user"}

    routing = await ok("--config", config, "routing", "set", "alice", "--on", "--json")
    devices = [
        {"name": "Desk phone", "kind": "desk-phone"},
        {"name": "Voicemail", "kind": "voicemail"},
        {"name": "SIP: 1234", "kind": "other"},
    ]
    assert shown() == {
        "enabled": True,
        "default": "Desk phone",
        "devices": devices,
        "map": {"dnd": "Voicemail"},
        "permission": False,
    }
    routing = await ok(
        "--config", config, "routing", "set", "alice", "--map", "away=SIP: 1234", "--json"
    )
    assert shown()["map"] == {"away": "SIP: 1234", "dnd": "Voicemail"}
    routing = await ok(
        "--config", config, "routing", "set", "alice", "--unmap", "dnd", "--no-default", "--json"
    )
    assert shown() == {
        "enabled": True,
        "default": None,
        "devices": devices,
        "map": {"away": "SIP: 1234"},
        "permission": False,
    }
    routing = await ok("--config", config, "routing", "set", "alice", "--off", "--json")
    assert (shown()["enabled"], shown()["devices"]) == (False, devices)

    # Removing a device a state still rings is refused, not done by dropping the mapping.
    message = await refused(
        1, "--config", config, "routing", "set", "alice", "--device", "voicemail:Voicemail"
    )
    assert "away" in message, message
    message = await refused(2, "--config", config, "routing", "set", "alice")
    assert message.startswith("Nothing to change"), message


async def test_devices_are_written_kind_first(harness: Harness) -> None:
    config = str(config_of(harness))
    await harness.add_user("alice")
    routing = await ok(
        "--config", config, "routing", "set", "alice", "--device", "mobile: My phone", "--json"
    )
    assert routing.json()["devices"] == [{"name": "My phone", "kind": "mobile"}]
    help_text = (await ok("routing", "set", "--help")).out
    assert "KIND:NAME" in help_text and "NAME:KIND" not in help_text
    # The old order names a kind that does not exist: a usage error saying how to write it.
    message = await refused(
        2, "--config", config, "routing", "set", "alice", "--device", "My phone:mobile"
    )
    assert "Device kind 'My phone' is not one of desk-phone" in message, message


# Error texts


async def test_errors_name_their_subject(harness: Harness) -> None:
    config = str(config_of(harness))
    await harness.add_user("alice")
    carol = f"carol@{DOMAIN}"
    for args, expected in (
        (["user", "remove", "carol"], f"No such user {carol}"),
        (["user", "add", "alice", "--password-stdin"], f"User {ALICE} already exists"),
        (
            ["roster", "add", "alice", "bob@@x"],
            "'bob@@x' is not a valid JID: invalid domain label '@x'",
        ),
        (
            ["roster", "show", f"{ALICE}/phone"],
            f"'{ALICE}/phone' is a full JID: give the bare JID {ALICE}",
        ),
        (
            ["roster", "show", "carol@example.org"],
            f"carol@example.org is not on this server's domain {DOMAIN}",
        ),
        (
            ["roster", "show", f"{DOMAIN}/x"],
            f"'{DOMAIN}/x' is not a user: give a localpart (alice) or a bare JID (alice@{DOMAIN})",
        ),
        (["roster", "show", DOMAIN], f"{DOMAIN} is a domain, not a user"),
        (["roster", "add", "alice", "alice"], f"{ALICE} cannot be a contact in their own roster"),
        (["roster", "remove", "alice", "carol"], f"{carol} is not in the roster of {ALICE}"),
        (["session", "kick", "alice"], f"No session for {ALICE}"),
        (
            ["routing", "set", "alice", "--map", "dnd"],
            "Argument --map: Write a state's device as STATE=NAME, such as dnd=Voicemail, not"
            " 'dnd'; see 'chorus-presence routing set --help'",
        ),
    ):
        code = 2 if args[0] == "routing" else 1
        assert await refused(code, "--config", config, *args) == expected, args


async def test_stopped_server_errors_name_the_command(
    tmp_path: Path, tls_files: tuple[Path, Path]
) -> None:
    config = str(write_config(tmp_path, tls_files))
    message = await refused(1, "--config", config, "session", "list")
    assert message == "The server is not running, and session list needs it"


# Fingerprints


async def test_init_prints_both_fingerprints_a_client_may_show(
    tmp_path: Path, tls_files: tuple[Path, Path]
) -> None:
    config = str(write_config(tmp_path, tls_files))
    der = ssl.PEM_cert_to_DER_cert(tls_files[0].read_text())
    printed = (await ok("--config", config, "init")).out

    for label, digest in (("SHA-256", hashlib.sha256), ("SHA-1", hashlib.sha1)):
        lines = [row.split() for row in printed.splitlines()]
        shown = next((words[1] for words in lines if words[:1] == [label]), None)
        assert shown is not None, printed
        assert shown.replace(":", "").lower() == digest(der).hexdigest(), printed
        assert re.fullmatch("([0-9A-F]{2}:)+[0-9A-F]{2}", shown), shown
