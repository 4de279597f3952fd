"""Start-up consistency repairs on PostgreSQL: the same repairs as `storage.consistency`, for
a database that several nodes may open at once.

A repair runs in one transaction holding a database-wide repair lock, so nodes starting
together repair once; it then locks every user whose rows it changes and reads again what is
broken, since another node may have changed those rows while it waited.
"""

from __future__ import annotations

import logging

from chorus_presence.storage.consistency import BROKEN_PRESENCE_BLOCKS, local_user
from chorus_presence.storage.postgres.pool import Connection, Pool, lock, user_lock
from chorus_presence.storage.postgres.rosters import bump_version

log = logging.getLogger(__name__)


async def repair(pool: Pool, domain: str) -> None:
    """Every repair, for a database serving `domain` (local contacts are `user@domain`)."""
    await repair_presence_blocks(pool, domain)


async def repair_presence_blocks(pool: Pool, domain: str) -> int:
    """Cancel the subscription of every blocked contact who can still see the owner's presence;
    the number of blocks repaired."""
    async with pool.transaction() as conn:
        await lock(conn, "repair")
        users = {name for pair in await _broken(conn) for name in _users(pair, domain)}
        if not users:
            return 0
        await lock(conn, *(user_lock(user) for user in users))
        broken = [pair for pair in await _broken(conn) if set(_users(pair, domain)) <= users]
        changed: dict[str, None] = {}
        for owner, contact in broken:
            # The owner's outbound unsubscribed: 'from' goes, and any pre-approval or request.
            await conn.execute(
                "UPDATE roster_items SET approved = false,"
                " subscription = CASE subscription WHEN 'both' THEN 'to' ELSE 'none' END"
                " WHERE owner = $1 AND contact = $2 AND subscription IN ('from', 'both')",
                owner,
                contact,
            )
            await conn.execute(
                "DELETE FROM subscription_requests WHERE owner = $1 AND contact = $2",
                owner,
                contact,
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


async def _broken(conn: Connection) -> list[tuple[str, str]]:
    return [(row["owner"], row["contact"]) for row in await conn.fetch(BROKEN_PRESENCE_BLOCKS)]


def _users(pair: tuple[str, str], domain: str) -> tuple[str, ...]:
    """The local users whose rows repairing this block changes: the owner, and the contact
    when it is an account of this server."""
    owner, contact = pair
    local = local_user(contact, domain)
    return (owner,) if local is None else (owner, local)


async def _cancel_inbound(conn: Connection, owner: str, contact: str) -> bool:
    """The contact's side of the same cancellation (the inbound unsubscribed): its 'to' goes.
    Whether the row changed."""
    changed = await conn.fetchval(
        "UPDATE roster_items SET pending_out = false,"
        " subscription = CASE subscription WHEN 'both' THEN 'from' ELSE 'none' END"
        " WHERE owner = $1 AND contact = $2 AND subscription IN ('to', 'both')"
        " RETURNING true",
        owner,
        contact,
    )
    return bool(changed)
