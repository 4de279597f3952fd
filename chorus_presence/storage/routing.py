"""Persistence of call routing: each user's devices and which device rings in which state.

The `devices` and `routing_map` tables belong here. The switch and the default device live in
`user_settings`, read through `SettingsRepository`; `replace` writes those two columns itself
because a new configuration has to land in one transaction, and transactions do not nest.
"""

from __future__ import annotations

from dataclasses import dataclass

from chorus_presence.storage.database import Database


@dataclass(frozen=True, slots=True)
class StoredRouting:
    """Devices as (name, kind) pairs in the order the user gave them, and state -> device."""

    devices: tuple[tuple[str, str], ...]
    mapping: dict[str, str]


class RoutingRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def load(self, owner: str) -> StoredRouting:
        """Devices and map from one snapshot, so every mapped device is among the devices."""
        async with self._db.read() as conn:
            # Rows are rewritten in the user's order on every replace, so rowid keeps it.
            async with conn.execute(
                "SELECT name, kind FROM devices WHERE owner = ? ORDER BY rowid", (owner,)
            ) as cursor:
                devices = tuple((name, kind) for name, kind in await cursor.fetchall())
            async with conn.execute(
                "SELECT state, device FROM routing_map WHERE owner = ?", (owner,)
            ) as cursor:
                mapping = {state: device for state, device in await cursor.fetchall()}
        return StoredRouting(devices, mapping)

    async def replace(
        self,
        owner: str,
        *,
        enabled: bool,
        default_device: str | None,
        routing: StoredRouting,
    ) -> None:
        """Swap the owner's whole routing configuration for `routing`, atomically."""
        async with self._db.transaction() as conn:
            await conn.execute("DELETE FROM routing_map WHERE owner = ?", (owner,))
            await conn.execute("DELETE FROM devices WHERE owner = ?", (owner,))
            await conn.executemany(
                "INSERT INTO devices (owner, name, kind) VALUES (?, ?, ?)",
                [(owner, name, kind) for name, kind in routing.devices],
            )
            await conn.executemany(
                "INSERT INTO routing_map (owner, state, device) VALUES (?, ?, ?)",
                [(owner, state, device) for state, device in routing.mapping.items()],
            )
            await conn.execute(
                "INSERT INTO user_settings (owner, routing_enabled, default_device)"
                " VALUES (?, ?, ?)"
                " ON CONFLICT (owner) DO UPDATE SET"
                " routing_enabled = excluded.routing_enabled,"
                " default_device = excluded.default_device",
                (owner, int(enabled), default_device),
            )
