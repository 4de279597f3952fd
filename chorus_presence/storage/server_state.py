"""Server-wide durable values (the `server_state` table)."""

from __future__ import annotations

import secrets

from chorus_presence.storage.database import Database


class ServerStateRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def secret(self, key: str, size: int = 32) -> bytes:
        """The stored secret named `key`, created on first use."""
        async with self._db.transaction() as conn:
            async with conn.execute("SELECT value FROM server_state WHERE key = ?", (key,)) as cur:
                row = await cur.fetchone()
            if row is not None:
                return bytes(row[0])
            value = secrets.token_bytes(size)
            await conn.execute("INSERT INTO server_state (key, value) VALUES (?, ?)", (key, value))
            return value
