"""Start-up consistency repairs: rows older versions could leave half-done, made whole before
anything reads them.

Each repair runs in one transaction, changes nothing on a consistent database, and logs once,
with a count, when it did change something. Storage opens with them (`factory`), while no roster
is cached yet, so nothing in memory has to follow.

- Presence blocks. Blocking a contact on the presence blocked list used to be two commits, the
  block and then the subscription exchange cancelling the contact's subscription; a crash in
  between left a blocked contact still subscribed to the owner's presence (`from` or `both` in
  the owner's roster). The block wins: the rows become what the owner's `unsubscribed` would
  have made them (RFC 6121 section 3.2), on both sides.
"""

from __future__ import annotations

import logging

import aiosqlite

from chorus_presence.storage.database import Database
from chorus_presence.storage.rosters import bump_version

log = logging.getLogger(__name__)

# Every presence block, (owner, contact), whose contact still sees the owner's presence.
BROKEN_PRESENCE_BLOCKS = (
    "SELECT b.owner, b.contact FROM presence_blocks AS b"
    " JOIN roster_items AS i ON i.owner = b.owner AND i.contact = b.contact"
    " WHERE i.subscription IN ('from', 'both')"
    " ORDER BY b.owner, b.contact"
)


async def repair(db: Database, domain: str) -> None:
    """Every repair, for a database serving `domain` (local contacts are `user@domain`)."""
    await repair_presence_blocks(db, domain)


async def repair_presence_blocks(db: Database, domain: str) -> int:
    """Cancel the subscription of every blocked contact who can still see the owner's presence;
    the number of blocks repaired."""
    async with db.transaction() as conn:
        async with conn.execute(BROKEN_PRESENCE_BLOCKS) as cursor:
            broken = [(str(owner), str(contact)) for owner, contact in await cursor.fetchall()]
        changed: dict[str, None] = {}
        for owner, contact in broken:
            # The owner's outbound unsubscribed: 'from' goes, and any pre-approval or request.
            await conn.execute(
                "UPDATE roster_items SET approved = 0,"
                " subscription = CASE subscription WHEN 'both' THEN 'to' ELSE 'none' END"
                " WHERE owner = ? AND contact = ?",
                (owner, contact),
            )
            await conn.execute(
                "DELETE FROM subscription_requests WHERE owner = ? AND contact = ?",
                (owner, contact),
            )
            changed[owner] = None
            local = local_user(contact, domain)
            if local is not None and await _cancel_inbound(conn, local, f"{owner}@{domain}"):
                changed[local] = None
        # Once per roster, so a client's cached version is stale exactly once.
        for owner in changed:
            await bump_version(conn, owner)
    if broken:
        log.warning(
            "repaired %d presence blocks left half-done by an older version: the blocked"
            " contacts could still see their owner's presence, and no longer can",
            len(broken),
        )
    return len(broken)


def local_user(contact: str, domain: str) -> str | None:
    """The username of `contact` when it is an account of the server for `domain`."""
    local, _, contact_domain = contact.rpartition("@")
    return local if local and contact_domain == domain else None


async def _cancel_inbound(conn: aiosqlite.Connection, owner: str, contact: str) -> bool:
    """The contact's side of the same cancellation (the inbound unsubscribed): its 'to' goes.
    Whether the row changed."""
    cursor = await conn.execute(
        "UPDATE roster_items SET pending_out = 0,"
        " subscription = CASE subscription WHEN 'both' THEN 'from' ELSE 'none' END"
        " WHERE owner = ? AND contact = ? AND subscription IN ('to', 'both')",
        (owner, contact),
    )
    return cursor.rowcount > 0
