"""XEP-0191 block lists (the `blocks` table), on PostgreSQL.

Each row is one item of an account's block list: the owner's username and the blocked address
in canonical form, a bare JID or a domain.
"""

from __future__ import annotations

from collections.abc import Iterable

from chorus_presence.storage.postgres.pool import Pool


class BlockRepository:
    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def load_all(self) -> dict[str, set[str]]:
        """Every account's block list, by owner; accounts without one are left out."""
        lists: dict[str, set[str]] = {}
        for row in await self._pool.fetch("SELECT owner, jid FROM blocks"):
            lists.setdefault(row["owner"], set()).add(row["jid"])
        return lists

    async def load(self, owner: str) -> set[str]:
        """One account's block list (empty when it has none)."""
        rows = await self._pool.fetch("SELECT jid FROM blocks WHERE owner = $1", owner)
        return {row["jid"] for row in rows}

    async def add(self, owner: str, jids: Iterable[str]) -> None:
        """Add items to the owner's list (committed before returning); present ones stay."""
        async with self._pool.transaction(owner) as conn:
            await conn.execute(
                "INSERT INTO blocks (owner, jid) SELECT $1, jid FROM unnest($2::text[]) AS jid"
                " ON CONFLICT (owner, jid) DO NOTHING",
                owner,
                list(jids),
            )

    async def remove(self, owner: str, jids: Iterable[str]) -> None:
        """Remove items from the owner's list (committed before returning)."""
        async with self._pool.transaction(owner) as conn:
            await conn.execute(
                "DELETE FROM blocks WHERE owner = $1 AND jid = ANY($2::text[])", owner, list(jids)
            )
