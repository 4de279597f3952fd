"""The storage contract, on every backend: each test runs on SQLite and on PostgreSQL (a private
server, see tests/engines/postgres.py), through the factory and the interfaces only, the way
the server uses storage.

What the interfaces promise: accounts and credentials round-trip; removal takes every row
naming the account, atomically; a roster change set lands whole or not at all, with presence
blocks and settings riding along; block lists, presence blocks, settings, routing, last
activity, offline messages and server secrets keep what they are given; every write is
committed when the call returns. And what several processes sharing one store need: two
processes changing the same pair of rosters at once end in a consistent state with every
change counted, and agree on a secret created on first use; opening storage repairs presence
blocks that older versions left half-done, once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from chorus_presence.storage.accounts import AccountExists, RemovedAccount, ScramCredentials
from chorus_presence.storage.factory import Repositories
from chorus_presence.storage.last_activity import LastLogout
from chorus_presence.storage.rosters import PendingRequest, Roster, RosterChanges, RosterItem
from chorus_presence.storage.routing import StoredRouting
from chorus_presence.storage.settings import UserSettings
from chorus_presence.storage.sign_ins import SignIn, StoredToken, TokenUse
from tests.engines.stores import STORE_DOMAIN, StoreUnderTest

DOMAIN = STORE_DOMAIN
ALICE = f"alice@{DOMAIN}"
BOB = f"bob@{DOMAIN}"
CAROL = f"carol@{DOMAIN}"
DAVE = f"dave@{DOMAIN}"
USERS = ("alice", "bob", "carol", "dave")


@pytest.fixture
async def repos(store: StoreUnderTest) -> AsyncIterator[Repositories]:
    opened = await store.open()
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def users(repos: Repositories) -> Repositories:
    """`repos` with the accounts of USERS."""
    for name in USERS:
        await repos.accounts.create(name, {})
    return repos


def credentials(seed: bytes) -> dict[str, ScramCredentials]:
    return {
        "SCRAM-SHA-1": ScramCredentials(seed * 16, 4096, seed * 20, b"\x00" + seed * 19),
        "SCRAM-SHA-256": ScramCredentials(seed * 16, 5000, seed * 32, b"\xff" + seed * 31),
    }


# Accounts


async def test_accounts_round_trip(repos: Repositories) -> None:
    accounts = repos.accounts
    await accounts.create("alice", credentials(b"a"))
    account = await accounts.get("alice")
    assert account is not None
    assert account.username == "alice"
    assert account.disabled is False
    assert dict(account.credentials) == credentials(b"a")
    assert account.created_at.tzinfo is not None
    assert abs(account.created_at - datetime.now(UTC)) < timedelta(minutes=1)
    assert await accounts.get("bob") is None

    with pytest.raises(AccountExists):
        await accounts.create("alice", credentials(b"b"))
    assert await accounts.set_credentials("alice", credentials(b"c"))
    assert await accounts.set_disabled("alice", True)
    account = await accounts.get("alice")
    assert account is not None
    assert account.disabled is True
    assert dict(account.credentials) == credentials(b"c")
    assert not await accounts.set_credentials("nobody", credentials(b"x"))
    assert not await accounts.set_disabled("nobody", True)


async def test_accounts_are_listed_and_counted_in_order(repos: Repositories) -> None:
    accounts = repos.accounts
    assert await accounts.count() == 0
    for name in ("carol", "alice", "bob"):
        await accounts.create(name, credentials(b"p"))
    await accounts.set_disabled("bob", True)
    assert await accounts.list_usernames() == ["alice", "bob", "carol"]
    assert await accounts.list_with_status() == [
        ("alice", False),
        ("bob", True),
        ("carol", False),
    ]
    assert await accounts.count() == 3
    assert await accounts.delete("bob") is not None
    assert await accounts.delete("bob") is None
    assert await accounts.list_usernames() == ["alice", "carol"]
    assert await accounts.get("bob") is None


async def test_writes_are_committed_when_the_call_returns(store: StoreUnderTest) -> None:
    first, second = await store.open(), await store.open()
    try:
        await first.accounts.create("alice", credentials(b"a"))
        await first.block_lists.add("alice", ["spam.example"])
        # Another process's connections see both writes at once.
        assert await second.accounts.list_usernames() == ["alice"]
        assert await second.block_lists.load_all() == {"alice": {"spam.example"}}
    finally:
        await first.close()
        await second.close()


# Account removal


async def surround_alice(repos: Repositories) -> tuple[RosterItem, RosterItem]:
    """Rows naming alice on others' side (items in bob's and carol's rosters, a request waiting
    for dave, dave's block list, bob's presence blocked list) and rows of her own; returns the
    items bob and carol hold for her."""
    bob_item = RosterItem(ALICE, "Alice", "both", groups=("Friends", "Work"))
    carol_item = RosterItem(ALICE, subscription="none", pending_out=True)
    await repos.rosters.apply(
        RosterChanges(
            upserts=[
                ("bob", bob_item),
                ("carol", carol_item),
                ("alice", RosterItem(BOB, None, "both")),
            ],
            pending_add=[
                ("dave", PendingRequest(ALICE, "let me see")),
                ("alice", PendingRequest(CAROL)),
            ],
            presence_blocks_add=[("bob", ALICE), ("alice", DAVE)],
            settings=[("alice", {"away_when_offline": True})],
        )
    )
    await repos.block_lists.add("dave", [ALICE, "spam.example"])
    await repos.block_lists.add("alice", [CAROL])
    await repos.routing.replace(
        "alice",
        enabled=True,
        default_device="Desk",
        routing=StoredRouting((("Desk", "desk-phone"),), {}),
    )
    await repos.last_activity.record("alice", 1000.0, "gone")
    await repos.offline.store("alice", "<message/>", max_count=10, max_bytes=1000)
    return bob_item, carol_item


async def rows_naming(store: StoreUnderTest, username: str) -> dict[str, int]:
    """Rows, by table and column, that still belong to or point at the account."""
    jid = f"{username}@{DOMAIN}"
    checks = [
        ("accounts", "username", username),
        ("scram_credentials", "username", username),
        ("roster_versions", "owner", username),
        ("user_settings", "owner", username),
        ("roster_items", "owner", username),
        ("roster_items", "contact", jid),
        ("subscription_requests", "owner", username),
        ("subscription_requests", "contact", jid),
        ("presence_blocks", "owner", username),
        ("presence_blocks", "contact", jid),
        ("blocks", "owner", username),
        ("blocks", "jid", jid),
        ("devices", "owner", username),
        ("routing_map", "owner", username),
        ("last_activity", "owner", username),
        ("offline_messages", "owner", username),
        ("sign_ins", "username", username),
    ]
    found = {}
    for table, column, value in checks:
        [(count,)] = await store.rows(f"SELECT count(*) FROM {table} WHERE {column} = ?", value)
        if count:
            found[f"{table}.{column}"] = count
    return found


async def test_removal_takes_every_row_naming_the_account(
    store: StoreUnderTest, users: Repositories
) -> None:
    bob_item, carol_item = await surround_alice(users)
    assert len(await rows_naming(store, "alice")) == 16 - 2  # no credentials, no routing map

    removed = await users.accounts.delete("alice")

    # Bob's and carol's rosters were at version 1; losing alice's item moves them on.
    assert removed == RemovedAccount(
        username="alice",
        roster_items={"bob": (bob_item, 2), "carol": (carol_item, 2)},
        pending_owners=("dave",),
        block_list_owners=("dave",),
        presence_block_owners=("bob",),
    )
    assert await rows_naming(store, "alice") == {}
    assert await users.rosters.load("bob") == Roster("bob", version=2)
    assert await users.rosters.load("carol") == Roster("carol", version=2)
    # What named someone else stays.
    assert await users.block_lists.load_all() == {"dave": {"spam.example"}}
    assert await rows_naming(store, "bob") == {"accounts.username": 1, "roster_versions.owner": 1}


async def test_a_recreated_account_inherits_nothing(
    store: StoreUnderTest, users: Repositories
) -> None:
    await surround_alice(users)
    assert await users.accounts.delete("alice") is not None
    await users.accounts.create("alice", {})

    assert await rows_naming(store, "alice") == {"accounts.username": 1}
    assert await users.rosters.load("alice") == Roster("alice")
    assert await users.settings.get("alice") == UserSettings()
    assert await users.routing.load("alice") == StoredRouting((), {})
    assert await users.last_activity.get("alice") is None
    assert await users.offline.pending("alice") == []
    assert not await users.presence_blocks.contains("bob", ALICE)


async def test_removing_no_account_changes_nothing(users: Repositories) -> None:
    ghost = RosterItem(f"ghost@{DOMAIN}")
    await users.rosters.apply(RosterChanges(upserts=[("bob", ghost)]))
    assert await users.accounts.delete("ghost") is None
    assert await users.rosters.load("bob") == Roster("bob", 1, {ghost.contact: ghost})


# Rosters


async def test_roster_changes_land_together_with_versions(users: Repositories) -> None:
    rosters = users.rosters
    item = RosterItem(BOB, "Bob", "to", pending_out=False, approved=True, groups=("Work", "Aa"))
    versions = await rosters.apply(
        RosterChanges(
            upserts=[("alice", item), ("bob", RosterItem(ALICE, subscription="from"))],
            pending_add=[("carol", PendingRequest(ALICE, "hello"))],
        )
    )
    assert versions == {"alice": 1, "bob": 1}
    assert await rosters.load("alice") == Roster("alice", 1, {BOB: item})
    assert await rosters.load("carol") == Roster(
        "carol", 0, pending={ALICE: PendingRequest(ALICE, "hello")}
    )
    # An upsert replaces the item; a delete and a request answered change the versions again.
    renamed = RosterItem(BOB, None, "both")
    versions = await rosters.apply(
        RosterChanges(
            upserts=[("alice", renamed)],
            deletes=[("bob", ALICE)],
            pending_remove=[("carol", ALICE)],
        )
    )
    assert versions == {"alice": 2, "bob": 2}
    assert await rosters.load("alice") == Roster("alice", 2, {BOB: renamed})
    assert await rosters.load("bob") == Roster("bob", 2)
    assert await rosters.load("carol") == Roster("carol", 0)


async def test_roster_changes_carry_presence_blocks_and_settings(users: Repositories) -> None:
    await users.presence_blocks.add("bob", CAROL)
    changes = RosterChanges(
        upserts=[("bob", RosterItem(ALICE, subscription="from"))],
        presence_blocks_add=[("bob", DAVE)],
        presence_blocks_remove=[("bob", CAROL)],
        settings=[("bob", {"visibility_policy": "nobody", "away_when_offline": True})],
    )
    assert await users.rosters.apply(changes) == {"bob": 1}
    assert await users.presence_blocks.list("bob") == [DAVE]
    assert await users.settings.get("bob") == UserSettings(
        visibility_policy="nobody", away_when_offline=True
    )


async def test_a_failing_statement_rolls_back_every_change(users: Repositories) -> None:
    await users.presence_blocks.add("bob", CAROL)
    changes = RosterChanges(
        upserts=[("bob", RosterItem(ALICE)), ("alice", RosterItem(BOB))],
        pending_add=[("bob", PendingRequest(ALICE))],
        presence_blocks_add=[("bob", DAVE)],
        presence_blocks_remove=[("bob", CAROL)],
        # The column's CHECK constraint refuses this, after everything above was written.
        settings=[("bob", {"visibility_policy": "bogus"})],
    )
    with pytest.raises(Exception, match=r"(?i)check"):
        await users.rosters.apply(changes)
    assert await users.rosters.load("bob") == Roster("bob")
    assert await users.rosters.load("alice") == Roster("alice")
    assert await users.presence_blocks.list("bob") == [CAROL]
    assert await users.settings.get("bob") == UserSettings()


async def test_an_unknown_setting_is_refused_before_anything_is_written(
    users: Repositories,
) -> None:
    changes = RosterChanges(
        upserts=[("bob", RosterItem(ALICE))], settings=[("bob", {"colour": "blue"})]
    )
    with pytest.raises(ValueError, match="unknown settings: colour"):
        await users.rosters.apply(changes)
    assert await users.rosters.load("bob") == Roster("bob")


async def test_pending_requests_keep_their_order(users: Repositories) -> None:
    # Requests within one second are in contact order on every backend.
    await users.rosters.apply(
        RosterChanges(pending_add=[("alice", PendingRequest(DAVE)), ("alice", PendingRequest(BOB))])
    )
    await users.rosters.apply(RosterChanges(pending_add=[("alice", PendingRequest(CAROL, "me"))]))
    roster = await users.rosters.load("alice")
    assert list(roster.pending) == [BOB, CAROL, DAVE]
    assert roster.pending[CAROL] == PendingRequest(CAROL, "me")


async def test_pending_requests_keep_their_nicknames(users: Repositories) -> None:
    await users.rosters.apply(
        RosterChanges(pending_add=[("alice", PendingRequest(BOB, "hi", "Bob Ray"))])
    )
    assert (await users.rosters.load("alice")).pending[BOB] == PendingRequest(BOB, "hi", "Bob Ray")
    # A request stored again replaces its nickname with the new one, or with none.
    await users.rosters.apply(RosterChanges(pending_add=[("alice", PendingRequest(BOB))]))
    assert (await users.rosters.load("alice")).pending[BOB] == PendingRequest(BOB)


# Block lists, presence blocks, settings


async def test_one_block_list_is_loaded_alone(users: Repositories) -> None:
    blocks = users.block_lists
    assert await blocks.load("alice") == set()
    await blocks.add("alice", [CAROL, "spam.example"])
    await blocks.add("bob", ["spam.example"])
    assert await blocks.load("alice") == {CAROL, "spam.example"}
    assert await blocks.load("bob") == {"spam.example"}
    assert await blocks.load("carol") == set()


async def test_block_lists_per_owner(users: Repositories) -> None:
    blocks = users.block_lists
    assert await blocks.load_all() == {}
    await blocks.add("alice", [CAROL, "spam.example"])
    await blocks.add("alice", ["spam.example"])
    await blocks.add("bob", ["spam.example"])
    assert await blocks.load_all() == {"alice": {CAROL, "spam.example"}, "bob": {"spam.example"}}
    await blocks.remove("alice", ["spam.example", "never@blocked.example"])
    assert await blocks.load_all() == {"alice": {CAROL}, "bob": {"spam.example"}}
    assert await users.accounts.delete("alice") is not None
    assert await blocks.load_all() == {"bob": {"spam.example"}}


async def test_presence_blocks(users: Repositories) -> None:
    blocks = users.presence_blocks
    await blocks.add("alice", DAVE)
    await blocks.add("alice", BOB)
    await blocks.add("alice", BOB)
    assert await blocks.list("alice") == [BOB, DAVE]
    assert await blocks.contains("alice", BOB)
    assert not await blocks.contains("bob", ALICE)
    assert await blocks.remove("alice", BOB)
    assert not await blocks.remove("alice", BOB)
    assert await blocks.list("alice") == [DAVE]


async def test_settings(users: Repositories) -> None:
    settings = users.settings
    assert await settings.get("alice") == UserSettings()
    assert await settings.update("alice") == UserSettings()
    changed = await settings.update("alice", away_when_offline=True, visibility_policy="everyone")
    assert changed == UserSettings(visibility_policy="everyone", away_when_offline=True)
    await settings.update("bob", routing_permission=True)
    assert await settings.owners_with("away_when_offline") == {"alice"}
    assert await settings.owners_with("routing_permission") == {"bob"}
    with pytest.raises(ValueError, match="not a boolean setting"):
        await settings.owners_with("visibility_policy")
    with pytest.raises(ValueError, match="unknown settings: colour"):
        await settings.update("alice", colour="blue")
    await users.rosters.apply(RosterChanges(settings=[("carol", {})]))
    assert await settings.get("carol") == UserSettings()


# Routing, last activity, offline messages, server state


async def test_routing_is_replaced_whole_and_keeps_the_device_order(users: Repositories) -> None:
    routing = users.routing
    assert await routing.load("alice") == StoredRouting((), {})
    first = StoredRouting(
        (("Phone", "mobile"), ("Desk", "desk-phone"), ("Box", "voicemail")),
        {"available": "Desk", "away": "Phone", "offline": "Box"},
    )
    await routing.replace("alice", enabled=True, default_device="Box", routing=first)
    assert await routing.load("alice") == first
    assert await users.settings.get("alice") == UserSettings(
        routing_enabled=True, default_device="Box"
    )
    second = StoredRouting((("Soft", "softphone"), ("Phone", "mobile")), {"dnd": "Soft"})
    await routing.replace("alice", enabled=False, default_device=None, routing=second)
    assert await routing.load("alice") == second
    assert await users.settings.get("alice") == UserSettings()
    # A map naming a device that is not among the devices is refused, and nothing changes.
    with pytest.raises(Exception, match=r"(?i)foreign key"):
        await routing.replace(
            "alice",
            enabled=True,
            default_device=None,
            routing=StoredRouting((("Desk", "desk-phone"),), {"busy": "Nowhere"}),
        )
    assert await routing.load("alice") == second


async def test_last_activity(users: Repositories) -> None:
    last = users.last_activity
    assert await last.get("alice") is None
    await last.record("alice", 1234.5, "Gone fishing")
    await last.record("alice", 2345.25, None)
    assert await last.get("alice") == LastLogout(2345.25, None)


async def test_offline_messages_keep_to_the_quota(users: Repositories) -> None:
    offline = users.offline
    assert await offline.store("alice", "<message>1</message>", max_count=3, max_bytes=100)
    assert await offline.store("alice", "<message>é</message>", max_count=3, max_bytes=100)
    # 19 + 20 bytes stored (é is two bytes in UTF-8): 62 more would pass 100.
    assert not await offline.store("alice", "<m>" + "x" * 55 + "</m>", max_count=3, max_bytes=100)
    assert await offline.store("alice", "<message>3</message>", max_count=3, max_bytes=100)
    assert not await offline.store("alice", "<m/>", max_count=3, max_bytes=100)
    assert await offline.store("bob", "<m/>", max_count=3, max_bytes=100)
    pending = await offline.pending("alice")
    assert [message.stanza for message in pending] == [
        "<message>1</message>",
        "<message>é</message>",
        "<message>3</message>",
    ]
    assert pending[0].id < pending[1].id < pending[2].id
    assert abs(pending[0].stored_at - datetime.now(UTC)) < timedelta(minutes=1)
    await offline.remove("alice", pending[1].id)
    assert [message.id for message in await offline.pending("alice")] == [pending[2].id]
    assert len(await offline.pending("bob")) == 1


async def test_processes_agree_on_a_secret_created_on_first_use(store: StoreUnderTest) -> None:
    first, second = await store.open(), await store.open()
    try:
        secrets = await asyncio.gather(
            *(repos.server_state.secret("salt", 24) for repos in (first, second) * 4)
        )
        assert len(set(secrets)) == 1
        assert len(secrets[0]) == 24
        assert await first.server_state.secret("other") != secrets[0]
    finally:
        await first.close()
        await second.close()


# Two processes on the same pair


async def test_two_processes_changing_the_same_pair_end_consistent(store: StoreUnderTest) -> None:
    """Like two nodes, each with its own connections, running subscription exchanges between
    alice and bob at the same time: each change set writes both sides, in opposite orders on
    the two nodes. Every change lands whole, none is lost, none deadlocks."""
    first, second = await store.open(), await store.open()
    rounds = 40
    try:
        for name in ("alice", "bob"):
            await first.accounts.create(name, {})

        def mutual(subscription: str, mirror: str, *, reverse: bool) -> RosterChanges:
            upserts = [
                ("alice", RosterItem(BOB, subscription=subscription, groups=(subscription,))),
                ("bob", RosterItem(ALICE, subscription=mirror, groups=(mirror,))),
            ]
            answered = subscription == "both"
            return RosterChanges(
                upserts=upserts[::-1] if reverse else upserts,
                pending_add=[] if answered else [("alice", PendingRequest(BOB, subscription))],
                pending_remove=[("alice", BOB)] if answered else [],
            )

        async def node(repos: Repositories, changes: list[RosterChanges]) -> None:
            await asyncio.gather(*(repos.rosters.apply(change) for change in changes))

        await asyncio.gather(
            node(
                first,
                [
                    mutual(s, m, reverse=False)
                    for s, m in [("to", "from"), ("both", "both")] * (rounds // 2)
                ],
            ),
            node(
                second,
                [
                    mutual(s, m, reverse=True)
                    for s, m in [("from", "to"), ("none", "none")] * (rounds // 2)
                ],
            ),
        )

        mirror = {"to": "from", "from": "to", "both": "both", "none": "none"}
        alice, bob = await first.rosters.load("alice"), await second.rosters.load("bob")
        alice_sees, bob_sees = alice.items[BOB].subscription, bob.items[ALICE].subscription
        assert bob_sees == mirror[alice_sees]
        # Each side's groups and pending request came from the same change set as its item.
        assert alice.items[BOB].groups == (alice_sees,)
        assert bob.items[ALICE].groups == (bob_sees,)
        assert (BOB in alice.pending) == (alice_sees != "both")
        # Every change set bumped both versions once.
        assert alice.version == bob.version == 2 * rounds
    finally:
        await first.close()
        await second.close()


# The start-up repair of half-done presence blocks


async def half_done(store: StoreUnderTest) -> None:
    """Presence blocks an older version left half-done, and healthy rows, written behind the
    repositories' backs."""
    repos = await store.open()
    try:
        for name in ("alice", "bob", "carol", "dave", "erin"):
            await repos.accounts.create(name, {})
    finally:
        await repos.close()
    await store.executemany(
        "INSERT INTO roster_items (owner, contact, subscription, pending_out, approved)"
        " VALUES (?, ?, ?, ?, ?)",
        [
            # alice blocked bob, but each still sees the other.
            ("alice", BOB, "both", False, False),
            ("bob", ALICE, "both", False, False),
            # alice blocked carol, who still sees her, with a pre-approval left over.
            ("alice", CAROL, "from", False, True),
            ("carol", ALICE, "to", False, False),
            # alice blocked someone on another server, who still sees her.
            ("alice", "mallory@remote.example", "from", False, False),
            # Consistent: dave blocked erin and erin's subscription went with it.
            ("dave", f"erin@{DOMAIN}", "to", False, False),
            ("erin", DAVE, "from", True, False),
            # Not blocked at all.
            ("dave", BOB, "both", False, False),
            ("bob", DAVE, "both", False, False),
        ],
    )
    await store.executemany(
        "INSERT INTO presence_blocks (owner, contact) VALUES (?, ?)",
        [
            ("alice", BOB),
            ("alice", CAROL),
            ("alice", "mallory@remote.example"),
            ("dave", f"erin@{DOMAIN}"),
        ],
    )
    await store.executemany(
        "INSERT INTO roster_versions (owner, version) VALUES (?, ?)",
        [("alice", 7), ("bob", 3), ("carol", 1), ("dave", 2), ("erin", 4)],
    )


async def items(store: StoreUnderTest) -> dict[tuple[str, str], tuple[str, int, int]]:
    return {
        (owner, contact): (subscription, pending, approved)
        for owner, contact, subscription, pending, approved in await store.rows(
            "SELECT owner, contact, subscription, pending_out, approved FROM roster_items"
        )
    }


async def versions(store: StoreUnderTest) -> dict[str, int]:
    return dict(await store.rows("SELECT owner, version FROM roster_versions"))


async def test_opening_storage_repairs_half_done_presence_blocks(
    store: StoreUnderTest, caplog: pytest.LogCaptureFixture
) -> None:
    await half_done(store)
    caplog.set_level(logging.INFO, logger="chorus_presence")
    # Two processes starting at once: one of them repairs, once.
    opened = await asyncio.gather(store.open(), store.open())
    for repos in opened:
        await repos.close()

    assert await items(store) == {
        # The block wins: alice's presence is no longer sent to those she blocked...
        ("alice", BOB): ("to", 0, 0),
        ("alice", CAROL): ("none", 0, 0),
        ("alice", "mallory@remote.example"): ("none", 0, 0),
        # ...and their side of the same subscriptions says so.
        ("bob", ALICE): ("from", 0, 0),
        ("carol", ALICE): ("none", 0, 0),
        # Untouched.
        ("dave", f"erin@{DOMAIN}"): ("to", 0, 0),
        ("erin", DAVE): ("from", 1, 0),
        ("dave", BOB): ("both", 0, 0),
        ("bob", DAVE): ("both", 0, 0),
    }
    # Clients holding a cached roster see the change: every changed roster has a new version.
    assert await versions(store) == {"alice": 8, "bob": 4, "carol": 2, "dave": 2, "erin": 4}
    assert len(await store.rows("SELECT 1 FROM presence_blocks")) == 4
    repairs = [record for record in caplog.records if "presence block" in record.getMessage()]
    assert len(repairs) == 1, [record.getMessage() for record in repairs]
    assert repairs[0].levelno == logging.WARNING
    assert "3" in repairs[0].getMessage()

    # Once repaired, the database is consistent: opening it again changes and logs nothing.
    before = (await items(store), await versions(store))
    caplog.clear()
    repos = await store.open()
    await repos.close()
    assert (await items(store), await versions(store)) == before
    assert not [record for record in caplog.records if "presence block" in record.getMessage()]


# Sign-ins


def token(seed: bytes, expires_at: float) -> StoredToken:
    return StoredToken(seed * 32, b"r" + seed * 31, expires_at)


async def sign_in(
    repos: Repositories,
    client: str = "browser",
    seed: bytes = b"1",
    *,
    now: float = 1000.0,
    keep: int = 100,
    username: str = "alice",
) -> str:
    return await repos.sign_ins.start(
        username,
        client,
        new_id=f"id-{client}",
        label=f"Portal on {client}",
        mechanism="HT-SHA-256-NONE",
        token=token(seed, now + 500.0),
        now=now,
        keep=keep,
    )


async def present(
    repos: Repositories,
    seed: bytes,
    *,
    now: float,
    next_seed: bytes | None = None,
    client: str = "browser",
    mechanism: str = "HT-SHA-256-NONE",
    invalidate: bool = False,
) -> TokenUse | None:
    replacement = token(next_seed, now + 500.0) if next_seed else None
    return await repos.sign_ins.use(
        "alice",
        client,
        mechanism,
        seed * 32,
        now=now,
        replacement=replacement,
        invalidate=invalidate,
    )


async def test_a_sign_in_keeps_two_token_slots_and_rotates(users: Repositories) -> None:
    assert await sign_in(users) == "id-browser"
    assert await users.sign_ins.of_account("alice", 1000.0) == [
        SignIn("id-browser", "browser", "Portal on browser", "HT-SHA-256-NONE", 1000, 1000, 1500)
    ]
    used = TokenUse("id-browser", "Portal on browser", b"r" + b"1" * 31, expired=False)
    # Token 1 is used and 2 issued; 1 still works until 2 is used, which replaces 2 by 3...
    assert await present(users, b"1", now=1010.0, next_seed=b"2") == used
    assert await present(users, b"1", now=1020.0, next_seed=b"3") == used
    # ... so 2, never used and replaced, is gone.
    assert await present(users, b"2", now=1030.0, next_seed=b"4") is None
    assert await present(users, b"3", now=1040.0, next_seed=b"5") is not None
    # Using 3 made 1 obsolete.
    assert await present(users, b"1", now=1050.0, next_seed=b"6") is None
    [listed] = await users.sign_ins.of_account("alice", 1050.0)
    assert (listed.created_at, listed.last_used_at, listed.expires_at) == (1000, 1040, 1540)
    # Tokens are bound to their client and mechanism, and are nobody else's.
    assert await present(users, b"5", now=1060.0, client="phone") is None
    assert await present(users, b"5", now=1060.0, mechanism="HT-SHA-256-ENDP") is None
    assert (
        await users.sign_ins.use(
            "bob", "browser", "HT-SHA-256-NONE", b"5" * 32, now=1060.0, replacement=None
        )
        is None
    )
    # A use without a replacement keeps the next token as it is.
    assert await present(users, b"5", now=1070.0) is not None
    assert await present(users, b"5", now=1080.0) is not None


async def test_an_expired_token_only_empties_its_slot(users: Repositories) -> None:
    await sign_in(users)
    assert await present(users, b"1", now=1100.0, next_seed=b"2") is not None
    # Token 1 (current) expired at 1500; token 2 (next) expires at 1600.
    expired = await present(users, b"1", now=1550.0, next_seed=b"3")
    assert expired is not None and expired.expired
    assert await present(users, b"1", now=1551.0) is None
    [listed] = await users.sign_ins.of_account("alice", 1551.0)
    assert (listed.last_used_at, listed.expires_at) == (1100, 1600)
    # Once no token is left, the sign-in is gone.
    assert (await present(users, b"2", now=1700.0)).expired  # type: ignore[union-attr]
    assert await users.sign_ins.of_account("alice", 0.0) == []


async def test_invalidating_drops_the_sign_in_unless_a_token_follows(users: Repositories) -> None:
    await sign_in(users)
    await sign_in(users, "phone")
    assert await present(users, b"1", now=1010.0, invalidate=True) is not None
    assert [s.id for s in await users.sign_ins.of_account("alice", 1010.0)] == ["id-phone"]
    followed = await present(
        users, b"1", now=1011.0, client="phone", next_seed=b"2", invalidate=True
    )
    assert followed is not None
    assert await present(users, b"1", now=1012.0, client="phone") is None
    assert await present(users, b"2", now=1013.0, client="phone") is not None


async def test_a_new_password_login_replaces_the_clients_tokens(users: Repositories) -> None:
    await sign_in(users, now=1000.0)
    await present(users, b"1", now=1010.0, next_seed=b"2")
    # The same client logs in with its password again: one sign-in, still its id and age.
    assert await sign_in(users, seed=b"9", now=1020.0) == "id-browser"
    for seed in (b"1", b"2"):
        assert await present(users, seed, now=1030.0) is None
    assert await present(users, b"9", now=1030.0) is not None
    [listed] = await users.sign_ins.of_account("alice", 1030.0)
    assert (listed.created_at, listed.last_used_at) == (1000, 1030)


async def test_old_sign_ins_make_way_for_new_ones(users: Repositories) -> None:
    await sign_in(users, "old", now=1000.0)
    await sign_in(users, "older", now=900.0)
    await sign_in(users, "bobs", now=100.0, username="bob")
    # At 1450 'older' (expiring 1400) is gone; with keep=2, so is the least recently used.
    await sign_in(users, "new", now=1450.0, keep=2)
    await sign_in(users, "newer", now=1460.0, keep=2)
    assert [s.id for s in await users.sign_ins.of_account("alice", 1460.0)] == [
        "id-newer",
        "id-new",
    ]
    # Listing leaves out what expired, whatever is stored.
    assert await users.sign_ins.of_account("alice", 2000.0) == []
    assert [s.id for s in await users.sign_ins.of_account("bob", 500.0)] == ["id-bobs"]


async def test_revoking_sign_ins(users: Repositories) -> None:
    for client in ("a", "b", "c"):
        await sign_in(users, client)
    await sign_in(users, "d", username="bob")
    revoked = await users.sign_ins.revoke("alice", ["id-b", "id-d", "id-missing"])
    assert [s.id for s in revoked] == ["id-b"]
    assert await users.sign_ins.revoke("alice", []) == []
    assert [s.id for s in await users.sign_ins.revoke("alice")] == ["id-a", "id-c"]
    assert await users.sign_ins.of_account("alice", 1000.0) == []
    assert [s.id for s in await users.sign_ins.of_account("bob", 1000.0)] == ["id-d"]
    assert await present(users, b"1", now=1010.0, client="a") is None


async def test_disabling_or_removing_an_account_drops_its_sign_ins(
    store: StoreUnderTest, users: Repositories
) -> None:
    await sign_in(users)
    await sign_in(users, "bobs", username="bob")
    assert await users.accounts.set_disabled("alice", True)
    assert await users.sign_ins.of_account("alice", 1000.0) == []
    assert await users.accounts.set_disabled("alice", False)
    assert await present(users, b"1", now=1010.0) is None
    # Enabling drops nothing.
    await sign_in(users)
    assert await users.accounts.set_disabled("alice", False)
    assert len(await users.sign_ins.of_account("alice", 1000.0)) == 1
    assert await users.accounts.delete("alice") is not None
    assert await rows_naming(store, "alice") == {}
    assert len(await users.sign_ins.of_account("bob", 1000.0)) == 1


# Schema


async def test_contact_lookups_are_indexed(store: StoreUnderTest, repos: Repositories) -> None:
    if store.backend == "sqlite":
        found = await store.rows("SELECT tbl_name, sql FROM sqlite_master WHERE type = 'index'")
    else:
        found = await store.rows("SELECT tablename, indexdef FROM pg_indexes")
    indexes = {(table, sql) for table, sql in found if sql}
    for table, column in [
        ("roster_items", "contact"),
        ("subscription_requests", "contact"),
        ("presence_blocks", "contact"),
        ("blocks", "jid"),
    ]:
        assert any(t == table and sql.endswith(f"({column})") for t, sql in indexes), table
