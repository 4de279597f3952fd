"""SCRAM credentials, the account repository and the account service, on real SQLite files."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from scramp import ScramClient, ScramMechanism

from chorus_presence.core.bus import Bus
from chorus_presence.services.accounts import (
    AccountExists,
    AccountService,
    InvalidPassword,
    InvalidUsername,
)
from chorus_presence.services.credentials import (
    MAX_PASSWORD_LENGTH,
    MECHANISMS,
    ScramCredentials,
    derive_credentials,
    fake_credentials,
    prepare_password,
    verify_password,
)
from chorus_presence.storage.accounts import AccountRepository
from chorus_presence.storage.database import Database

# The lowest count scramp accepts keeps the key derivations in these tests fast.
ITERATIONS = 4096
DOMAIN = "chorus.test"


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = await Database.open(tmp_path / "chorus.db")
    yield database
    await database.close()


@pytest.fixture
def repo(db: Database) -> AccountRepository:
    return AccountRepository(db, DOMAIN)


@pytest.fixture
def service(repo: AccountRepository) -> AccountService:
    return AccountService(repo, Bus(), domain=DOMAIN, iterations=ITERATIONS)


# Credentials


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_verify_password_against_scramp_credentials(mechanism: str) -> None:
    salt, stored_key, server_key, iterations = ScramMechanism(mechanism).make_auth_info(
        "correct horse", iteration_count=ITERATIONS
    )
    credentials = ScramCredentials(salt, iterations, stored_key, server_key)
    assert verify_password("correct horse", credentials, mechanism)
    assert not verify_password("correct horsf", credentials, mechanism)
    assert not verify_password("", credentials, mechanism)


def test_derived_credentials_have_one_salt_per_mechanism() -> None:
    derived = derive_credentials("s3cret", ITERATIONS)
    assert tuple(derived) == MECHANISMS
    assert derived["SCRAM-SHA-1"].salt != derived["SCRAM-SHA-256"].salt
    assert len(derived["SCRAM-SHA-1"].stored_key) == 20
    assert len(derived["SCRAM-SHA-256"].stored_key) == 32
    for mechanism, credentials in derived.items():
        assert credentials.iterations == ITERATIONS
        assert verify_password("s3cret", credentials, mechanism)
        assert not verify_password("S3cret", credentials, mechanism)


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_derived_credentials_complete_a_scram_exchange(mechanism: str) -> None:
    credentials = derive_credentials("pencil", ITERATIONS)[mechanism]

    def auth_info(username: str) -> tuple[bytes, bytes, bytes, int]:
        assert username == "user"
        c = credentials
        return c.salt, c.stored_key, c.server_key, c.iterations

    server = ScramMechanism(mechanism).make_server(auth_info)
    client = ScramClient([mechanism], "user", "pencil")
    server.set_client_first(client.get_client_first())
    client.set_server_first(server.get_server_first())
    server.set_client_final(client.get_client_final())
    client.set_server_final(server.get_server_final())


def test_prepare_password_rejects_bad_passwords() -> None:
    assert prepare_password("I\u00adX") == "IX"  # SASLprep maps soft hyphen to nothing
    with pytest.raises(ValueError, match="empty"):
        prepare_password("")
    with pytest.raises(ValueError, match="empty"):
        prepare_password("\u00ad")
    with pytest.raises(ValueError, match="longer"):
        prepare_password("x" * (MAX_PASSWORD_LENGTH + 1))
    with pytest.raises(ValueError, match="not allowed"):
        prepare_password("a\u0007b")


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_fake_credentials_are_deterministic_and_never_verify(mechanism: str) -> None:
    secret = b"k" * 32
    first = fake_credentials(secret, "ghost", mechanism, ITERATIONS)
    assert first == fake_credentials(secret, "ghost", mechanism, ITERATIONS)
    assert first.salt != fake_credentials(secret, "other", mechanism, ITERATIONS).salt
    assert first.salt != fake_credentials(b"j" * 32, "ghost", mechanism, ITERATIONS).salt
    real = derive_credentials("pw", ITERATIONS)[mechanism]
    assert len(first.salt) == len(real.salt)
    assert len(first.stored_key) == len(real.stored_key)
    assert first.iterations == ITERATIONS
    assert not verify_password("", first, mechanism)
    assert not verify_password("ghost", first, mechanism)


def test_unknown_mechanisms_are_refused() -> None:
    with pytest.raises(ValueError, match="unsupported mechanism"):
        fake_credentials(b"k", "ghost", "SCRAM-SHA-512", ITERATIONS)
    salt = b"s" * 16
    credentials = ScramCredentials(salt, ITERATIONS, b"", b"")
    with pytest.raises(ValueError, match="unsupported mechanism"):
        verify_password("pw", credentials, "PLAIN")


# Repository


async def test_repository_create_and_get(repo: AccountRepository) -> None:
    credentials = derive_credentials("pw", ITERATIONS)
    await repo.create("alice", credentials)
    account = await repo.get("alice")
    assert account is not None
    assert account.username == "alice"
    assert account.disabled is False
    assert dict(account.credentials) == credentials
    assert abs(account.created_at - datetime.now(UTC)) < timedelta(minutes=1)
    assert await repo.get("bob") is None


async def test_repository_refuses_duplicates(repo: AccountRepository) -> None:
    await repo.create("alice", derive_credentials("pw", ITERATIONS))
    with pytest.raises(AccountExists) as info:
        await repo.create("alice", derive_credentials("other", ITERATIONS))
    assert info.value.username == "alice"
    account = await repo.get("alice")
    assert account is not None
    assert verify_password("pw", account.credentials["SCRAM-SHA-256"], "SCRAM-SHA-256")


async def test_repository_updates(repo: AccountRepository) -> None:
    await repo.create("alice", derive_credentials("old", ITERATIONS))
    assert await repo.set_credentials("alice", derive_credentials("new", ITERATIONS))
    assert await repo.set_disabled("alice", True)
    account = await repo.get("alice")
    assert account is not None
    assert account.disabled is True
    assert verify_password("new", account.credentials["SCRAM-SHA-1"], "SCRAM-SHA-1")
    assert not await repo.set_credentials("nobody", derive_credentials("x", ITERATIONS))
    assert not await repo.set_disabled("nobody", True)


async def test_repository_list_count_delete(db: Database, repo: AccountRepository) -> None:
    assert await repo.count() == 0
    assert await repo.list_usernames() == []
    for name in ("carol", "alice", "bob"):
        await repo.create(name, derive_credentials("pw", ITERATIONS))
    assert await repo.list_usernames() == ["alice", "bob", "carol"]
    assert await repo.count() == 3
    assert await repo.delete("bob") is not None
    assert await repo.delete("bob") is None
    assert await repo.list_usernames() == ["alice", "carol"]
    async with db.read() as conn, conn.execute("SELECT count(*) FROM scram_credentials") as cur:
        row = await cur.fetchone()
    assert row is not None and row[0] == 4  # bob's two rows went with him


async def test_writes_are_durable_across_reopen(tmp_path: Path) -> None:
    path = tmp_path / "chorus.db"
    db = await Database.open(path)
    await AccountRepository(db, DOMAIN).create("alice", derive_credentials("pw", ITERATIONS))
    await db.close()
    db = await Database.open(path)
    try:
        assert await AccountRepository(db, DOMAIN).list_usernames() == ["alice"]
    finally:
        await db.close()


async def test_no_password_is_stored(tmp_path: Path) -> None:
    path = tmp_path / "chorus.db"
    db = await Database.open(path)
    await AccountService(
        AccountRepository(db, DOMAIN), Bus(), domain=DOMAIN, iterations=ITERATIONS
    ).create(
        "alice", "distinctive-password"
    )
    await db.close()
    for file in tmp_path.iterdir():
        assert b"distinctive-password" not in file.read_bytes()


# Service


async def test_service_create_normalises_the_username(service: AccountService) -> None:
    assert await service.create("Alice", "pw") == "alice"
    assert await service.exists("ALICE")
    assert await service.usernames() == ["alice"]
    with pytest.raises(AccountExists):
        await service.create("alice", "other")


async def test_service_rejects_bad_input(service: AccountService) -> None:
    with pytest.raises(InvalidUsername):
        await service.create("a@b", "pw")
    with pytest.raises(InvalidUsername):
        await service.create("", "pw")
    with pytest.raises(InvalidPassword):
        await service.create("alice", "")
    with pytest.raises(InvalidPassword):
        await service.create("alice", "x" * (MAX_PASSWORD_LENGTH + 1))
    assert await service.usernames() == []


async def test_check_plain(service: AccountService) -> None:
    await service.create("alice", "right")
    assert await service.check_plain("alice", "right")
    assert await service.check_plain("ALICE", "right")
    assert not await service.check_plain("alice", "wrong")
    assert not await service.check_plain("alice", "")
    assert not await service.check_plain("nobody", "right")
    assert not await service.check_plain("in valid@", "right")


async def test_change_password(service: AccountService) -> None:
    await service.create("alice", "old")
    assert await service.change_password("Alice", "new")
    assert await service.check_plain("alice", "new")
    assert not await service.check_plain("alice", "old")
    assert not await service.change_password("nobody", "new")
    with pytest.raises(InvalidPassword):
        await service.change_password("alice", "")


async def test_disabled_accounts_cannot_authenticate(service: AccountService) -> None:
    await service.create("alice", "pw")
    assert await service.set_disabled("alice", True)
    assert not await service.check_plain("alice", "pw")
    assert await service.scram_credentials("alice", "SCRAM-SHA-256") is None
    assert await service.set_disabled("alice", False)
    assert await service.check_plain("alice", "pw")
    assert not await service.set_disabled("nobody", True)


async def test_scram_credentials(service: AccountService) -> None:
    await service.create("alice", "pw")
    for mechanism in MECHANISMS:
        credentials = await service.scram_credentials("Alice", mechanism)
        assert credentials is not None
        assert verify_password("pw", credentials, mechanism)
    assert await service.scram_credentials("nobody", "SCRAM-SHA-1") is None
    with pytest.raises(ValueError, match="unsupported mechanism"):
        await service.scram_credentials("alice", "SCRAM-SHA-512")


async def test_service_remove(service: AccountService) -> None:
    await service.create("alice", "pw")
    assert await service.remove("ALICE")
    assert not await service.exists("alice")
    assert not await service.remove("alice")
    assert not await service.remove("a@b")
    assert not await service.check_plain("alice", "pw")


def test_scram_keys_follow_rfc_5802() -> None:
    # StoredKey = H(HMAC(SaltedPassword, "Client Key")); a cross-check independent of scramp.
    credentials = derive_credentials("pencil", ITERATIONS)["SCRAM-SHA-256"]
    salted = hashlib.pbkdf2_hmac("sha256", b"pencil", credentials.salt, ITERATIONS)
    client_key = hmac.digest(salted, b"Client Key", "sha256")
    assert credentials.stored_key == hashlib.sha256(client_key).digest()
    assert credentials.server_key == hmac.digest(salted, b"Server Key", "sha256")
