"""Devices and call routing as an ad-hoc command, the seed guide's Settings -> Devices page for
stock clients. Every change goes through the call routing service, like the IQ extension and
the CLI."""

from __future__ import annotations

from chorus_presence.services.adhoc import AdhocService
from chorus_presence.services.call_routing import (
    KINDS,
    STATES,
    CallRoutingService,
    Device,
    RoutingConfig,
)
from chorus_presence.xmpp.errors import StanzaError
from chorus_presence.xmpp.forms import Field, FieldValue, Form, Option
from chorus_presence.xmpp.stanza import Element

NODE = "urn:chorus:cmd:devices"
SWITCH_LABEL = "I want my presence to determine how I receive calls from other people"
STATE_LABELS = {
    "available": "Available",
    "away": "Away",
    "brb": "Be Right Back",
    "dnd": "Do Not Disturb",
    "busy": "Busy",
    "in-meeting": "In Meeting",
    "offline": "Not logged in",
}
DEFAULT = ""


class DevicesCommand:
    def __init__(self, call_routing: CallRoutingService) -> None:
        self._call_routing = call_routing

    async def start(self, owner: str) -> Element:
        config = await self._call_routing.config(owner)
        choices = (
            Option(DEFAULT, "Default device"),
            *(Option(d.name, f"{d.name} ({d.kind})") for d in config.devices),
        )
        fields = [
            Field(
                "text-multi",
                "devices",
                "Devices, one per line as kind: name",
                value="\n".join(f"{d.kind}: {d.name}" for d in config.devices) or None,
                desc=f"Kinds: {', '.join(KINDS)}. New devices can be chosen below next time.",
            ),
            Field("boolean", "enabled", SWITCH_LABEL, value=config.enabled),
            Field(
                "list-single",
                "default",
                "Default device",
                value=config.default_device or DEFAULT,
                options=(Option(DEFAULT, "None"), *choices[1:]),
            ),
        ]
        fields.extend(
            Field(
                "list-single",
                f"map-{state}",
                f"When my presence is {STATE_LABELS[state]}",
                value=config.mapping.get(state, DEFAULT),
                options=choices,
            )
            for state in STATES
        )
        return Form(tuple(fields), title="Devices and call routing").to_element()

    async def submit(self, owner: str, values: dict[str, FieldValue]) -> str:
        current = await self._call_routing.config(owner)
        devices = current.devices
        if "devices" in values:
            devices = tuple(_parse_devices(str(values["devices"])))
        mapping = dict(current.mapping)
        for state in STATES:
            key = f"map-{state}"
            if key in values:
                if values[key] == DEFAULT:
                    mapping.pop(state, None)
                else:
                    mapping[state] = str(values[key])
        names = {device.name for device in devices}
        # Mappings to devices removed in this same form go with them.
        mapping = {state: name for state, name in mapping.items() if name in names}
        default = str(values.get("default", current.default_device or DEFAULT)) or None
        if default not in names:
            default = None
        config = RoutingConfig(
            enabled=bool(values.get("enabled", current.enabled)),
            default_device=default,
            devices=devices,
            mapping=mapping,
        )
        await self._call_routing.replace(owner, config)
        switch = "on" if config.enabled else "off"
        return f"Saved {len(devices)} device(s); presence decides calls: {switch}."


def _parse_devices(text: str) -> list[Device]:
    devices = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        kind, separator, name = line.partition(":")
        if not separator or not name.strip():
            raise StanzaError("bad-request", f"Device line {number}: write it as kind: name")
        devices.append(Device(name.strip(), kind.strip()))
    return devices


def register(adhoc: AdhocService, call_routing: CallRoutingService) -> None:
    adhoc.register(NODE, "Devices and call routing", DevicesCommand(call_routing))
