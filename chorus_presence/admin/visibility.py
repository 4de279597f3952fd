"""Admin commands on who may see a user's presence: the policy, the allowed, blocked and
pending lists, presence automation and appearing offline. Each change is the visibility
service's own, so the contacts concerned see (or stop seeing) the user at once, and the service
alone decides what it takes: its refusals reach the operator as they are.
"""

from __future__ import annotations

from chorus_presence.admin.common import Command, existing_username, is_localpart
from chorus_presence.server.components import Components
from chorus_presence.services.visibility import VisibilityOverview


async def show(ctx: Components, user: str) -> dict[str, object]:
    owner = await existing_username(ctx, user)
    overview = await ctx.visibility.overview(owner)
    return {
        "user": f"{owner}@{ctx.domain}",
        "policy": overview.policy,
        "away_when_offline": overview.away_when_offline,
        "appear_offline": overview.appear_offline,
        "last_seen_shown": ctx.last_seen.shows(owner),
        "pending": _requests(overview),
        "allowed": overview.allowed,
        "blocked": overview.blocked,
    }


async def pending(ctx: Components, user: str) -> list[dict[str, str | None]]:
    return _requests(await ctx.visibility.overview(await existing_username(ctx, user)))


async def policy(ctx: Components, user: str, policy: str) -> dict[str, object]:
    await ctx.visibility.set_policy(await existing_username(ctx, user), policy)
    return await show(ctx, user)


async def allow(ctx: Components, user: str, contact: str) -> dict[str, object]:
    owner = await existing_username(ctx, user)
    await ctx.visibility.allow(owner, _contact(ctx, contact))
    return await show(ctx, user)


async def block(ctx: Components, user: str, contact: str) -> dict[str, object]:
    owner = await existing_username(ctx, user)
    await ctx.visibility.block(owner, _contact(ctx, contact))
    return await show(ctx, user)


async def accept(ctx: Components, user: str, contact: str) -> dict[str, object]:
    owner = await existing_username(ctx, user)
    await ctx.visibility.accept(owner, _contact(ctx, contact))
    return await show(ctx, user)


async def automation(ctx: Components, user: str, enabled: bool) -> dict[str, object]:
    """Presence automation: contacts see "Away, Not logged in" while the user is offline."""
    await ctx.visibility.set_away_when_offline(await existing_username(ctx, user), enabled)
    return await show(ctx, user)


async def appear_offline(ctx: Components, user: str, enabled: bool) -> dict[str, object]:
    """Everyone else sees the user as logged out, whether or not the user is, until it is
    turned off."""
    await ctx.visibility.set_appear_offline(await existing_username(ctx, user), enabled)
    return await show(ctx, user)


async def last_seen(ctx: Components, user: str, shown: bool) -> dict[str, object]:
    """Show or hide since when the user has been away or offline; hidden, the user sees
    nobody's either."""
    await ctx.last_seen.set_shown(await existing_username(ctx, user), shown)
    return await show(ctx, user)


def _contact(ctx: Components, text: str) -> str:
    """The contact as the service reads it: a localpart alone names a user of this server, as
    everywhere on the command line."""
    return f"{text}@{ctx.domain}" if is_localpart(text, ctx.domain) else text


def _requests(overview: VisibilityOverview) -> list[dict[str, str | None]]:
    return [
        {"jid": request.contact, "nick": request.nick, "status": request.status}
        for request in overview.pending
    ]


COMMANDS = {
    "visibility.show": Command(show),
    "visibility.pending": Command(pending),
    "visibility.policy": Command(policy),
    "visibility.allow": Command(allow),
    "visibility.block": Command(block),
    "visibility.accept": Command(accept),
    "visibility.automation": Command(automation),
    "visibility.appear-offline": Command(appear_offline),
    "visibility.last-seen": Command(last_seen),
}
