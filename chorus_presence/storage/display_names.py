"""Persistence of each account's display name (the `display_names` table).

Names arrive here already checked (`services.display_names.checked_name`); this module stores
and fetches them. A name goes with its account: the row is removed with it by cascade, so a
later account of the same username starts without one.
"""

from __future__ import annotations

from chorus_presence.storage.database import Database


class DisplayNameRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, owner: str) -> str | None:
        async with (
            self._db.read() as conn,
            conn.execute("SELECT name FROM display_names WHERE owner = ?", (owner,)) as cursor,
        ):
            row = await cursor.fetchone()
        return str(row[0]) if row else None

    async def get_many(self, owners: list[str]) -> dict[str, str]:
        """The names of those of `owners` who have one, by owner."""
        if not owners:
            return {}
        marks = ", ".join("?" * len(owners))
        async with (
            self._db.read() as conn,
            conn.execute(
                f"SELECT owner, name FROM display_names WHERE owner IN ({marks})", owners
            ) as cursor,
        ):
            return {str(row[0]): str(row[1]) for row in await cursor.fetchall()}

    async def set(self, owner: str, name: str) -> bool:
        """Store the owner's name, replacing any; False if there is no such account."""
        async with self._db.transaction() as conn:
            # 'WHERE true' keeps SQLite from reading ON CONFLICT as part of the SELECT's join.
            cursor = await conn.execute(
                "INSERT INTO display_names (owner, name)"
                " SELECT username, ? FROM accounts WHERE username = ? AND true"
                " ON CONFLICT (owner) DO UPDATE SET name = excluded.name",
                (name, owner),
            )
        return cursor.rowcount > 0

    async def clear(self, owner: str) -> None:
        async with self._db.transaction() as conn:
            await conn.execute("DELETE FROM display_names WHERE owner = ?", (owner,))

    async def all(self) -> dict[str, str]:
        """Every stored name, by owner."""
        async with (
            self._db.read() as conn,
            conn.execute("SELECT owner, name FROM display_names ORDER BY owner") as cursor,
        ):
            return {str(row[0]): str(row[1]) for row in await cursor.fetchall()}
