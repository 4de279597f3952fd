"""Persistence of messages stored for users who are not logged in."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from chorus_presence.storage.database import Database


@dataclass(frozen=True, slots=True)
class StoredMessage:
    id: int
    stanza: str
    stored_at: datetime


class OfflineMessageRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def store(self, owner: str, stanza: str, limit: int) -> bool:
        """Keep a message; False when the owner already has `limit` waiting."""
        async with self._db.transaction() as conn:
            async with conn.execute(
                "SELECT count(*) FROM offline_messages WHERE owner = ?", (owner,)
            ) as cursor:
                row = await cursor.fetchone()
            if row is not None and row[0] >= limit:
                return False
            await conn.execute(
                "INSERT INTO offline_messages (owner, stanza) VALUES (?, ?)", (owner, stanza)
            )
        return True

    async def pending(self, owner: str) -> list[StoredMessage]:
        async with (
            self._db.read() as conn,
            conn.execute(
                "SELECT id, stanza, stored_at FROM offline_messages WHERE owner = ? ORDER BY id",
                (owner,),
            ) as cursor,
        ):
            rows = await cursor.fetchall()
        return [StoredMessage(i, s, datetime.fromisoformat(t)) for i, s, t in rows]

    async def remove(self, owner: str, up_to_id: int) -> None:
        async with self._db.transaction() as conn:
            await conn.execute(
                "DELETE FROM offline_messages WHERE owner = ? AND id <= ?", (owner, up_to_id)
            )
