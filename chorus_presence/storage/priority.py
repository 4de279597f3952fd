"""Persistence of priority lists (the `priority_contacts` table): for each user, the users of
this server whose messages and calls reach them as usual while they are in Do Not Disturb.

Both sides are usernames of existing accounts; a row goes with either account by cascade, so
removing an account takes it off every list and takes its own list with it.
"""

from __future__ import annotations

from chorus_presence.storage.database import Database


class PriorityContactRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def list(self, owner: str) -> list[str]:
        async with (
            self._db.read() as conn,
            conn.execute(
                "SELECT contact FROM priority_contacts WHERE owner = ? ORDER BY contact", (owner,)
            ) as cursor,
        ):
            return [str(row[0]) for row in await cursor.fetchall()]

    async def contains(self, owner: str, contact: str) -> bool:
        async with (
            self._db.read() as conn,
            conn.execute(
                "SELECT 1 FROM priority_contacts WHERE owner = ? AND contact = ?",
                (owner, contact),
            ) as cursor,
        ):
            return await cursor.fetchone() is not None

    async def add(self, owner: str, contact: str) -> bool:
        """False when the contact was on the list already or either account is gone."""
        async with self._db.transaction() as conn:
            # 'AND true' keeps SQLite from reading ON CONFLICT as part of the SELECT's join.
            cursor = await conn.execute(
                "INSERT INTO priority_contacts (owner, contact)"
                " SELECT o.username, c.username FROM accounts AS o, accounts AS c"
                " WHERE o.username = ? AND c.username = ? AND true"
                " ON CONFLICT (owner, contact) DO NOTHING",
                (owner, contact),
            )
            return cursor.rowcount > 0

    async def remove(self, owner: str, contact: str) -> bool:
        async with self._db.transaction() as conn:
            cursor = await conn.execute(
                "DELETE FROM priority_contacts WHERE owner = ? AND contact = ?", (owner, contact)
            )
            return cursor.rowcount > 0
