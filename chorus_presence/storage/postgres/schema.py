"""The PostgreSQL schema: this package's numbered migrations and applying them.

Migrations are the `NNN_name.sql` files in the `migrations` directory beside this module,
numbered 1, 2, 3... without gaps, and recorded in the `schema_version` table. Each is applied
in its own transaction (PostgreSQL's DDL is transactional, so a failed migration leaves
nothing behind) under a database-wide advisory lock, so that nodes starting together apply
each migration exactly once.
"""

from __future__ import annotations

import asyncpg

from chorus_presence.config import display_url
from chorus_presence.storage.database import Migration, SchemaError
from chorus_presence.storage.database import migrations as packaged_migrations
from chorus_presence.storage.postgres.pool import Connection, Pool, lock, unavailable


def migrations() -> list[Migration]:
    """The packaged PostgreSQL migrations in order."""
    return packaged_migrations("chorus_presence.storage.postgres")


async def schema_version(pool: Pool) -> int:
    """The version the database is at; 0 for a database chorus-presence never touched."""
    async with pool.read() as conn:
        return await _current_version(conn)


async def migrate(pool: Pool) -> int:
    """Apply every pending migration; the schema version reached."""
    known = migrations()
    current = await schema_version(pool)
    _check_not_newer(pool, current, len(known))
    for migration in known[current:]:
        async with pool.transaction() as conn:
            await lock(conn, "migrations")
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_version ("
                " version integer NOT NULL PRIMARY KEY,"
                " name text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            # Another node may have applied it while this one waited for the lock.
            current = await _current_version(conn)
            _check_not_newer(pool, current, len(known))
            if current >= migration.version:
                continue
            try:
                await conn.execute(migration.sql)
            except asyncpg.PostgresError as exc:
                if unavailable(exc):
                    raise
                raise SchemaError(
                    f"database {display_url(pool.url)}: migration"
                    f" {migration.version:03d}_{migration.name} failed: {exc}"
                ) from exc
            await conn.execute(
                "INSERT INTO schema_version (version, name) VALUES ($1, $2)",
                migration.version,
                migration.name,
            )
    return len(known)


def _check_not_newer(pool: Pool, current: int, known: int) -> None:
    if current > known:
        raise SchemaError(
            f"database {display_url(pool.url)} has schema version {current}, newer than the"
            f" {known} this version of chorus-presence knows; upgrade it"
        )


async def _current_version(conn: Connection) -> int:
    exists = await conn.fetchval("SELECT to_regclass('schema_version') IS NOT NULL")
    if not exists:
        return 0
    return int(await conn.fetchval("SELECT coalesce(max(version), 0) FROM schema_version"))
