"""Admin commands on call routing: a user's devices, switch, default and state map; which
device rings now; and the permission to ask that of any user (a PBX's account).

The call routing service validates every configuration; these commands only translate it.
"""

from __future__ import annotations

from chorus_presence.admin.common import Command, existing_username
from chorus_presence.server.components import Components
from chorus_presence.services.call_routing import Device, RoutingConfig


async def show(ctx: Components, user: str) -> dict[str, object]:
    owner = await existing_username(ctx, user)
    config = await ctx.call_routing.config(owner)
    return {
        "user": f"{owner}@{ctx.domain}",
        **_config(config),
        "permission": await ctx.call_routing.has_permission(owner),
    }


async def set_(
    ctx: Components,
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
    await ctx.call_routing.replace(await existing_username(ctx, user), config)
    return await show(ctx, user)


async def route(ctx: Components, user: str) -> dict[str, object]:
    answer = await ctx.call_routing.route(await existing_username(ctx, user))
    device = answer.device
    return {
        "user": f"{answer.user}@{ctx.domain}",
        "state": answer.state,
        "device": device.name if device is not None else None,
        "kind": device.kind if device is not None else None,
    }


async def grant(ctx: Components, user: str) -> dict[str, object]:
    await ctx.call_routing.set_permission(await existing_username(ctx, user), True)
    return await show(ctx, user)


async def revoke(ctx: Components, user: str) -> dict[str, object]:
    await ctx.call_routing.set_permission(await existing_username(ctx, user), False)
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
