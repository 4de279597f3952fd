"""Accounts, their SCRAM credentials, and account removal, on PostgreSQL.

The same contract as the SQLite `storage.accounts`: removing an account also removes, in the
same transaction, every row on other users' side that names it.
"""

from __future__ import annotations

from collections.abc import Mapping

from chorus_presence.storage.accounts import (
    Account,
    AccountExists,
    RemovedAccount,
    ScramCredentials,
    credentials_of,
)
from chorus_presence.storage.postgres.pool import Connection, Pool
from chorus_presence.storage.postgres.rosters import ITEM_COLUMNS, bump_version, item_from_record

# Tables whose rows on other users' side name an account by bare JID, with that column.
_NAMING_TABLES = (
    ("roster_items", "contact"),
    ("subscription_requests", "contact"),
    ("blocks", "jid"),
    ("presence_blocks", "contact"),
)


class AccountRepository:
    def __init__(self, pool: Pool, domain: str) -> None:
        self._pool = pool
        # Other users' rows name the account by bare JID, so removal needs the domain.
        self._domain = domain

    async def create(self, username: str, credentials: Mapping[str, ScramCredentials]) -> None:
        """Add an enabled account; raises AccountExists if the username is taken."""
        async with self._pool.transaction(username) as conn:
            created = await conn.fetchval(
                "INSERT INTO accounts (username) VALUES ($1)"
                " ON CONFLICT (username) DO NOTHING RETURNING true",
                username,
            )
            if not created:
                raise AccountExists(username)
            await _insert_credentials(conn, username, credentials)

    async def get(self, username: str) -> Account | None:
        # One query whether or not the account exists, so the lookup costs the same for an
        # unknown name as for a real one (SCRAM must not tell them apart by time).
        rows = await self._pool.fetch(
            "SELECT a.username, a.disabled, a.created_at,"
            " c.mechanism, c.salt, c.iterations, c.stored_key, c.server_key"
            " FROM (SELECT $1::text AS wanted) AS w"
            " LEFT JOIN accounts AS a ON a.username = w.wanted"
            " LEFT JOIN scram_credentials AS c ON c.username = a.username",
            username,
        )
        first = rows[0]
        if first["username"] is None:
            return None
        return Account(
            username=first["username"],
            disabled=first["disabled"],
            created_at=first["created_at"],
            credentials=credentials_of(rows),
        )

    async def set_credentials(
        self, username: str, credentials: Mapping[str, ScramCredentials]
    ) -> bool:
        """Replace all of the account's credentials; False if there is no such account."""
        async with self._pool.transaction(username) as conn:
            if await conn.fetchval("SELECT 1 FROM accounts WHERE username = $1", username) is None:
                return False
            await conn.execute("DELETE FROM scram_credentials WHERE username = $1", username)
            await _insert_credentials(conn, username, credentials)
        return True

    async def set_disabled(self, username: str, disabled: bool) -> bool:
        """False if there is no such account. Disabling it also ends its sign-ins."""
        async with self._pool.transaction(username) as conn:
            changed = await conn.fetchval(
                "UPDATE accounts SET disabled = $2 WHERE username = $1 RETURNING true",
                username,
                disabled,
            )
            if disabled:
                await conn.execute("DELETE FROM sign_ins WHERE username = $1", username)
        return bool(changed)

    async def delete(self, username: str) -> RemovedAccount | None:
        """Remove the account with its own rows (by cascade) and every other user's row naming
        it, in one transaction; None if there was no such account."""
        jid = f"{username}@{self._domain}"
        # Every owner whose rows change is locked, with the account, before anything is
        # written; an owner who gains a row naming the account meanwhile is still covered by
        # the row locks the deletes take.
        others = await self._pool.fetch(
            " UNION ".join(
                f"SELECT owner FROM {table} WHERE {column} = $1" for table, column in _NAMING_TABLES
            ),
            jid,
        )
        async with self._pool.transaction(username, *(row["owner"] for row in others)) as conn:
            deleted = await conn.fetchval(
                "DELETE FROM accounts WHERE username = $1 RETURNING true", username
            )
            if not deleted:
                return None
            # The cascade has already taken the account's own items, so these are others'.
            lost_items = await conn.fetch(
                f"DELETE FROM roster_items WHERE contact = $1 RETURNING owner, {ITEM_COLUMNS}",
                jid,
            )
            roster_items = {}
            for row in sorted(lost_items, key=lambda row: str(row["owner"])):
                owner = row["owner"]
                roster_items[owner] = (item_from_record(row), await bump_version(conn, owner))
            pending = await _delete_returning_owners(
                conn, "DELETE FROM subscription_requests WHERE contact = $1 RETURNING owner", jid
            )
            block_lists = await _delete_returning_owners(
                conn, "DELETE FROM blocks WHERE jid = $1 RETURNING owner", jid
            )
            presence_blocks = await _delete_returning_owners(
                conn, "DELETE FROM presence_blocks WHERE contact = $1 RETURNING owner", jid
            )
        return RemovedAccount(
            username=username,
            roster_items=roster_items,
            pending_owners=pending,
            block_list_owners=block_lists,
            presence_block_owners=presence_blocks,
        )

    async def list_usernames(self) -> list[str]:
        rows = await self._pool.fetch("SELECT username FROM accounts ORDER BY username")
        return [row["username"] for row in rows]

    async def count(self) -> int:
        return int(await self._pool.fetchval("SELECT count(*) FROM accounts"))

    async def list_with_status(self) -> list[tuple[str, bool]]:
        """Every username with its disabled flag, in username order."""
        rows = await self._pool.fetch("SELECT username, disabled FROM accounts ORDER BY username")
        return [(row["username"], row["disabled"]) for row in rows]


async def _insert_credentials(
    conn: Connection, username: str, credentials: Mapping[str, ScramCredentials]
) -> None:
    await conn.executemany(
        "INSERT INTO scram_credentials"
        " (username, mechanism, salt, iterations, stored_key, server_key)"
        " VALUES ($1, $2, $3, $4, $5, $6)",
        [
            (username, mechanism, c.salt, c.iterations, c.stored_key, c.server_key)
            for mechanism, c in credentials.items()
        ],
    )


async def _delete_returning_owners(conn: Connection, sql: str, jid: str) -> tuple[str, ...]:
    # RETURNING gives rows in no defined order.
    return tuple(sorted(str(row["owner"]) for row in await conn.fetch(sql, jid)))
