"""Admin commands on a user's quiet hours: the weekly schedule of states in the user's time
zone. Each change is the quiet hours service's own, applied as the user's own change would be
(at once if it changes what is in force), and its refusals reach the operator as they are.
"""

from __future__ import annotations

from chorus_presence.admin.common import Command, existing_username
from chorus_presence.server.components import Components
from chorus_presence.services import quiet_hours
from chorus_presence.xmpp.errors import StanzaError


async def show(ctx: Components, user: str) -> dict[str, object]:
    owner = await existing_username(ctx, user)
    return {
        "user": f"{owner}@{ctx.domain}",
        "time_zone": (await ctx.repositories.settings.get(owner)).time_zone,
        "slots": [quiet_hours.format_slot(s) for s in ctx.quiet_hours.schedule(owner)],
    }


async def set_slots(ctx: Components, user: str, slots: list[str]) -> dict[str, object]:
    """Replace the schedule with `slots`, one slot each as `mon-fri 18:00-08:00 dnd Off work`."""
    owner = await existing_username(ctx, user)
    parsed = []
    for number, line in enumerate(slots, 1):
        try:
            parsed.append(quiet_hours.parse_slot(line))
        except StanzaError as error:
            raise StanzaError("bad-request", f"Slot {number}: {error.text}") from None
    await ctx.quiet_hours.set_schedule(owner, parsed)
    return await show(ctx, user)


async def clear(ctx: Components, user: str) -> dict[str, object]:
    return await set_slots(ctx, user, [])


COMMANDS = {
    "quiet-hours.show": Command(show),
    "quiet-hours.set": Command(set_slots),
    "quiet-hours.clear": Command(clear),
}
