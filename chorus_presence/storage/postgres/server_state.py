"""Server-wide durable values (the `server_state` table), on PostgreSQL."""

from __future__ import annotations

import secrets

from chorus_presence.storage.postgres.pool import Pool


class ServerStateRepository:
    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def secret(self, key: str, size: int = 32) -> bytes:
        """The stored secret named `key`, created on first use: when nodes start together,
        the first insert wins and every node reads that one."""
        async with self._pool.transaction() as conn:
            await conn.execute(
                "INSERT INTO server_state (key, value) VALUES ($1, $2)"
                " ON CONFLICT (key) DO NOTHING",
                key,
                secrets.token_bytes(size),
            )
            value = await conn.fetchval("SELECT value FROM server_state WHERE key = $1", key)
        return bytes(value)
