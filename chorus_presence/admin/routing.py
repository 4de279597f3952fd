"""Admin commands on call routing: a user's devices, switch, default and state map; which
device rings now; and the permission to ask that of any user (a PBX's account).

The routing service validates every configuration; these commands only translate it.
"""

from __future__ import annotations

from chorus_presence.admin.common import Command, existing_username
from chorus_presence.server.context import ServerContext
from chorus_presence.services.routing import Device, RoutingConfig
from chorus_presence.storage.settings import SettingsRepository


async def show(ctx: ServerContext, user: str) -> dict[str, object]:
    owner = await existing_username(ctx, user)
    config = await ctx.routing.config(owner)
    settings = await SettingsRepository(ctx.database).get(owner)
    return {
        "user": f"{owner}@{ctx.domain}",
        **_config(config),
        "permission": settings.routing_permission,
    }


async def set_(
    ctx: ServerContext,
    user: str,
    devices: list[dict[str, str]],
    mapping: dict[str, str],
    enabled: bool,
    default: str | None = None,
) -> dict[str, object]:
    """Replace the user's whole routing configuration."""
    config = RoutingConfig(
        enabled=enabled,
        default_device=default,
        devices=tuple(Device(device["name"], device["kind"]) for device in devices),
        mapping=dict(mapping),
    )
    await ctx.routing.replace(await existing_username(ctx, user), config)
    return await show(ctx, user)


async def route(ctx: ServerContext, user: str) -> dict[str, object]:
    answer = await ctx.routing.route(await existing_username(ctx, user))
    device = answer.device
    return {
        "user": f"{answer.user}@{ctx.domain}",
        "state": answer.state,
        "device": device.name if device is not None else None,
        "kind": device.kind if device is not None else None,
    }


async def grant(ctx: ServerContext, user: str) -> dict[str, object]:
    await ctx.routing.set_permission(await existing_username(ctx, user), True)
    return await show(ctx, user)


async def revoke(ctx: ServerContext, user: str) -> dict[str, object]:
    await ctx.routing.set_permission(await existing_username(ctx, user), False)
    return await show(ctx, user)


def _config(config: RoutingConfig) -> dict[str, object]:
    return {
        "enabled": config.enabled,
        "default": config.default_device,
        "devices": [{"name": device.name, "kind": device.kind} for device in config.devices],
        "map": dict(config.mapping),
    }


COMMANDS = {
    "routing.show": Command(show),
    "routing.set": Command(set_),
    "routing.route": Command(route),
    "routing.grant": Command(grant),
    "routing.revoke": Command(revoke),
}
