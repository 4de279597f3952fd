"""Hardening of accounts, registration and storage failures, end to end:

- an acknowledged in-band removal (XEP-0077 section 3.2) survives a SIGKILL right after the
  client saw the answer: the answer only goes out once the removal is committed;
- admins' names and reserved names are never registrable in-band, however they are spelt, while
  the admin command line may still create them; in-band registration is rate limited per address;
- an account removed while another of its sessions writes its roster logs no failure, and its
  contacts are still told it went;
- a write the database cannot take (the disk is full) is answered with a stanza error, after
  authentication and before it (registration), and the stream lives on;
- `chorus-presence init` creates the data directory, the database and the key private.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import stat
from contextlib import closing
from pathlib import Path

import pytest
from lxml import etree

from chorus_presence.config import ConfigError, load_config
from chorus_presence.core.limits import RegistrationLimiter
from tests.integration.harness import (
    DOMAIN,
    PASSWORD,
    Harness,
    Peer,
    RawClient,
    ServerProcess,
    cli,
    config_of,
    error_condition,
    features,
    link,
    ok,
    plain_token,
    raw_session,
    write_config,
)

REGISTER = "jabber:iq:register"
ROSTER = "jabber:iq:roster"
CLIENT = "jabber:client"
PLAINTEXT = {"tls": {"required": False}}
# Registration open, and loopback exempt from the per-address rate: these tests register more
# names than an hour allows from one address; the rate has its own tests.
OPEN = {
    "tls": {"required": False},
    "registration": {"open": True, "exempt_addresses": ["127.0.0.0/8"]},
}


def jid(name: str) -> str:
    return f"{name}@{DOMAIN}"


async def answer(raw: RawClient, stanza_id: str) -> etree._Element:
    """The IQ answering the request sent with `stanza_id`, parsed."""
    match = await raw.expect(rf"<iq [^>]*id=\"{stanza_id}\"[^>]*(?:/>|>.*?</iq>)")
    return etree.fromstring(match[0])


async def register(raw: RawClient, name: str, stanza_id: str) -> etree._Element:
    """One in-band registration (XEP-0077 section 3.1) on an unauthenticated stream."""
    raw.send(
        f"<iq type='set' id='{stanza_id}'><query xmlns='{REGISTER}'>"
        f"<username>{name}</username><password>{PASSWORD}</password></query></iq>"
    )
    return await answer(raw, stanza_id)


async def unauthenticated(harness: Harness) -> RawClient:
    raw = await harness.raw()
    await features(raw)
    return raw


async def form_still_served(raw: RawClient, stanza_id: str) -> None:
    """The stream lives on: the registration form is still answered on it."""
    raw.send(f"<iq type='get' id='{stanza_id}'><query xmlns='{REGISTER}'/></iq>")
    assert (await answer(raw, stanza_id)).get("type") == "result"


# 4. An acknowledged removal survives a crash


async def test_an_acknowledged_removal_survives_sigkill(
    tmp_path: Path, tls_files: tuple[Path, Path]
) -> None:
    config = write_config(tmp_path, tls_files, **OPEN)
    database = tmp_path / "chorus.db"
    server = await ServerProcess.start(config)
    harness = Harness(server, tls_files[0])
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        registrar = RawClient(reader, writer)
        await features(registrar)
        assert (await register(registrar, "alice", "reg")).get("type") == "result"
        registrar.close()
        # Many rows of alice's make her removal take a while, so a kill right after an answer
        # sent before the commit lands before it.
        with closing(sqlite3.connect(database, timeout=10)) as connection, connection:
            connection.executemany(
                "INSERT INTO roster_items (owner, contact) VALUES ('alice', ?)",
                [(f"contact{n}@{DOMAIN}",) for n in range(20_000)],
            )

        raw, _full_jid = await raw_session(harness, "alice")
        raw.send(f"<iq type='set' id='bye'><query xmlns='{REGISTER}'><remove/></query></iq>")
        reply = await answer(raw, "bye")
        # Killed the moment the client has the answer, before anything else can happen.
        server.process.kill()
        assert reply.get("type") == "result", etree.tostring(reply)
        await server.process.wait()
        raw.close()

        server = await ServerProcess.start(config)
        harness.server = server
        with closing(sqlite3.connect(database)) as connection:
            left = connection.execute(
                "SELECT (SELECT count(*) FROM accounts WHERE username = 'alice'),"
                " (SELECT count(*) FROM roster_items WHERE owner = 'alice')"
            ).fetchone()
        assert left == (0, 0), "the acknowledged removal was lost in the crash"
        login = await harness.raw()
        await features(login)
        login.send(
            f"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>"
            f"{plain_token('alice')}</auth>"
        )
        await login.expect(b"<failure[^>]*><not-authorized/>")
        login.close()
    finally:
        await server.stop()


# 5. Reserved names and admins' names


RESERVED_SPELLINGS = ["admin", "Admin", "ADMIN", "root", "postmaster", "abuse", "support"]


@pytest.mark.server_config(top_level={"admins": [jid("boss"), "chief@elsewhere.example"]}, **OPEN)
async def test_admin_and_reserved_names_are_not_registrable_in_band(harness: Harness) -> None:
    raw = await unauthenticated(harness)
    for number, name in enumerate([*RESERVED_SPELLINGS, "boss", "Boss", "BOSS"]):
        reply = await register(raw, name, f"r{number}")
        assert reply.get("type") == "error", (name, etree.tostring(reply))
        assert error_condition(reply) == ("cancel", "conflict"), name
    for name in ("admin", "root", "boss"):
        assert not await harness.ctx.accounts.exists(name), name
    # An admin of another domain reserves nothing here; ordinary names are still open.
    for number, name in enumerate(["chief", "alice"]):
        assert (await register(raw, name, f"ok{number}")).get("type") == "result", name
    # The operator may still create a reserved account.
    await ok(config_of(harness), "user", "add", "admin", "--password-stdin", stdin="pw\n")
    assert await harness.ctx.accounts.exists("admin")


@pytest.mark.server_config(
    tls={"required": False}, registration={"open": True, "reserved": ["helpdesk"]}
)
async def test_the_reserved_names_are_configurable(harness: Harness) -> None:
    raw = await unauthenticated(harness)
    assert error_condition(await register(raw, "HelpDesk", "r1")) == ("cancel", "conflict")
    # The configured list replaces the default one.
    assert (await register(raw, "support", "r2")).get("type") == "result"


# 5. Registration rate limited per address


@pytest.mark.server_config(
    tls={"required": False},
    registration={"open": True, "per_address_per_hour": 2, "exempt_addresses": []},
)
async def test_registration_is_rate_limited_per_address(harness: Harness) -> None:
    raw = await unauthenticated(harness)
    assert (await register(raw, "first", "r1")).get("type") == "result"
    assert (await register(raw, "second", "r2")).get("type") == "result"
    refused = await register(raw, "third", "r3")
    assert error_condition(refused) == ("wait", "policy-violation"), etree.tostring(refused)
    assert not await harness.ctx.accounts.exists("third")
    await form_still_served(raw, "form")
    # The address is limited, not the stream.
    other = await unauthenticated(harness)
    assert error_condition(await register(other, "fourth", "r4")) == ("wait", "policy-violation")


@pytest.mark.server_config(
    tls={"required": False},
    registration={"open": True, "per_address_per_hour": 1, "exempt_addresses": ["127.0.0.0/8"]},
)
async def test_exempt_addresses_are_not_rate_limited(harness: Harness) -> None:
    raw = await unauthenticated(harness)
    for number in range(3):
        assert (await register(raw, f"user{number}", f"r{number}")).get("type") == "result"


def test_the_limit_is_a_sliding_hour_per_address() -> None:
    now = [0.0]
    limiter = RegistrationLimiter(2, clock=lambda: now[0])
    assert limiter.allow("192.0.2.1") and limiter.allow("192.0.2.1")
    assert limiter.allow("192.0.2.2"), "another address has its own count"
    now[0] = 3599.0
    assert not limiter.allow("192.0.2.1"), "both attempts are still within the hour"
    now[0] = 3600.0
    # The first two left the window together; a refused attempt counted nothing.
    assert limiter.allow("192.0.2.1") and limiter.allow("192.0.2.1")
    assert not limiter.allow("192.0.2.1")


@pytest.mark.parametrize(
    ("values", "key"),
    [
        ("reserved = 'admin'", "registration.reserved"),
        ("reserved = ['ok', 'not@a-localpart']", "registration.reserved"),
        ("per_address_per_hour = 0", "registration.per_address_per_hour"),
        ("per_address_per_hour = 'five'", "registration.per_address_per_hour"),
        ("exempt_addresses = ['localhost']", "registration.exempt_addresses"),
        ("exempt_addresses = '127.0.0.1'", "registration.exempt_addresses"),
    ],
)
def test_bad_registration_settings_name_the_key(tmp_path: Path, values: str, key: str) -> None:
    path = tmp_path / "chorus.toml"
    path.write_text(f"[registration]\n{values}\n")
    # Rejected for what the value is, naming the key: "'registration.reserved' must be ...".
    with pytest.raises(ConfigError, match="'" + key.replace(".", r"\.") + "' must"):
        load_config(path)


def test_registration_defaults(tmp_path: Path) -> None:
    path = tmp_path / "chorus.toml"
    path.write_text("[registration]\nreserved = ['HelpDesk']\n")
    assert load_config(path).registration.reserved == ("helpdesk",)
    path.write_text("")
    registration = load_config(path).registration
    assert registration.reserved == ("admin", "root", "postmaster", "abuse", "support")
    assert registration.per_address_per_hour == 5
    assert registration.exempt_addresses == ()


# 14. Removal while another session of the account writes


@pytest.mark.server_config(**PLAINTEXT)
async def test_removal_while_another_session_writes_logs_no_failure(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    for name in ("alice", "bob"):
        await harness.add_user(name)
    await link(harness, "alice", "bob")
    peers = {}
    for name, resource in (("bob", "watch"), ("alice", "writer"), ("alice", "leaver")):
        raw, full_jid = await raw_session(harness, name, resource)
        peer = peers[resource] = Peer(raw, full_jid)
        peer.send("<presence/>")
        await peer.sync()
    bob, writer, leaver = peers["watch"], peers["writer"], peers["leaver"]
    gone: dict[str, asyncio.Future[None]] = {
        resource: asyncio.get_running_loop().create_future() for resource in ("writer", "leaver")
    }

    def watching(stanza: etree._Element) -> None:
        sender = stanza.get("from", "")
        if stanza.get("type") == "unavailable" and sender.startswith(jid("alice") + "/"):
            resource = sender.partition("/")[2]
            if resource in gone and not gone[resource].done():
                gone[resource].set_result(None)

    bob.listener = watching

    async def write_roster() -> int:
        """Roster sets, each sent as soon as the last is answered, until the stream ends."""
        sent = 0
        try:
            # Once the connection is over, a request would never be answered.
            while not writer.raw.reader.at_eof():
                await writer.iq(
                    "set",
                    f"<query xmlns='{ROSTER}'><item jid='{jid(f'c{sent}')}'/></query>",
                )
                sent += 1
                if sent == 5:
                    started.set()
        except ConnectionError:
            pass
        return sent

    started = asyncio.Event()
    writing = asyncio.ensure_future(write_roster())
    await asyncio.wait_for(started.wait(), 10)
    removal = await leaver.iq("set", f"<query xmlns='{REGISTER}'><remove/></query>")
    assert removal.get("type") == "result", etree.tostring(removal)
    await asyncio.wait_for(writing, 10)
    # The contact is told both of alice's resources went.
    await asyncio.wait_for(asyncio.gather(*gone.values()), 10)

    assert not await harness.ctx.accounts.exists("alice")
    failures = [
        record.getMessage() + (str(record.exc_info[1]) if record.exc_info else "")
        for record in caplog.records
        if record.levelno >= logging.ERROR
    ]
    assert failures == [], failures
    with closing(sqlite3.connect(harness.ctx.config.storage.database)) as connection:
        left = connection.execute(
            "SELECT count(*) FROM roster_items WHERE owner = 'alice'"
        ).fetchone()
    assert left == (0,)


# 13. A write the database cannot take


async def fill_the_disk(harness: Harness) -> None:
    """No page may be added to the server's database any more, as on a full disk."""
    # Reaching into the stores' shared connection: a test-only way to a real SQLITE_FULL.
    db = harness.ctx.repositories.accounts._db
    # On the write connection: the read connections never add a page anyway.
    async with db.transaction() as conn:
        # The limit cannot go below the current size, so 1 means "no new page".
        await conn.execute("PRAGMA max_page_count = 1")


@pytest.mark.server_config(**PLAINTEXT)
async def test_a_full_disk_answers_a_roster_set_with_resource_constraint(
    harness: Harness,
) -> None:
    await harness.add_user("alice")
    raw, full_jid = await raw_session(harness, "alice")
    alice = Peer(raw, full_jid)
    await fill_the_disk(harness)
    # Far more than fits in the pages already there.
    groups = "".join(f"<group>{n:04d}{'g' * 996}</group>" for n in range(60))
    refused = await alice.iq(
        "set", f"<query xmlns='{ROSTER}'><item jid='{jid('bob')}'>{groups}</item></query>"
    )
    assert error_condition(refused) == ("wait", "resource-constraint"), etree.tostring(refused)
    await alice.sync()
    roster = await alice.iq("get", f"<query xmlns='{ROSTER}'/>")
    assert roster.find(f"{{{ROSTER}}}query/{{{ROSTER}}}item") is None


@pytest.mark.server_config(**OPEN)
async def test_a_full_disk_answers_a_registration_with_resource_constraint(
    harness: Harness,
) -> None:
    raw = await unauthenticated(harness)
    await fill_the_disk(harness)
    # Small rows fit in the pages already there for a while; the first that does not fails.
    refused = None
    for number in range(500):
        reply = await register(raw, f"user{number}", f"r{number}")
        if reply.get("type") == "error":
            refused = reply
            break
    assert refused is not None, "the database never filled up"
    assert error_condition(refused) == ("wait", "resource-constraint"), etree.tostring(refused)
    await form_still_served(raw, "form")


# 12. init creates everything private


async def test_init_creates_private_files_whatever_the_umask(tmp_path: Path) -> None:
    config = tmp_path / "chorus.toml"
    data = tmp_path / "data"
    config.write_text(
        f'[storage]\ndatabase = "{data}/chorus.db"\n'
        f'[tls]\ncert = "{data}/tls/cert.pem"\nkey = "{data}/tls/key.pem"\n'
    )
    previous = os.umask(0o022)
    try:
        # The child inherits the umask.
        run = await cli(config, "init")
    finally:
        os.umask(previous)
    assert run.code == 0, run
    modes = {
        path.name: stat.S_IMODE(path.stat().st_mode)
        for path in (data, data / "chorus.db", data / "tls" / "key.pem")
    }
    assert modes == {"data": 0o700, "chorus.db": 0o600, "key.pem": 0o600}
    for suffix in ("-wal", "-shm"):
        sidecar = data / f"chorus.db{suffix}"
        if sidecar.exists():
            assert stat.S_IMODE(sidecar.stat().st_mode) == 0o600, sidecar
