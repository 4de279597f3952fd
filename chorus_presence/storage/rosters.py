"""Persistence of rosters, pending subscription requests and roster versions.

A subscription exchange changes two rosters at once; `RosterRepository.apply` writes every change
of one exchange in a single transaction, so a crash never leaves one side changed alone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from chorus_presence.storage.database import Database


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


@dataclass(slots=True)
class Roster:
    owner: str
    version: int = 0
    items: dict[str, RosterItem] = field(default_factory=dict)
    pending: dict[str, PendingRequest] = field(default_factory=dict)


@dataclass(slots=True)
class RosterChanges:
    """Changes to apply together: (owner, item), (owner, contact) and (owner, request) pairs."""

    upserts: list[tuple[str, RosterItem]] = field(default_factory=list)
    deletes: list[tuple[str, str]] = field(default_factory=list)
    pending_add: list[tuple[str, PendingRequest]] = field(default_factory=list)
    pending_remove: list[tuple[str, str]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.upserts or self.deletes or self.pending_add or self.pending_remove)

    def apply_to(self, roster: Roster, version: int | None) -> None:
        """Make an in-memory roster match what `RosterRepository.apply` wrote for its owner."""
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
                "SELECT contact, name, subscription, pending_out, approved, groups"
                " FROM roster_items WHERE owner = ?",
                (owner,),
            ) as cursor:
                async for contact, name, subscription, pending_out, approved, groups in cursor:
                    roster.items[contact] = RosterItem(
                        contact,
                        name,
                        subscription,
                        bool(pending_out),
                        bool(approved),
                        tuple(json.loads(groups)),
                    )
            async with conn.execute(
                "SELECT contact, status FROM subscription_requests WHERE owner = ?"
                " ORDER BY created_at, contact",
                (owner,),
            ) as cursor:
                async for contact, status in cursor:
                    roster.pending[contact] = PendingRequest(contact, status)
        return roster

    async def apply(self, changes: RosterChanges) -> dict[str, int]:
        """Write all changes in one transaction; the new roster version of each owner whose
        items changed."""
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
                    "INSERT INTO subscription_requests (owner, contact, status) VALUES (?, ?, ?)"
                    " ON CONFLICT (owner, contact) DO UPDATE SET status = excluded.status",
                    (owner, request.contact, request.status),
                )
            for owner, contact in changes.pending_remove:
                await conn.execute(
                    "DELETE FROM subscription_requests WHERE owner = ? AND contact = ?",
                    (owner, contact),
                )
            versions: dict[str, int] = {}
            for owner in dict.fromkeys(changed_owners):
                async with conn.execute(
                    "INSERT INTO roster_versions (owner, version) VALUES (?, 1)"
                    " ON CONFLICT (owner) DO UPDATE SET version = version + 1"
                    " RETURNING version",
                    (owner,),
                ) as cursor:
                    row = await cursor.fetchone()
                versions[owner] = row[0]
        return versions
