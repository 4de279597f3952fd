"""Persistence of each user's last logout time and status (XEP-0012).

A logout is recorded in a transaction of its own; the logouts of a mass disconnect arrive
together and so share the database's group commits rather than costing an fsync each.
"""

from __future__ import annotations

from dataclasses import dataclass

from chorus_presence.storage.database import Database


@dataclass(frozen=True, slots=True)
class LastLogout:
    at: float
    status: str | None


class LastActivityRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def record(self, owner: str, at: float, status: str | None) -> None:
        async with self._db.transaction() as conn:
            await conn.execute(
                "INSERT INTO last_activity (owner, logout_at, status) VALUES (?, ?, ?)"
                " ON CONFLICT (owner) DO UPDATE SET logout_at = excluded.logout_at,"
                " status = excluded.status",
                (owner, at, status),
            )

    async def get(self, owner: str) -> LastLogout | None:
        async with (
            self._db.read(snapshot=False) as conn,
            conn.execute(
                "SELECT logout_at, status FROM last_activity WHERE owner = ?", (owner,)
            ) as cursor,
        ):
            row = await cursor.fetchone()
        return LastLogout(row[0], row[1]) if row else None
