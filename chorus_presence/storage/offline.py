"""Persistence of messages stored for users who are not logged in (XEP-0160).

Each stored message keeps its size in bytes, so the per-recipient quota (a count and a byte
total) is checked and the message written in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from chorus_presence.storage.database import Database


@dataclass(frozen=True, slots=True)
class StoredMessage:
    id: int
    stanza: str
    stored_at: datetime


class SenderStanding:
    """Where a sender stands with a recipient, from the recipient's side.

    `subscription` is the recipient's roster subscription for the sender ('none' without a
    roster item); `presence_blocked` is whether the sender is on the recipient's presence
    blocked list. The XEP-0191 block list is not here: the block filter refuses a blocked
    sender's messages before the message service sees them.
    """

    subscription: str
    presence_blocked: bool


class OfflineMessageRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def store(self, owner: str, stanza: str, *, max_count: int, max_bytes: int) -> bool:
        """Keep a message; False when it would take the owner past `max_count` messages or
        `max_bytes` bytes waiting."""
        size = len(stanza.encode())
        async with self._db.transaction() as conn:
            async with conn.execute(
                "SELECT count(*), coalesce(sum(bytes), 0) FROM offline_messages WHERE owner = ?",
                (owner,),
            ) as cursor:
                row = await cursor.fetchone()
            count, total = (row[0], row[1]) if row is not None else (0, 0)
            if count >= max_count or total + size > max_bytes:
                return False
            await conn.execute(
                "INSERT INTO offline_messages (owner, stanza, bytes) VALUES (?, ?, ?)",
                (owner, stanza, size),
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
