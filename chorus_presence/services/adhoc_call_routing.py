"""Devices and call routing as an ad-hoc command, the seed guide's Settings -> Devices page for
stock clients. Every change goes through the call routing service, like the IQ extension and
the CLI.

One submission is enough: the default device and the device of each state may name devices
added in the same form, so their choices are open (XEP-0122) and checked here against the
devices submitted. Devices are written `KIND:NAME`, the command line's syntax.
"""

from __future__ import annotations

from chorus_presence.services.adhoc import AdhocService
from chorus_presence.services.call_routing import (
    KINDS,
    NO_DEVICE,
    STATES,
    CallRoutingService,
    Device,
    RoutingConfig,
    parse_device,
)
from chorus_presence.xmpp.errors import StanzaError
from chorus_presence.xmpp.forms import Field, FieldValue, Form, Option
from chorus_presence.xmpp.stanza import Element

NODE = "urn:chorus:cmd:devices"
TITLE = "Devices and call routing"
SWITCH_LABEL = "I want my presence to determine how I receive calls from other people"
DEVICES_LABEL = "Devices, one per line as KIND:NAME"
DEVICES_DESC = (
    f"KIND is one of {', '.join(KINDS)}, such as desk-phone:Desk or mobile:My phone."
    " The choices below may name devices added here."
)
DEFAULT_LABEL = "Default device"
STATE_LABELS = {
    "available": "Available",
    "away": "Away",
    "brb": "Be Right Back",
    "dnd": "Do Not Disturb",
    "busy": "Busy",
    "in-meeting": "In Meeting",
    "offline": "Not logged in",
}


def _state_label(state: str) -> str:
    return f"When my presence is {STATE_LABELS[state]}"


class DevicesCommand:
    def __init__(self, call_routing: CallRoutingService) -> None:
        self._call_routing = call_routing

    async def start(self, owner: str) -> Element:
        config = await self._call_routing.config(owner)
        devices = tuple(Option(d.name, f"{d.name} ({d.kind})") for d in config.devices)
        fields = [
            Field(
                "text-multi",
                "devices",
                DEVICES_LABEL,
                value="\n".join(f"{d.kind}:{d.name}" for d in config.devices) or None,
                desc=DEVICES_DESC,
            ),
            Field("boolean", "enabled", SWITCH_LABEL, value=config.enabled),
            Field(
                "list-single",
                "default",
                DEFAULT_LABEL,
                value=config.default_device or NO_DEVICE,
                options=(Option(NO_DEVICE, "None"), *devices),
                open=True,
            ),
        ]
        fields.extend(
            Field(
                "list-single",
                f"map-{state}",
                _state_label(state),
                value=config.mapping.get(state, NO_DEVICE),
                options=(Option(NO_DEVICE, DEFAULT_LABEL), *devices),
                open=True,
            )
            for state in STATES
        )
        return Form(tuple(fields), title=TITLE).to_element()

    async def submit(self, owner: str, values: dict[str, FieldValue]) -> str:
        current = await self._call_routing.config(owner)
        devices = current.devices
        if "devices" in values:
            devices = tuple(_parse_devices(str(values["devices"])))
        names = {device.name for device in devices}

        def chosen(var: str, label: str, saved: str | None) -> str | None:
            value = str(values.get(var, saved or NO_DEVICE))
            if value == NO_DEVICE:
                return None
            if value in names:
                return value
            # The saved choice of a device this same form removes goes with the device.
            if value == saved:
                return None
            raise StanzaError("bad-request", f"{label}: {value!r} is not one of the devices")

        default = chosen("default", DEFAULT_LABEL, current.default_device)
        mapping = {}
        for state in STATES:
            device = chosen(f"map-{state}", _state_label(state), current.mapping.get(state))
            if device is not None:
                mapping[state] = device
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
        try:
            devices.append(parse_device(line))
        except ValueError as exc:
            raise StanzaError("bad-request", f"Devices, line {number}: {exc}") from exc
    return devices


def register(adhoc: AdhocService, call_routing: CallRoutingService) -> None:
    adhoc.register(NODE, TITLE, DevicesCommand(call_routing))
