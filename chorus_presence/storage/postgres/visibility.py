"""Presence blocks, on PostgreSQL: the contacts each user keeps from seeing their presence.

This is the presence blocked list of "who may see my presence", not the XEP-0191 block list
(`blocks.py`), which stops all traffic.
"""

from __future__ import annotations

from chorus_presence.storage.postgres.pool import Pool

# Shared with `RosterRepository.apply`, which writes blocks alongside the roster changes of a
# visibility move; both take (owner, contact).
INSERT_PRESENCE_BLOCK = (
    "INSERT INTO presence_blocks (owner, contact) VALUES ($1, $2)"
    " ON CONFLICT (owner, contact) DO NOTHING"
)
DELETE_PRESENCE_BLOCK = "DELETE FROM presence_blocks WHERE owner = $1 AND contact = $2"


class PresenceBlockRepository:
    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def list(self, owner: str) -> list[str]:
        rows = await self._pool.fetch(
            "SELECT contact FROM presence_blocks WHERE owner = $1 ORDER BY contact", owner
        )
        return [row["contact"] for row in rows]

    async def contains(self, owner: str, contact: str) -> bool:
        found = await self._pool.fetchval(
            "SELECT 1 FROM presence_blocks WHERE owner = $1 AND contact = $2", owner, contact
        )
        return found is not None

    async def add(self, owner: str, contact: str) -> None:
        async with self._pool.transaction(owner) as conn:
            await conn.execute(INSERT_PRESENCE_BLOCK, owner, contact)

    async def remove(self, owner: str, contact: str) -> bool:
        async with self._pool.transaction(owner) as conn:
            removed = await conn.fetchval(DELETE_PRESENCE_BLOCK + " RETURNING true", owner, contact)
        return bool(removed)
