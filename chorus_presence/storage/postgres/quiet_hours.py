"""Each user's quiet hours on PostgreSQL: the contract of the SQLite `storage.quiet_hours`,
the rows removed with their account by cascade."""

from __future__ import annotations

from chorus_presence.storage.postgres.pool import Pool
from chorus_presence.storage.quiet_hours import QuietSlot


class QuietHoursRepository:
    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def all(self) -> dict[str, list[QuietSlot]]:
        """Every stored schedule, by owner."""
        rows = await self._pool.fetch(
            "SELECT owner, days, start_minute, end_minute, state, status FROM quiet_hours"
            " ORDER BY owner, position"
        )
        schedules: dict[str, list[QuietSlot]] = {}
        for row in rows:
            schedules.setdefault(row["owner"], []).append(
                QuietSlot(
                    row["days"], row["start_minute"], row["end_minute"], row["state"], row["status"]
                )
            )
        return schedules

    async def get(self, owner: str) -> list[QuietSlot]:
        """The owner's slots in order; none without a schedule."""
        rows = await self._pool.fetch(
            "SELECT days, start_minute, end_minute, state, status FROM quiet_hours"
            " WHERE owner = $1 ORDER BY position",
            owner,
        )
        return [
            QuietSlot(
                row["days"], row["start_minute"], row["end_minute"], row["state"], row["status"]
            )
            for row in rows
        ]

    async def put(self, owner: str, slots: list[QuietSlot]) -> None:
        """Replace the owner's schedule (none when `slots` is empty); nothing for an account
        that is gone."""
        async with self._pool.transaction(owner) as conn:
            await conn.execute("DELETE FROM quiet_hours WHERE owner = $1", owner)
            await conn.executemany(
                "INSERT INTO quiet_hours"
                " (owner, position, days, start_minute, end_minute, state, status)"
                " SELECT username, $2, $3, $4, $5, $6, $7 FROM accounts WHERE username = $1",
                [
                    (owner, position, s.days, s.start, s.end, s.state, s.status)
                    for position, s in enumerate(slots)
                ],
            )
