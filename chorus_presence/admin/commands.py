"""The registry of admin commands, by name, and running one: its arguments checked against
the function, the action logged once (never a password), then the function awaited."""

from __future__ import annotations

import inspect
import logging
from typing import Any

from chorus_presence.admin import (
    presence,
    priority,
    quiet_hours,
    rosters,
    routing,
    sign_ins,
    users,
    visibility,
)
from chorus_presence.admin.common import AdminError, Command
from chorus_presence.server.components import Components

log = logging.getLogger(__name__)

COMMANDS: dict[str, Command] = {
    **users.COMMANDS,
    **rosters.COMMANDS,
    **presence.COMMANDS,
    **visibility.COMMANDS,
    **routing.COMMANDS,
    **priority.COMMANDS,
    **quiet_hours.COMMANDS,
    **sign_ins.COMMANDS,
}
SECRET_ARGUMENTS = frozenset({"password"})


def lookup(name: str) -> Command:
    command = COMMANDS.get(name)
    if command is None:
        raise AdminError(f"Unknown admin command {name!r}")
    return command


async def execute(ctx: Components, name: str, args: dict[str, Any]) -> Any:
    """Run command `name`; raises AdminError or StanzaError when the request is refused."""
    command = lookup(name)
    try:
        bound = inspect.signature(command.run).bind(ctx, **args)
    except TypeError as error:
        raise AdminError(f"Bad arguments for {name}: {error}") from None
    shown = {key: value for key, value in args.items() if key not in SECRET_ARGUMENTS}
    log.info("admin: %s %s", name, shown)
    return await command.run(*bound.args, **bound.kwargs)
