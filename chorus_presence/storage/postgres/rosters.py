"""Rosters, pending subscription requests and roster versions, on PostgreSQL.

`apply` writes every change of one subscription exchange in a single transaction that holds
the lock of every owner it touches, so both rosters change together, and two processes
changing the same pair at once take turns: the end state is one exchange's or the other's,
on both sides, with every version bump counted.
"""

from __future__ import annotations

import asyncpg

from chorus_presence.storage.postgres.pool import Connection, Pool
from chorus_presence.storage.postgres.settings import upsert_statement
from chorus_presence.storage.postgres.visibility import (
    DELETE_PRESENCE_BLOCK,
    INSERT_PRESENCE_BLOCK,
)
from chorus_presence.storage.rosters import PendingRequest, Roster, RosterChanges, RosterItem

# The `roster_items` columns `item_from_record` reads.
ITEM_COLUMNS = "contact, name, subscription, pending_out, approved, groups"


class RosterRepository:
    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def load(self, owner: str) -> Roster:
        roster = Roster(owner)
        async with self._pool.read() as conn:
            version = await conn.fetchval(
                "SELECT version FROM roster_versions WHERE owner = $1", owner
            )
            roster.version = int(version) if version is not None else 0
            for row in await conn.fetch(
                f"SELECT {ITEM_COLUMNS} FROM roster_items WHERE owner = $1", owner
            ):
                item = item_from_record(row)
                roster.items[item.contact] = item
            for row in await conn.fetch(
                "SELECT contact, status, nick FROM subscription_requests WHERE owner = $1"
                " ORDER BY created_at, contact",
                owner,
            ):
                roster.pending[row["contact"]] = PendingRequest(
                    row["contact"], row["status"], row["nick"]
                )
        return roster

    async def apply(self, changes: RosterChanges) -> dict[str, int]:
        """Write all changes in one transaction; the new roster version of each owner whose
        items changed. ValueError, before anything is written, for an unknown setting."""
        settings_writes = [upsert_statement(owner, values) for owner, values in changes.settings]
        changed_owners = [owner for owner, _ in changes.upserts]
        changed_owners += [owner for owner, _ in changes.deletes]
        touched = {
            *changed_owners,
            *(owner for owner, _ in changes.pending_add),
            *(owner for owner, _ in changes.pending_remove),
            *(owner for owner, _ in changes.presence_blocks_add),
            *(owner for owner, _ in changes.presence_blocks_remove),
            *(owner for owner, _ in changes.settings),
        }
        async with self._pool.transaction(*touched) as conn:
            for owner, item in changes.upserts:
                await conn.execute(
                    "INSERT INTO roster_items"
                    " (owner, contact, name, subscription, pending_out, approved, groups)"
                    " VALUES ($1, $2, $3, $4, $5, $6, $7)"
                    " ON CONFLICT (owner, contact) DO UPDATE SET name = excluded.name,"
                    " subscription = excluded.subscription, pending_out = excluded.pending_out,"
                    " approved = excluded.approved, groups = excluded.groups",
                    owner,
                    item.contact,
                    item.name,
                    item.subscription,
                    item.pending_out,
                    item.approved,
                    list(item.groups),
                )
            for owner, contact in changes.deletes:
                await conn.execute(
                    "DELETE FROM roster_items WHERE owner = $1 AND contact = $2", owner, contact
                )
            for owner, request in changes.pending_add:
                await conn.execute(
                    "INSERT INTO subscription_requests (owner, contact, status, nick)"
                    " VALUES ($1, $2, $3, $4) ON CONFLICT (owner, contact)"
                    " DO UPDATE SET status = excluded.status, nick = excluded.nick",
                    owner,
                    request.contact,
                    request.status,
                    request.nick,
                )
            for owner, contact in changes.pending_remove:
                await conn.execute(
                    "DELETE FROM subscription_requests WHERE owner = $1 AND contact = $2",
                    owner,
                    contact,
                )
            if changes.presence_blocks_add:
                await conn.executemany(INSERT_PRESENCE_BLOCK, changes.presence_blocks_add)
            if changes.presence_blocks_remove:
                await conn.executemany(DELETE_PRESENCE_BLOCK, changes.presence_blocks_remove)
            for sql, parameters in settings_writes:
                await conn.execute(sql, *parameters)
            versions = {
                owner: await bump_version(conn, owner) for owner in dict.fromkeys(changed_owners)
            }
        return versions


def item_from_record(row: asyncpg.Record) -> RosterItem:
    """The item stored in one `roster_items` row, read with ITEM_COLUMNS."""
    return RosterItem(
        row["contact"],
        row["name"],
        row["subscription"],
        row["pending_out"],
        row["approved"],
        tuple(row["groups"]),
    )


async def bump_version(conn: Connection, owner: str) -> int:
    """Advance the owner's roster version inside the caller's transaction; the new version."""
    version = await conn.fetchval(
        "INSERT INTO roster_versions (owner, version) VALUES ($1, 1)"
        " ON CONFLICT (owner) DO UPDATE SET version = roster_versions.version + 1"
        " RETURNING version",
        owner,
    )
    return int(version)
