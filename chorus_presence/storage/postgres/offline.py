"""Messages stored for users who are not logged in (XEP-0160), on PostgreSQL.

The per-recipient quota (a count and a byte total) is checked and the message written in one
transaction holding the recipient's lock, so nodes storing for the same user at once cannot
both slip under the quota.
"""

from __future__ import annotations

from chorus_presence.storage.offline import StoredMessage
from chorus_presence.storage.postgres.pool import Pool


class OfflineMessageRepository:
    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def store(self, owner: str, stanza: str, *, max_count: int, max_bytes: int) -> bool:
        """Keep a message; False when it would take the owner past `max_count` messages or
        `max_bytes` bytes waiting."""
        size = len(stanza.encode())
        async with self._pool.transaction(owner) as conn:
            row = await conn.fetchrow(
                "SELECT count(*) AS count, coalesce(sum(bytes), 0) AS total"
                " FROM offline_messages WHERE owner = $1",
                owner,
            )
            assert row is not None, "an aggregate always yields a row"
            if row["count"] >= max_count or row["total"] + size > max_bytes:
                return False
            await conn.execute(
                "INSERT INTO offline_messages (owner, stanza, bytes) VALUES ($1, $2, $3)",
                owner,
                stanza,
                size,
            )
        return True

    async def pending(self, owner: str) -> list[StoredMessage]:
        rows = await self._pool.fetch(
            "SELECT id, stanza, stored_at FROM offline_messages WHERE owner = $1 ORDER BY id",
            owner,
        )
        return [StoredMessage(row["id"], row["stanza"], row["stored_at"]) for row in rows]

    async def remove(self, owner: str, up_to_id: int) -> None:
        async with self._pool.transaction(owner) as conn:
            await conn.execute(
                "DELETE FROM offline_messages WHERE owner = $1 AND id <= $2", owner, up_to_id
            )
