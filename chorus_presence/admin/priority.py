"""Admin commands on a user's priority list: the people whose messages alert the user and whose
calls ring the usual device while the user is in Do Not Disturb, Busy or In Meeting. Each
change is the priority access service's own, and its refusals reach the operator as they are.
"""

from __future__ import annotations

from chorus_presence.admin.common import Command, existing_username, is_localpart
from chorus_presence.server.components import Components


async def show(ctx: Components, user: str) -> dict[str, object]:
    owner = await existing_username(ctx, user)
    return {
        "user": f"{owner}@{ctx.domain}",
        "contacts": await ctx.priority_access.contacts(owner),
    }


async def add(ctx: Components, user: str, contact: str) -> dict[str, object]:
    owner = await existing_username(ctx, user)
    await ctx.priority_access.add(owner, _contact(ctx, contact))
    return await show(ctx, user)


async def remove(ctx: Components, user: str, contact: str) -> dict[str, object]:
    owner = await existing_username(ctx, user)
    await ctx.priority_access.remove(owner, _contact(ctx, contact))
    return await show(ctx, user)


def _contact(ctx: Components, text: str) -> str:
    """A localpart alone names a user of this server, as everywhere on the command line."""
    return f"{text}@{ctx.domain}" if is_localpart(text, ctx.domain) else text


COMMANDS = {
    "priority.show": Command(show),
    "priority.add": Command(add),
    "priority.remove": Command(remove),
}
