"""Settings -> Devices as an ad-hoc command, driven as a stock client does."""

from __future__ import annotations

from tests.integration.harness import ADHOC, Harness, complete, execute, fields, online, options

DEVICES = "urn:chorus:cmd:devices"


async def test_devices_command_sets_routing(harness: Harness) -> None:
    await harness.add_user("alice")
    alice, _ = await online(harness, "alice", plugins=ADHOC)
    command = await execute(alice, DEVICES)
    assert fields(command)["enabled"]["value"] is False
    note = await complete(
        alice,
        command,
        {"devices": "desk-phone: Desk\nvoicemail: Voicemail", "enabled": True},
    )
    assert "2 device(s)" in note

    # Second run: the new devices can now be chosen per presence state.
    command = await execute(alice, DEVICES)
    assert set(options(fields(command)["map-dnd"])) == {"-", "Desk", "Voicemail"}
    await complete(alice, command, {"default": "Desk", "map-dnd": "Voicemail"})

    config = await harness.ctx.call_routing.config("alice")
    assert config.enabled and config.default_device == "Desk"
    assert config.mapping == {"dnd": "Voicemail"}
    answer = await harness.ctx.call_routing.route("alice")
    assert answer.device is not None and answer.device.name == "Desk"
