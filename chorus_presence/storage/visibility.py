"""Persistence of presence blocks: the contacts each user keeps from seeing their presence.

This is the presence blocked list of "who may see my presence", not the XEP-0191 block list
(`blocks.py`), which stops all traffic.
"""

from __future__ import annotations

from chorus_presence.storage.database import Database

# Shared with `RosterRepository.apply`, which writes blocks alongside the roster changes of a
# visibility move; both take (owner, contact).
INSERT_PRESENCE_BLOCK = (
    "INSERT INTO presence_blocks (owner, contact) VALUES (?, ?)"
    " ON CONFLICT (owner, contact) DO NOTHING"
)
DELETE_PRESENCE_BLOCK = "DELETE FROM presence_blocks WHERE owner = ? AND contact = ?"


class PresenceBlockRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def list(self, owner: str) -> list[str]:
        async with (
            self._db.read() as conn,
            conn.execute(
                "SELECT contact FROM presence_blocks WHERE owner = ? ORDER BY contact", (owner,)
            ) as cursor,
        ):
            return [row[0] for row in await cursor.fetchall()]

    async def contains(self, owner: str, contact: str) -> bool:
        async with (
            self._db.read() as conn,
            conn.execute(
                "SELECT 1 FROM presence_blocks WHERE owner = ? AND contact = ?", (owner, contact)
            ) as cursor,
        ):
            return await cursor.fetchone() is not None

    async def add(self, owner: str, contact: str) -> None:
        async with self._db.transaction() as conn:
            await conn.execute(INSERT_PRESENCE_BLOCK, (owner, contact))

    async def remove(self, owner: str, contact: str) -> bool:
        async with self._db.transaction() as conn:
            cursor = await conn.execute(DELETE_PRESENCE_BLOCK, (owner, contact))
            return cursor.rowcount > 0
