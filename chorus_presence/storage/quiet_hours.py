"""Persistence of each user's quiet hours (the `quiet_hours` table): the weekly slots of a
schedule, in the order the user gave them.

Slots arrive here already checked (`services.quiet_hours`); this module stores and fetches
them. A schedule is replaced whole, and its rows go with the account by cascade.
"""

from __future__ import annotations

from dataclasses import dataclass

from chorus_presence.storage.database import Database


@dataclass(frozen=True, slots=True)
class QuietSlot:
    # The weekdays the slot starts on, Monday bit 0 to Sunday bit 6.
    days: int
    # Local wall time in minutes after midnight; an end at or before the start is the next
    # day's, and 1440 is the midnight that ends the day.
    start: int
    end: int
    state: str
    status: str | None = None


class QuietHoursRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def all(self) -> dict[str, list[QuietSlot]]:
        """Every stored schedule, by owner."""
        async with (
            self._db.read() as conn,
            conn.execute(
                "SELECT owner, days, start_minute, end_minute, state, status FROM quiet_hours"
                " ORDER BY owner, position"
            ) as cursor,
        ):
            rows = await cursor.fetchall()
        schedules: dict[str, list[QuietSlot]] = {}
        for owner, days, start, end, state, status in rows:
            schedules.setdefault(str(owner), []).append(
                QuietSlot(int(days), int(start), int(end), str(state), status)
            )
        return schedules

    async def get(self, owner: str) -> list[QuietSlot]:
        """The owner's slots in order; none without a schedule."""
        async with (
            self._db.read() as conn,
            conn.execute(
                "SELECT days, start_minute, end_minute, state, status FROM quiet_hours"
                " WHERE owner = ? ORDER BY position",
                (owner,),
            ) as cursor,
        ):
            rows = await cursor.fetchall()
        return [QuietSlot(int(d), int(s), int(e), str(st), t) for d, s, e, st, t in rows]

    async def put(self, owner: str, slots: list[QuietSlot]) -> None:
        """Replace the owner's schedule (none when `slots` is empty); nothing for an account
        that is gone."""
        async with self._db.transaction() as conn:
            await conn.execute("DELETE FROM quiet_hours WHERE owner = ?", (owner,))
            await conn.executemany(
                "INSERT INTO quiet_hours"
                " (owner, position, days, start_minute, end_minute, state, status)"
                " SELECT username, ?, ?, ?, ?, ?, ? FROM accounts WHERE username = ?",
                [
                    (position, s.days, s.start, s.end, s.state, s.status, owner)
                    for position, s in enumerate(slots)
                ],
            )
