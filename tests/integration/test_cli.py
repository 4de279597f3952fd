"""The admin command line, run as an operator would: a separate process per command."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from chorus_presence.certs import certificate_fingerprint
from chorus_presence.cli.common import console
from chorus_presence.core.bus import Bus
from chorus_presence.services.accounts import AccountService
from chorus_presence.storage.accounts import AccountRepository
from chorus_presence.storage.database import Database

CONFIG = """\
domain = "localhost"

[storage]
database = "{tmp}/data/chorus.db"

[tls]
cert = "{tmp}/data/tls/cert.pem"
key = "{tmp}/data/tls/key.pem"

[auth]
scram_iterations = 4096
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "chorus.toml"
    path.write_text(CONFIG.format(tmp=tmp_path))
    return path


def cli(
    *args: str, config: Path | None = None, stdin: str | None = None, env: dict | None = None
) -> subprocess.CompletedProcess[str]:
    options = ["--config", str(config)] if config else []
    environment = {k: v for k, v in os.environ.items() if k != "CHORUS_CONFIG"}
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "chorus_presence", *options, *args],
        input=stdin,
        # No stdin at all unless given: like CI, and like a pipe with nothing in it.
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=environment,
        timeout=60,
        check=False,
    )


def assert_fails(result: subprocess.CompletedProcess[str], code: int, *needles: str) -> None:
    assert result.returncode == code, result
    message = result.stderr.strip()
    assert message.startswith("chorus-presence:"), message
    assert "\n" not in message and "Traceback" not in message, message
    for needle in needles:
        assert needle in message


def usernames(config: Path) -> list[str]:
    result = cli("user", "list", "--json", config=config)
    assert result.returncode == 0, result
    return [entry["username"] for entry in json.loads(result.stdout)]


async def password_works(tmp_path: Path, username: str, password: str) -> bool:
    db = await Database.open(tmp_path / "data" / "chorus.db")
    try:
        accounts = AccountService(
            AccountRepository(db, "localhost"), Bus(), domain="localhost", iterations=4096
        )
        return await accounts.check_plain(username, password)
    finally:
        await db.close()


def test_init_creates_database_and_certificate(tmp_path: Path, config: Path) -> None:
    result = cli("init", config=config)
    assert result.returncode == 0, result
    cert = tmp_path / "data" / "tls" / "cert.pem"
    key = tmp_path / "data" / "tls" / "key.pem"
    assert (tmp_path / "data" / "chorus.db").is_file()
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert certificate_fingerprint(cert) in result.stdout, result.stdout
    assert "user add" in result.stdout
    assert "created" in result.stdout


def test_output_keeps_fingerprints_verbatim(capsys: pytest.CaptureFixture[str]) -> None:
    # Rich would turn ":AB:" into an emoji; init's fingerprint must survive as printed.
    console.print("12:AB:CD:34")
    assert capsys.readouterr().out == "12:AB:CD:34\n"


def test_init_is_idempotent(tmp_path: Path, config: Path) -> None:
    assert cli("init", config=config).returncode == 0
    assert (
        cli("user", "add", "alice", "--password-stdin", config=config, stdin="pw\n").returncode == 0
    )
    cert = tmp_path / "data" / "tls" / "cert.pem"
    before = cert.read_bytes()

    again = cli("init", config=config)
    assert again.returncode == 0, again
    assert "created" not in again.stdout
    assert cert.read_bytes() == before
    assert usernames(config) == ["alice"]


def test_init_keeps_half_a_certificate_pair(tmp_path: Path, config: Path) -> None:
    assert cli("init", config=config).returncode == 0
    (tmp_path / "data" / "tls" / "key.pem").unlink()
    assert_fails(cli("init", config=config), 1, "key.pem", "does not")
    assert (tmp_path / "data" / "tls" / "cert.pem").exists()


def test_init_reports_an_unreadable_certificate(tmp_path: Path, config: Path) -> None:
    assert cli("init", config=config).returncode == 0
    (tmp_path / "data" / "tls" / "cert.pem").write_text("not a certificate\n")
    assert_fails(cli("init", config=config), 1, "cert.pem")


async def test_user_lifecycle(tmp_path: Path, config: Path) -> None:
    added = cli("user", "add", "alice", "--password-stdin", config=config, stdin="s3cret\n")
    assert added.returncode == 0, added
    assert "alice@localhost" in added.stdout
    assert await password_works(tmp_path, "alice", "s3cret")

    duplicate = cli("user", "add", "alice", "--password-stdin", config=config, stdin="other\n")
    assert_fails(duplicate, 1, "alice@localhost", "already exists")

    table = cli("user", "list", config=config)
    assert table.returncode == 0, table
    assert "alice@localhost" in table.stdout
    listing = cli("user", "list", "--json", config=config)
    assert json.loads(listing.stdout) == [
        {"username": "alice", "jid": "alice@localhost", "disabled": False, "name": None}
    ]

    changed = cli("user", "passwd", "alice", "--password-stdin", config=config, stdin="n3w\n")
    assert changed.returncode == 0, changed
    assert await password_works(tmp_path, "alice", "n3w")
    assert not await password_works(tmp_path, "alice", "s3cret")

    removed = cli("user", "remove", "alice", config=config)
    assert removed.returncode == 0, removed
    assert usernames(config) == []
    assert_fails(cli("user", "remove", "alice", config=config), 1, "No such user")


def test_user_may_be_a_bare_jid_of_this_domain(config: Path) -> None:
    added = cli("user", "add", "Bob@LOCALHOST", "--password-stdin", config=config, stdin="pw\n")
    assert added.returncode == 0, added
    assert usernames(config) == ["bob"]
    assert cli("user", "remove", "bob@localhost", config=config).returncode == 0


@pytest.mark.parametrize(
    ("user", "needle"),
    [
        ("carol@example.org", "domain"),
        ("carol@localhost/phone", "bare JID"),
        ("car ol", "car ol"),
    ],
)
def test_bad_usernames_are_refused(config: Path, user: str, needle: str) -> None:
    result = cli("user", "add", user, "--password-stdin", config=config, stdin="pw\n")
    assert_fails(result, 1, needle)
    assert usernames(config) == []


def test_passwd_for_unknown_user_fails(config: Path) -> None:
    result = cli("user", "passwd", "nobody", "--password-stdin", config=config, stdin="pw\n")
    assert_fails(result, 1, "No such user")


def test_empty_password_is_refused(config: Path) -> None:
    result = cli("user", "add", "dave", "--password-stdin", config=config, stdin="\n")
    assert_fails(result, 1, "Password is empty")
    assert usernames(config) == []


def test_prompt_needs_a_terminal(config: Path) -> None:
    assert_fails(cli("user", "add", "erin", config=config), 2, "--password-stdin")


def test_config_from_environment(tmp_path: Path, config: Path) -> None:
    result = cli(
        "user", "add", "frank", "--password-stdin", stdin="pw\n", env={"CHORUS_CONFIG": str(config)}
    )
    assert result.returncode == 0, result
    assert usernames(config) == ["frank"]


@pytest.mark.parametrize(
    ("before", "after", "key"),
    [
        # Top-level keys must come before the first table, table entries after it.
        ("", '[registration]\ncolour = "blue"\n', "registration.colour"),
        ("", '[c2s]\nport = "5222"\n', "c2s.port"),
        ("shoe_size = 44\n", "", "shoe_size"),
    ],
)
@pytest.mark.parametrize("command", [["init"], ["user", "list"], ["serve"]])
def test_config_errors_name_the_key(
    tmp_path: Path, before: str, after: str, key: str, command: list[str]
) -> None:
    path = tmp_path / "broken.toml"
    path.write_text(before + CONFIG.format(tmp=tmp_path) + after)
    assert_fails(cli(*command, config=path), 2, key)
    assert not (tmp_path / "data").exists()


def test_missing_config_file(tmp_path: Path) -> None:
    assert_fails(cli("user", "list", config=tmp_path / "absent.toml"), 2, "absent.toml")


def test_usage_errors_exit_2(config: Path) -> None:
    assert cli(config=config).returncode == 2
    assert cli("user", config=config).returncode == 2
    assert cli("user", "frobnicate", config=config).returncode == 2
