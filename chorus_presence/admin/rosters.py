"""Admin commands on rosters: show, add and remove items, link two users, and sync a group.

Links are made of real subscription exchanges (`ctx.subscriptions.exchange`), so each user's
settings are honoured and connected clients get the roster pushes and presence at once. A group
sync links its members in rounds in which nobody is in two pairs: a round's links hold no
account lock in common, so they run side by side and share the database's commits.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from dataclasses import replace

from chorus_presence.admin.common import (
    AdminError,
    Command,
    contact_jid,
    existing_user,
)
from chorus_presence.server.components import Components
from chorus_presence.services.rosters import MAX_GROUPS, MAX_TEXT_BYTES
from chorus_presence.services.subscription_states import SEES
from chorus_presence.storage.rosters import RosterChanges, RosterItem
from chorus_presence.xmpp.jid import JID


async def show(ctx: Components, user: str) -> dict[str, object]:
    jid = await existing_user(ctx, user)
    assert jid.local is not None
    roster = await ctx.rosters.roster(jid.local)
    return {
        "user": str(jid),
        "version": roster.version,
        "items": [_item(item) for _, item in sorted(roster.items.items())],
        "pending": [
            {"jid": request.contact, "nick": request.nick, "status": request.status}
            for request in roster.pending.values()
        ],
    }


async def add(
    ctx: Components,
    user: str,
    contact: str,
    name: str | None = None,
    groups: list[str] | None = None,
) -> dict[str, object]:
    """Add or edit an item's name and groups, as a client's roster set does; the
    subscription is left as it is."""
    jid = await existing_user(ctx, user)
    assert jid.local is not None
    other = contact_jid(ctx, contact)
    if other == jid:
        raise AdminError(f"{jid} cannot be a contact in their own roster")
    if name is not None and not 0 < len(name.encode()) <= MAX_TEXT_BYTES:
        raise AdminError(
            f"A contact's name is 1 to {MAX_TEXT_BYTES} bytes, not {len(name.encode())}"
        )
    unique = _groups(groups or [])
    # The contact's lock too: removing the contact's account deletes this row under it.
    async with ctx.rosters.hold(jid, other):
        roster = await ctx.rosters.roster(jid.local)
        current = roster.items.get(str(other)) or RosterItem(str(other))
        updated = replace(current, name=name, groups=unique)
        await ctx.rosters.commit(RosterChanges(upserts=[(jid.local, updated)]))
    return {"user": str(jid), "item": _item(updated)}


async def remove(ctx: Components, user: str, contact: str) -> dict[str, str]:
    """Delete the item and cancel the subscriptions both ways (RFC 6121 section 2.5)."""
    jid = await existing_user(ctx, user)
    assert jid.local is not None
    other = contact_jid(ctx, contact)
    roster = await ctx.rosters.roster(jid.local)
    if str(other) not in roster.items:
        raise AdminError(f"{other} is not in the roster of {jid}")
    await ctx.subscriptions.remove_contact(jid.local, str(other))
    return {"user": str(jid), "contact": str(other)}


async def link(ctx: Components, user: str, contact: str) -> dict[str, object]:
    """Mutual subscription ('both') between two users of this server."""
    first = await existing_user(ctx, user)
    second = await existing_user(ctx, contact)
    if first == second:
        raise AdminError(f"{first} cannot be linked with themselves")
    await _link(ctx, first, second)
    return {"user": str(first), "contact": str(second)}


async def group_sync(ctx: Components, group: str, users: list[str]) -> dict[str, object]:
    """Link every member with every other one and put the group on their items for each
    other. Adds only: other items and other groups are left alone."""
    (group,) = _groups([group])
    members = list(dict.fromkeys([await existing_user(ctx, user) for user in users]))
    if len(members) < 2:
        raise AdminError(f"Group {group!r} needs at least two different users")
    linked = tagged = 0
    # Each member's roster is read once, not at each of the exchanges it takes part in.
    async with ctx.rosters.kept(member.local for member in members if member.local):
        for pairs in _rounds(members):
            results = await asyncio.gather(
                *(_link(ctx, first, second) for first, second in pairs), return_exceptions=True
            )
            for result in results:
                if isinstance(result, BaseException):
                    raise result
                linked += result
        # Every member's: each one's items name all the others.
        async with ctx.rosters.hold(*members):
            for member in members:
                tagged += await _tag(ctx, member, members, group)
    return {
        "group": group,
        "members": [str(member) for member in members],
        "linked": linked,
        "tagged": tagged,
    }


def _rounds(members: Sequence[JID]) -> Iterator[list[tuple[JID, JID]]]:
    """Every pair of members once, in rounds in which each member is in one pair at most (the
    circle method of round-robin tournaments: one member stays, the others turn)."""
    seats: list[JID | None] = [*members, None] if len(members) % 2 else list(members)
    count = len(seats)
    for _ in range(count - 1):
        pairs = [(seats[i], seats[count - 1 - i]) for i in range(count // 2)]
        yield [(a, b) for a, b in pairs if a is not None and b is not None]
        seats = [seats[0], seats[-1], *seats[1:-1]]


async def _link(ctx: Components, first: JID, second: JID) -> bool:
    """Make each of the two see the other; False when they already did."""
    changed = False
    for watcher, watched in ((first, second), (second, first)):
        if await _sees(ctx, watcher, watched):
            continue
        changed = True
        # Pre-approval first (or the answer to a request already pending), so the request
        # that follows is granted whatever the watched user's visibility policy.
        await ctx.subscriptions.exchange(watched, watcher, "subscribed")
        if not await _sees(ctx, watcher, watched):
            await ctx.subscriptions.exchange(watcher, watched, "subscribe")
        if not await _sees(ctx, watcher, watched):
            raise AdminError(
                f"{watched} does not let {watcher} see their presence (presence blocked list"
                f" or block list); see `visibility show {watched}`"
            )
    return changed


async def _tag(ctx: Components, member: JID, members: list[JID], group: str) -> int:
    """Put `group` on the member's items for the others; the caller holds their locks."""
    assert member.local is not None
    roster = await ctx.rosters.roster(member.local)
    changes = RosterChanges()
    for other in members:
        item = roster.items.get(str(other))
        if other == member or item is None or group in item.groups:
            continue
        if len(item.groups) >= MAX_GROUPS:
            raise AdminError(f"{other} already has {MAX_GROUPS} groups in the roster of {member}")
        changes.upserts.append((member.local, replace(item, groups=(*item.groups, group))))
    await ctx.rosters.commit(changes)
    return len(changes.upserts)


async def _sees(ctx: Components, watcher: JID, watched: JID) -> bool:
    assert watcher.local is not None
    item = (await ctx.rosters.roster(watcher.local)).items.get(str(watched))
    return item is not None and item.subscription in SEES


def _groups(groups: list[str]) -> tuple[str, ...]:
    unique = tuple(dict.fromkeys(groups))
    for group in unique:
        # RFC 6121 section 2.1.2.4 forbids empty group names.
        if not 0 < len(group.encode()) <= MAX_TEXT_BYTES:
            raise AdminError(
                f"A group name is 1 to {MAX_TEXT_BYTES} bytes, not {len(group.encode())}"
            )
    if len(unique) > MAX_GROUPS:
        raise AdminError(f"A contact is in at most {MAX_GROUPS} groups, not {len(unique)}")
    return unique


def _item(item: RosterItem) -> dict[str, object]:
    return {
        "jid": item.contact,
        "name": item.name,
        "subscription": item.subscription,
        "ask": item.pending_out,
        "approved": item.approved,
        "groups": list(item.groups),
    }


COMMANDS = {
    "roster.show": Command(show),
    "roster.add": Command(add),
    "roster.remove": Command(remove),
    "roster.link": Command(link),
    "group.sync": Command(group_sync),
}
