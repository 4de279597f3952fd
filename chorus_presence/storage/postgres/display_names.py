"""Each account's display name, on PostgreSQL: the contract of the SQLite
`storage.display_names`, the row removed with its account by cascade."""

from __future__ import annotations

from chorus_presence.storage.postgres.pool import Pool


class DisplayNameRepository:
    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def get(self, owner: str) -> str | None:
        name = await self._pool.fetchval("SELECT name FROM display_names WHERE owner = $1", owner)
        return None if name is None else str(name)

    async def get_many(self, owners: list[str]) -> dict[str, str]:
        """The names of those of `owners` who have one, by owner."""
        if not owners:
            return {}
        rows = await self._pool.fetch(
            "SELECT owner, name FROM display_names WHERE owner = ANY($1::text[])", owners
        )
        return {row["owner"]: row["name"] for row in rows}

    async def set(self, owner: str, name: str) -> bool:
        """Store the owner's name, replacing any; False if there is no such account."""
        async with self._pool.transaction(owner) as conn:
            stored = await conn.fetchval(
                "INSERT INTO display_names (owner, name)"
                " SELECT username, $2 FROM accounts WHERE username = $1"
                " ON CONFLICT (owner) DO UPDATE SET name = excluded.name RETURNING true",
                owner,
                name,
            )
        return bool(stored)

    async def clear(self, owner: str) -> None:
        async with self._pool.transaction(owner) as conn:
            await conn.execute("DELETE FROM display_names WHERE owner = $1", owner)

    async def all(self) -> dict[str, str]:
        """Every stored name, by owner."""
        rows = await self._pool.fetch("SELECT owner, name FROM display_names ORDER BY owner")
        return {row["owner"]: row["name"] for row in rows}
