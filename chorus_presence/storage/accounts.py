"""Persistence of accounts, their SCRAM credentials, and account removal.

Usernames arrive here already normalised; this module stores and fetches, nothing more.
Every write is committed before its method returns. Removing an account also removes every
row on other users' side that names it, so a later account of the same name inherits nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from sqlite3 import Row
from typing import Any, Protocol

import aiosqlite

from chorus_presence.storage.database import Database
from chorus_presence.storage.rosters import ITEM_COLUMNS, RosterItem, bump_version, item_from_row


class AccountExists(Exception):
    """An account with this username is already registered."""

    def __init__(self, username: str) -> None:
        super().__init__(f"account {username!r} already exists")
        self.username = username


@dataclass(frozen=True)
class ScramCredentials:
    salt: bytes
    iterations: int
    stored_key: bytes
    server_key: bytes


@dataclass(frozen=True)
class Account:
    username: str
    disabled: bool
    created_at: datetime
    # Keyed by SASL mechanism name, e.g. "SCRAM-SHA-256".
    credentials: Mapping[str, ScramCredentials]


@dataclass(frozen=True)
class RemovedAccount:
    """What removing an account took from other users, so their live state can follow."""

    username: str
    # Other owner -> (the item they had for the account, their roster version after removal).
    roster_items: dict[str, tuple[RosterItem, int]]
    # Owners who had an unanswered subscription request from the account.
    pending_owners: tuple[str, ...]
    # Owners whose XEP-0191 block list named the account.
    block_list_owners: tuple[str, ...]
    # Owners who had blocked the account from seeing their presence.
    presence_block_owners: tuple[str, ...]


class _Row(Protocol):
    """A result row of either backend's driver, read by column name."""

    def __getitem__(self, column: str, /) -> Any: ...


def credentials_of(rows: Iterable[_Row]) -> dict[str, ScramCredentials]:
    """The credentials in rows of an account joined with its `scram_credentials`, by
    mechanism; an account without any has one row, its credential columns NULL."""
    return {
        row["mechanism"]: ScramCredentials(
            row["salt"], row["iterations"], row["stored_key"], row["server_key"]
        )
        for row in rows
        if row["mechanism"] is not None
    }


class AccountRepository:
    def __init__(self, db: Database, domain: str) -> None:
        self._db = db
        # Other users' rows name the account by bare JID, so removal needs the domain.
        self._domain = domain

    async def create(self, username: str, credentials: Mapping[str, ScramCredentials]) -> None:
        """Add an enabled account; raises AccountExists if the username is taken."""
        async with self._db.transaction() as conn:
            cursor = await conn.execute(
                "INSERT INTO accounts (username) VALUES (?) ON CONFLICT (username) DO NOTHING",
                (username,),
            )
            if cursor.rowcount == 0:
                raise AccountExists(username)
            await _insert_credentials(conn, username, credentials)

    async def get(self, username: str) -> Account | None:
        # One query whether or not the account exists, so the lookup costs the same for an
        # unknown name as for a real one (SCRAM must not tell them apart by time).
        async with (
            self._db.read() as conn,
            conn.execute(
                "SELECT a.username, a.disabled, a.created_at,"
                " c.mechanism, c.salt, c.iterations, c.stored_key, c.server_key"
                " FROM (SELECT ? AS wanted) AS w"
                " LEFT JOIN accounts AS a ON a.username = w.wanted"
                " LEFT JOIN scram_credentials AS c ON c.username = a.username",
                (username,),
            ) as cursor,
        ):
            rows = list(await cursor.fetchall())
        first = rows[0]
        if first["username"] is None:
            return None
        return Account(
            username=first["username"],
            disabled=bool(first["disabled"]),
            created_at=datetime.fromisoformat(first["created_at"]),
            credentials=credentials_of(rows),
        )

    async def set_credentials(
        self, username: str, credentials: Mapping[str, ScramCredentials]
    ) -> bool:
        """Replace all of the account's credentials; False if there is no such account."""
        async with self._db.transaction() as conn:
            async with conn.execute(
                "SELECT 1 FROM accounts WHERE username = ?", (username,)
            ) as cursor:
                if await cursor.fetchone() is None:
                    return False
            await conn.execute("DELETE FROM scram_credentials WHERE username = ?", (username,))
            await _insert_credentials(conn, username, credentials)
        return True

    async def set_disabled(self, username: str, disabled: bool) -> bool:
        """False if there is no such account. Disabling it also ends its sign-ins: their
        tokens log nobody in again, even once it is enabled."""
        async with self._db.transaction() as conn:
            cursor = await conn.execute(
                "UPDATE accounts SET disabled = ? WHERE username = ?", (int(disabled), username)
            )
            if disabled:
                await conn.execute("DELETE FROM sign_ins WHERE username = ?", (username,))
        return cursor.rowcount > 0

    async def delete(self, username: str) -> RemovedAccount | None:
        """Remove the account with its own rows (by cascade) and every other user's row naming
        it, in one transaction; None if there was no such account."""
        jid = f"{username}@{self._domain}"
        async with self._db.transaction() as conn:
            cursor = await conn.execute("DELETE FROM accounts WHERE username = ?", (username,))
            if cursor.rowcount == 0:
                return None
            # The cascade has already taken the account's own items, so these are others'.
            lost_items = await _delete_returning(
                conn,
                f"DELETE FROM roster_items WHERE contact = ? RETURNING owner, {ITEM_COLUMNS}",
                jid,
            )
            roster_items = {
                row[0]: (item_from_row(*row[1:]), await bump_version(conn, row[0]))
                for row in sorted(lost_items, key=lambda row: str(row[0]))
            }
            pending = await _delete_returning(
                conn, "DELETE FROM subscription_requests WHERE contact = ? RETURNING owner", jid
            )
            block_lists = await _delete_returning(
                conn, "DELETE FROM blocks WHERE jid = ? RETURNING owner", jid
            )
            presence_blocks = await _delete_returning(
                conn, "DELETE FROM presence_blocks WHERE contact = ? RETURNING owner", jid
            )
        return RemovedAccount(
            username=username,
            roster_items=roster_items,
            pending_owners=_owners(pending),
            block_list_owners=_owners(block_lists),
            presence_block_owners=_owners(presence_blocks),
        )

    async def list_usernames(self) -> list[str]:
        async with (
            self._db.read() as conn,
            conn.execute("SELECT username FROM accounts ORDER BY username") as cursor,
        ):
            return [row[0] for row in await cursor.fetchall()]

    async def count(self) -> int:
        async with (
            self._db.read() as conn,
            conn.execute("SELECT count(*) FROM accounts") as cursor,
        ):
            row = await cursor.fetchone()
        return int(row[0]) if row else 0

    async def list_with_status(self) -> list[tuple[str, bool]]:
        """Every username with its disabled flag, in username order."""
        async with (
            self._db.read() as conn,
            conn.execute("SELECT username, disabled FROM accounts ORDER BY username") as cursor,
        ):
            return [(row[0], bool(row[1])) for row in await cursor.fetchall()]


async def _insert_credentials(
    conn: aiosqlite.Connection, username: str, credentials: Mapping[str, ScramCredentials]
) -> None:
    await conn.executemany(
        "INSERT INTO scram_credentials"
        " (username, mechanism, salt, iterations, stored_key, server_key)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        [
            (username, mechanism, c.salt, c.iterations, c.stored_key, c.server_key)
            for mechanism, c in credentials.items()
        ],
    )


async def _delete_returning(conn: aiosqlite.Connection, sql: str, jid: str) -> list[Row]:
    # RETURNING reads each row as it is deleted; the cursor must be drained for the
    # DELETE to finish.
    async with conn.execute(sql, (jid,)) as cursor:
        return list(await cursor.fetchall())


def _owners(rows: list[Row]) -> tuple[str, ...]:
    # RETURNING gives rows in no defined order.
    return tuple(sorted(str(row[0]) for row in rows))
