"""Persistence of per-user product settings (the `user_settings` table)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from chorus_presence.storage.database import Database


@dataclass(frozen=True, slots=True)
class UserSettings:
    visibility_policy: str = "ask"
    away_when_offline: bool = False
    routing_enabled: bool = False
    default_device: str | None = None
    routing_permission: bool = False
    # IANA name, in which a status set "for today" or "for this week" ends.
    time_zone: str = "UTC"
    # Contacts see the user as logged out while the user goes on using the service.
    appear_offline: bool = False
    # Nobody learns when the user was last seen, and the user learns nobody's.
    hide_last_seen: bool = False


COLUMNS = tuple(f.name for f in fields(UserSettings))
BOOLEAN_COLUMNS = frozenset(
    {
        "away_when_offline",
        "routing_enabled",
        "routing_permission",
        "appear_offline",
        "hide_last_seen",
    }
)


class SettingsRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, owner: str) -> UserSettings:
        """The owner's settings; the defaults when none were ever saved."""
        async with (
            self._db.read() as conn,
            conn.execute(
                f"SELECT {', '.join(COLUMNS)} FROM user_settings WHERE owner = ?", (owner,)
            ) as cursor,
        ):
            row = await cursor.fetchone()
        if row is None:
            return UserSettings()
        # Any: each column has its own type, which the row does not carry.
        values: dict[str, Any] = {
            name: bool(value) if name in BOOLEAN_COLUMNS else value
            for name, value in zip(COLUMNS, row, strict=True)
        }
        return UserSettings(**values)

    async def update(self, owner: str, **changes: object) -> UserSettings:
        """Change some settings (committed before returning) and return all of them."""
        sql, parameters = upsert_statement(owner, changes)
        async with self._db.transaction() as conn:
            await conn.execute(sql, parameters)
        return await self.get(owner)

    async def owners_with(self, flag: str) -> set[str]:
        """Every user with the boolean setting `flag` switched on."""
        if flag not in BOOLEAN_COLUMNS:
            raise ValueError(f"not a boolean setting: {flag}")
        async with (
            self._db.read() as conn,
            conn.execute(f"SELECT owner FROM user_settings WHERE {flag} = 1") as cursor,
        ):
            return {row[0] for row in await cursor.fetchall()}


def upsert_statement(owner: str, changes: Mapping[str, object]) -> tuple[str, tuple[object, ...]]:
    """The SQL and parameters that change some of the owner's settings, for callers to run in
    their own transaction; ValueError names any column that is not a setting."""
    unknown = set(changes) - set(COLUMNS)
    if unknown:
        raise ValueError(f"unknown settings: {', '.join(sorted(unknown))}")
    names = list(changes)
    values = [int(v) if isinstance(v, bool) else v for v in changes.values()]
    # With nothing to change the row is only made to exist: an empty SET is a syntax error.
    action = (
        f"DO UPDATE SET {', '.join(f'{name} = excluded.{name}' for name in names)}"
        if names
        else "DO NOTHING"
    )
    columns = "".join(f", {name}" for name in names)
    placeholders = "".join(", ?" for _ in names)
    return (
        f"INSERT INTO user_settings (owner{columns}) VALUES (?{placeholders})"
        f" ON CONFLICT (owner) {action}",
        (owner, *values),
    )
