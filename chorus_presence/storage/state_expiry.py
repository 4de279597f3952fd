"""Persistence of each user's latest state set with an expiry (the `state_expiries` table).

One row per user at most: the state, its custom text and when it ends, kept while it is in
force so that a restart neither loses it nor shows it past its end. The row goes with its
account by cascade.
"""

from __future__ import annotations

from dataclasses import dataclass

from chorus_presence.storage.database import Database


@dataclass(frozen=True, slots=True)
class ExpiringState:
    owner: str
    state: str
    status: str | None
    # Seconds since the epoch (UTC), whole seconds as the wire carries them.
    until: int


class StateExpiryRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def all(self) -> list[ExpiringState]:
        """Every stored expiring state, by owner."""
        async with (
            self._db.read() as conn,
            conn.execute(
                "SELECT owner, state, status, until FROM state_expiries ORDER BY owner"
            ) as cursor,
        ):
            rows = await cursor.fetchall()
        return [ExpiringState(str(r[0]), str(r[1]), r[2], int(r[3])) for r in rows]

    async def get(self, owner: str) -> ExpiringState | None:
        async with (
            self._db.read(snapshot=False) as conn,
            conn.execute(
                "SELECT owner, state, status, until FROM state_expiries WHERE owner = ?", (owner,)
            ) as cursor,
        ):
            row = await cursor.fetchone()
        return None if row is None else ExpiringState(str(row[0]), str(row[1]), row[2], int(row[3]))

    async def put(self, expiring: ExpiringState) -> None:
        """Store the owner's expiring state, replacing any; nothing for an account that is
        gone."""
        async with self._db.transaction() as conn:
            # 'WHERE true' keeps SQLite from reading ON CONFLICT as part of the SELECT's join.
            await conn.execute(
                "INSERT INTO state_expiries (owner, state, status, until)"
                " SELECT username, ?, ?, ? FROM accounts WHERE username = ? AND true"
                " ON CONFLICT (owner) DO UPDATE SET state = excluded.state,"
                " status = excluded.status, until = excluded.until",
                (expiring.state, expiring.status, expiring.until, expiring.owner),
            )

    async def remove(self, owner: str) -> None:
        async with self._db.transaction() as conn:
            await conn.execute("DELETE FROM state_expiries WHERE owner = ?", (owner,))
