"""Priority lists on PostgreSQL: the contract of the SQLite `storage.priority`, each row gone
with either of its accounts by cascade."""

from __future__ import annotations

from chorus_presence.storage.postgres.pool import Pool


class PriorityContactRepository:
    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def list(self, owner: str) -> list[str]:
        rows = await self._pool.fetch(
            "SELECT contact FROM priority_contacts WHERE owner = $1 ORDER BY contact", owner
        )
        return [row["contact"] for row in rows]

    async def contains(self, owner: str, contact: str) -> bool:
        found = await self._pool.fetchval(
            "SELECT 1 FROM priority_contacts WHERE owner = $1 AND contact = $2", owner, contact
        )
        return found is not None

    async def add(self, owner: str, contact: str) -> bool:
        """False when the contact was on the list already or either account is gone."""
        async with self._pool.transaction(owner) as conn:
            added = await conn.fetchval(
                "INSERT INTO priority_contacts (owner, contact)"
                " SELECT o.username, c.username FROM accounts AS o, accounts AS c"
                " WHERE o.username = $1 AND c.username = $2"
                " ON CONFLICT (owner, contact) DO NOTHING RETURNING true",
                owner,
                contact,
            )
        return bool(added)

    async def remove(self, owner: str, contact: str) -> bool:
        async with self._pool.transaction(owner) as conn:
            removed = await conn.fetchval(
                "DELETE FROM priority_contacts WHERE owner = $1 AND contact = $2 RETURNING true",
                owner,
                contact,
            )
        return bool(removed)
