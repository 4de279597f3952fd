"""Each user's latest state set with an expiry, on PostgreSQL: the contract of the SQLite
`storage.state_expiry`, the row removed with its account by cascade."""

from __future__ import annotations

from chorus_presence.storage.postgres.pool import Pool
from chorus_presence.storage.state_expiry import ExpiringState


class StateExpiryRepository:
    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def all(self) -> list[ExpiringState]:
        """Every stored expiring state, by owner."""
        rows = await self._pool.fetch(
            "SELECT owner, state, status, until FROM state_expiries ORDER BY owner"
        )
        return [
            ExpiringState(row["owner"], row["state"], row["status"], int(row["until"]))
            for row in rows
        ]

    async def get(self, owner: str) -> ExpiringState | None:
        row = await self._pool.fetchrow(
            "SELECT owner, state, status, until FROM state_expiries WHERE owner = $1", owner
        )
        if row is None:
            return None
        return ExpiringState(row["owner"], row["state"], row["status"], int(row["until"]))

    async def put(self, expiring: ExpiringState) -> None:
        """Store the owner's expiring state, replacing any; nothing for an account that is
        gone."""
        async with self._pool.transaction(expiring.owner) as conn:
            await conn.execute(
                "INSERT INTO state_expiries (owner, state, status, until)"
                " SELECT username, $2, $3, $4 FROM accounts WHERE username = $1"
                " ON CONFLICT (owner) DO UPDATE SET state = excluded.state,"
                " status = excluded.status, until = excluded.until",
                expiring.owner,
                expiring.state,
                expiring.status,
                expiring.until,
            )

    async def remove(self, owner: str) -> None:
        async with self._pool.transaction(owner) as conn:
            await conn.execute("DELETE FROM state_expiries WHERE owner = $1", owner)
