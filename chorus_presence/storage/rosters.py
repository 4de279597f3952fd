"""Persistence of rosters, pending subscription requests and roster versions.

A subscription exchange changes two rosters at once; `RosterRepository.apply` writes every change
of one exchange in a single transaction, so a crash never leaves one side changed alone. A
visibility move also changes presence blocks and settings, so those ride in the same changes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import aiosqlite

from chorus_presence.storage.database import Database
from chorus_presence.storage.settings import upsert_statement
from chorus_presence.storage.visibility import DELETE_PRESENCE_BLOCK, INSERT_PRESENCE_BLOCK

# The `roster_items` columns `item_from_row` takes, in its order.
ITEM_COLUMNS = "contact, name, subscription, pending_out, approved, groups"


@dataclass(frozen=True, slots=True)
class RosterItem:
    contact: str
    name: str | None = None
    subscription: str = "none"
    pending_out: bool = False
    approved: bool = False
    groups: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PendingRequest:
    contact: str
    status: str | None = None
    # The XEP-0172 nickname the request carried, already checked.
    nick: str | None = None


@dataclass(slots=True)
class Roster:
    owner: str
    version: int = 0
    items: dict[str, RosterItem] = field(default_factory=dict)
    pending: dict[str, PendingRequest] = field(default_factory=dict)


@dataclass(slots=True)
class RosterChanges:
    """Changes to apply together: (owner, item), (owner, contact) and (owner, request) pairs,
    plus the presence blocks and settings a visibility move changes with them."""

    upserts: list[tuple[str, RosterItem]] = field(default_factory=list)
    deletes: list[tuple[str, str]] = field(default_factory=list)
    pending_add: list[tuple[str, PendingRequest]] = field(default_factory=list)
    pending_remove: list[tuple[str, str]] = field(default_factory=list)
    # (owner, contact) rows of the presence blocked list, not of the XEP-0191 block list.
    presence_blocks_add: list[tuple[str, str]] = field(default_factory=list)
    presence_blocks_remove: list[tuple[str, str]] = field(default_factory=list)
    # (owner, column -> value) updates of `user_settings`.
    settings: list[tuple[str, dict[str, object]]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(
            self.upserts
            or self.deletes
            or self.pending_add
            or self.pending_remove
            or self.presence_blocks_add
            or self.presence_blocks_remove
            or self.settings
        )

    def apply_to(self, roster: Roster, version: int | None) -> None:
        """Make an in-memory roster match what `RosterRepository.apply` wrote for its owner.

        Presence blocks and settings are not roster state; their owners' caches follow them.
        """
        owner = roster.owner
        for who, item in self.upserts:
            if who == owner:
                roster.items[item.contact] = item
        for who, contact in self.deletes:
            if who == owner:
                roster.items.pop(contact, None)
        for who, request in self.pending_add:
            if who == owner:
                roster.pending[request.contact] = request
        for who, contact in self.pending_remove:
            if who == owner:
                roster.pending.pop(contact, None)
        if version is not None:
            roster.version = version


class RosterRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def load(self, owner: str) -> Roster:
        roster = Roster(owner)
        async with self._db.read() as conn:
            async with conn.execute(
                "SELECT version FROM roster_versions WHERE owner = ?", (owner,)
            ) as cursor:
                row = await cursor.fetchone()
            roster.version = row[0] if row else 0
            async with conn.execute(
                f"SELECT {ITEM_COLUMNS} FROM roster_items WHERE owner = ?", (owner,)
            ) as cursor:
                async for row in cursor:
                    item = item_from_row(*row)
                    roster.items[item.contact] = item
            async with conn.execute(
                "SELECT contact, status, nick FROM subscription_requests WHERE owner = ?"
                " ORDER BY created_at, contact",
                (owner,),
            ) as cursor:
                async for contact, status, nick in cursor:
                    roster.pending[contact] = PendingRequest(contact, status, nick)
        return roster

    async def apply(self, changes: RosterChanges) -> dict[str, int]:
        """Write all changes in one transaction; the new roster version of each owner whose
        items changed. ValueError, before anything is written, for an unknown setting."""
        settings_writes = [upsert_statement(owner, values) for owner, values in changes.settings]
        changed_owners: list[str] = []
        async with self._db.transaction() as conn:
            for owner, item in changes.upserts:
                await conn.execute(
                    "INSERT INTO roster_items"
                    " (owner, contact, name, subscription, pending_out, approved, groups)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT (owner, contact) DO UPDATE SET name = excluded.name,"
                    " subscription = excluded.subscription, pending_out = excluded.pending_out,"
                    " approved = excluded.approved, groups = excluded.groups",
                    (
                        owner,
                        item.contact,
                        item.name,
                        item.subscription,
                        int(item.pending_out),
                        int(item.approved),
                        json.dumps(list(item.groups)),
                    ),
                )
                changed_owners.append(owner)
            for owner, contact in changes.deletes:
                await conn.execute(
                    "DELETE FROM roster_items WHERE owner = ? AND contact = ?", (owner, contact)
                )
                changed_owners.append(owner)
            for owner, request in changes.pending_add:
                await conn.execute(
                    "INSERT INTO subscription_requests (owner, contact, status, nick)"
                    " VALUES (?, ?, ?, ?) ON CONFLICT (owner, contact)"
                    " DO UPDATE SET status = excluded.status, nick = excluded.nick",
                    (owner, request.contact, request.status, request.nick),
                )
            for owner, contact in changes.pending_remove:
                await conn.execute(
                    "DELETE FROM subscription_requests WHERE owner = ? AND contact = ?",
                    (owner, contact),
                )
            await conn.executemany(INSERT_PRESENCE_BLOCK, changes.presence_blocks_add)
            await conn.executemany(DELETE_PRESENCE_BLOCK, changes.presence_blocks_remove)
            for sql, parameters in settings_writes:
                await conn.execute(sql, parameters)
            versions = {
                owner: await bump_version(conn, owner) for owner in dict.fromkeys(changed_owners)
            }
        return versions


def item_from_row(
    contact: str,
    name: str | None,
    subscription: str,
    pending_out: int,
    approved: int,
    groups: str,
) -> RosterItem:
    """The item stored in one `roster_items` row, given its ITEM_COLUMNS."""
    return RosterItem(
        contact, name, subscription, bool(pending_out), bool(approved), tuple(json.loads(groups))
    )


async def bump_version(conn: aiosqlite.Connection, owner: str) -> int:
    """Advance the owner's roster version inside the caller's transaction; the new version."""
    async with conn.execute(
        "INSERT INTO roster_versions (owner, version) VALUES (?, 1)"
        " ON CONFLICT (owner) DO UPDATE SET version = version + 1"
        " RETURNING version",
        (owner,),
    ) as cursor:
        row = await cursor.fetchone()
    assert row is not None, "INSERT ... RETURNING always yields the row"
    return int(row[0])
