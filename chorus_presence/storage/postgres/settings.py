"""Per-user product settings (the `user_settings` table), on PostgreSQL."""

from __future__ import annotations

from collections.abc import Mapping

from chorus_presence.storage.postgres.pool import Pool
from chorus_presence.storage.settings import BOOLEAN_COLUMNS, COLUMNS, UserSettings


class SettingsRepository:
    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def get(self, owner: str) -> UserSettings:
        """The owner's settings; the defaults when none were ever saved."""
        row = await self._pool.fetchrow(
            f"SELECT {', '.join(COLUMNS)} FROM user_settings WHERE owner = $1", owner
        )
        if row is None:
            return UserSettings()
        return UserSettings(**dict(row.items()))

    async def update(self, owner: str, **changes: object) -> UserSettings:
        """Change some settings (committed before returning) and return all of them."""
        sql, parameters = upsert_statement(owner, changes)
        async with self._pool.transaction(owner) as conn:
            await conn.execute(sql, *parameters)
        return await self.get(owner)

    async def owners_with(self, flag: str) -> set[str]:
        """Every user with the boolean setting `flag` switched on."""
        if flag not in BOOLEAN_COLUMNS:
            raise ValueError(f"not a boolean setting: {flag}")
        rows = await self._pool.fetch(f"SELECT owner FROM user_settings WHERE {flag}")
        return {row["owner"] for row in rows}


def upsert_statement(owner: str, changes: Mapping[str, object]) -> tuple[str, tuple[object, ...]]:
    """The SQL and parameters that change some of the owner's settings, for callers to run in
    their own transaction; ValueError names any column that is not a setting."""
    unknown = set(changes) - set(COLUMNS)
    if unknown:
        raise ValueError(f"unknown settings: {', '.join(sorted(unknown))}")
    names = list(changes)
    # With nothing to change the row is only made to exist: an empty SET is a syntax error.
    action = (
        f"DO UPDATE SET {', '.join(f'{name} = excluded.{name}' for name in names)}"
        if names
        else "DO NOTHING"
    )
    columns = "".join(f", {name}" for name in names)
    placeholders = "".join(f", ${n}" for n in range(2, len(names) + 2))
    return (
        f"INSERT INTO user_settings (owner{columns}) VALUES ($1{placeholders})"
        f" ON CONFLICT (owner) {action}",
        (owner, *changes.values()),
    )
