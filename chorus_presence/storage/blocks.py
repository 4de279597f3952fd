"""Persistence of XEP-0191 block lists (the `blocks` table).

Each row is one item of an account's block list: the owner's username and the blocked address
in canonical form, a bare JID or a domain.
"""

from __future__ import annotations

from collections.abc import Iterable

from chorus_presence.storage.database import Database


class BlockRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def load_all(self) -> dict[str, set[str]]:
        """Every account's block list, by owner; accounts without one are left out."""
        lists: dict[str, set[str]] = {}
        async with self._db.read() as conn, conn.execute("SELECT owner, jid FROM blocks") as cursor:
            async for owner, jid in cursor:
                lists.setdefault(owner, set()).add(jid)
        return lists

    async def load(self, owner: str) -> set[str]:
        """One account's block list (empty when it has none)."""
        async with (
            self._db.read() as conn,
            conn.execute("SELECT jid FROM blocks WHERE owner = ?", (owner,)) as cursor,
        ):
            return {jid async for (jid,) in cursor}

    async def add(self, owner: str, jids: Iterable[str]) -> None:
        """Add items to the owner's list (committed before returning); present ones stay."""
        async with self._db.transaction() as conn:
            await conn.executemany(
                "INSERT INTO blocks (owner, jid) VALUES (?, ?) ON CONFLICT (owner, jid) DO NOTHING",
                [(owner, jid) for jid in jids],
            )

    async def remove(self, owner: str, jids: Iterable[str]) -> None:
        """Remove items from the owner's list (committed before returning)."""
        async with self._db.transaction() as conn:
            await conn.executemany(
                "DELETE FROM blocks WHERE owner = ? AND jid = ?", [(owner, jid) for jid in jids]
            )
