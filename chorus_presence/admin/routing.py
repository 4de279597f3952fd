"""Admin commands on call routing: a user's devices, switch, default and state map; which
device rings now; and the permission to ask that of any user (a PBX's account).

The call routing service validates every configuration; these commands only translate it.
Setting changes only the settings named, so that switching routing on keeps the devices.
"""

from __future__ import annotations

from dataclasses import replace

from chorus_presence.admin.common import AdminError, Command, existing_username, is_localpart
from chorus_presence.server.components import Components
from chorus_presence.services.call_routing import Device, RoutingConfig
from chorus_presence.xmpp.jid import JID, JIDError

SETTINGS = ("enabled", "default", "devices", "map")


async def show(ctx: Components, user: str) -> dict[str, object]:
    owner = await existing_username(ctx, user)
    config = await ctx.call_routing.config(owner)
    return {
        "user": f"{owner}@{ctx.domain}",
        **_config(config),
        "permission": await ctx.call_routing.has_permission(owner),
    }


async def set_(ctx: Components, user: str, **changes: object) -> dict[str, object]:
    """Change the settings given and keep the others: `enabled` (a boolean), `default` (a
    device's name, None for none), `devices` (the whole list, each {"name", "kind"}) and `map`
    (state -> a device's name, or None to unmap the state; other states keep theirs)."""
    unknown = sorted(set(changes) - set(SETTINGS))
    if unknown:
        raise AdminError(
            f"Unknown routing setting {unknown[0]!r}: the settings are {', '.join(SETTINGS)}"
        )
    owner = await existing_username(ctx, user)
    config = await ctx.call_routing.config(owner)
    if "enabled" in changes:
        config = replace(config, enabled=bool(changes["enabled"]))
    if "default" in changes:
        config = replace(config, default_device=_name(changes["default"]))
    if "devices" in changes:
        config = replace(config, devices=_devices(changes["devices"]))
    if "map" in changes:
        config = replace(config, mapping=_mapping(config.mapping, changes["map"]))
    await ctx.call_routing.replace(owner, config)
    return await show(ctx, user)


async def route(ctx: Components, user: str, caller: str | None = None) -> dict[str, object]:
    """The device ringing now, for a call from `caller` (a JID or a localpart) when given."""
    owner = await existing_username(ctx, user)
    answer = await ctx.call_routing.route(owner, _caller(ctx, caller))
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


def _caller(ctx: Components, text: str | None) -> JID | None:
    if text is None:
        return None
    if is_localpart(text, ctx.domain):
        text = f"{text}@{ctx.domain}"
    try:
        return JID.parse(text).bare
    except JIDError:
        raise AdminError(f"The caller {text!r} is not a valid JID") from None


def _name(value: object) -> str | None:
    if value is not None and not isinstance(value, str):
        raise AdminError(f"A device is named by a string, not {value!r}")
    return value


def _devices(value: object) -> tuple[Device, ...]:
    if not isinstance(value, list):
        raise AdminError(f"The devices are a list, not {value!r}")
    devices = []
    for device in value:
        if not isinstance(device, dict) or not {"name", "kind"} <= device.keys():
            raise AdminError(f"A device is {{'name': ..., 'kind': ...}}, not {device!r}")
        devices.append(Device(str(device["name"]), str(device["kind"])))
    return tuple(devices)


def _mapping(current: dict[str, str], value: object) -> dict[str, str]:
    if not isinstance(value, dict):
        raise AdminError(f"The map is an object of state -> device, not {value!r}")
    mapping = dict(current)
    for state, name in value.items():
        device = _name(name)
        if device is None:
            mapping.pop(state, None)
        else:
            mapping[state] = device
    return mapping


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
