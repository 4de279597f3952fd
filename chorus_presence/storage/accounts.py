"""Persistence of accounts and their SCRAM credentials.

Usernames arrive here already normalised; this module stores and fetches, nothing more.
Every write is committed before its method returns.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import aiosqlite

from chorus_presence.services.credentials import ScramCredentials
from chorus_presence.storage.database import Database


class AccountExists(Exception):
    """An account with this username is already registered."""

    def __init__(self, username: str) -> None:
        super().__init__(f"account {username!r} already exists")
        self.username = username


@dataclass(frozen=True)
class Account:
    username: str
    disabled: bool
    created_at: datetime
    # Keyed by SASL mechanism name, e.g. "SCRAM-SHA-256".
    credentials: Mapping[str, ScramCredentials]


class AccountRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

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
        async with self._db.read() as conn:
            async with conn.execute(
                "SELECT username, disabled, created_at FROM accounts WHERE username = ?",
                (username,),
            ) as cursor:
                row = await cursor.fetchone()
            if row is None:
                return None
            async with conn.execute(
                "SELECT mechanism, salt, iterations, stored_key, server_key"
                " FROM scram_credentials WHERE username = ?",
                (username,),
            ) as cursor:
                rows = await cursor.fetchall()
        credentials = {
            mechanism: ScramCredentials(salt, iterations, stored_key, server_key)
            for mechanism, salt, iterations, stored_key, server_key in rows
        }
        return Account(
            username=row["username"],
            disabled=bool(row["disabled"]),
            created_at=datetime.fromisoformat(row["created_at"]),
            credentials=credentials,
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
        """False if there is no such account."""
        async with self._db.transaction() as conn:
            cursor = await conn.execute(
                "UPDATE accounts SET disabled = ? WHERE username = ?", (int(disabled), username)
            )
        return cursor.rowcount > 0

    async def delete(self, username: str) -> bool:
        """Remove the account and, by cascade, its credentials; False if there was none."""
        async with self._db.transaction() as conn:
            cursor = await conn.execute("DELETE FROM accounts WHERE username = ?", (username,))
        return cursor.rowcount > 0

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
