"""Each user's last logout time and status (XEP-0012), on PostgreSQL."""

from __future__ import annotations

from chorus_presence.storage.last_activity import LastLogout
from chorus_presence.storage.postgres.pool import Pool


class LastActivityRepository:
    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def record(self, owner: str, at: float, status: str | None) -> None:
        async with self._pool.transaction(owner) as conn:
            await conn.execute(
                "INSERT INTO last_activity (owner, logout_at, status) VALUES ($1, $2, $3)"
                " ON CONFLICT (owner) DO UPDATE SET logout_at = excluded.logout_at,"
                " status = excluded.status",
                owner,
                at,
                status,
            )

    async def get(self, owner: str) -> LastLogout | None:
        row = await self._pool.fetchrow(
            "SELECT logout_at, status FROM last_activity WHERE owner = $1", owner
        )
        return LastLogout(row["logout_at"], row["status"]) if row else None
