"""Call routing on PostgreSQL: each user's devices and which device rings in which state.

The switch and the default device live in `user_settings`; `replace` writes them too, in the
same transaction as the devices and the map.
"""

from __future__ import annotations

from chorus_presence.storage.postgres.pool import Pool
from chorus_presence.storage.routing import StoredRouting


class RoutingRepository:
    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def load(self, owner: str) -> StoredRouting:
        """Devices and map from one snapshot, so every mapped device is among the devices."""
        async with self._pool.read() as conn:
            devices = await conn.fetch(
                "SELECT name, kind FROM devices WHERE owner = $1 ORDER BY position", owner
            )
            mapping = await conn.fetch(
                "SELECT state, device FROM routing_map WHERE owner = $1", owner
            )
        return StoredRouting(
            tuple((row["name"], row["kind"]) for row in devices),
            {row["state"]: row["device"] for row in mapping},
        )

    async def replace(
        self,
        owner: str,
        *,
        enabled: bool,
        default_device: str | None,
        routing: StoredRouting,
    ) -> None:
        """Swap the owner's whole routing configuration for `routing`, atomically."""
        async with self._pool.transaction(owner) as conn:
            await conn.execute("DELETE FROM routing_map WHERE owner = $1", owner)
            await conn.execute("DELETE FROM devices WHERE owner = $1", owner)
            if routing.devices:
                await conn.executemany(
                    "INSERT INTO devices (owner, name, kind, position) VALUES ($1, $2, $3, $4)",
                    [
                        (owner, name, kind, position)
                        for position, (name, kind) in enumerate(routing.devices)
                    ],
                )
            if routing.mapping:
                await conn.executemany(
                    "INSERT INTO routing_map (owner, state, device) VALUES ($1, $2, $3)",
                    [(owner, state, device) for state, device in routing.mapping.items()],
                )
            await conn.execute(
                "INSERT INTO user_settings (owner, routing_enabled, default_device)"
                " VALUES ($1, $2, $3)"
                " ON CONFLICT (owner) DO UPDATE SET"
                " routing_enabled = excluded.routing_enabled,"
                " default_device = excluded.default_device",
                owner,
                enabled,
                default_device,
            )
