"""The call routing rule, its validation and its permission rule, on a real SQLite file.

The presence service is stood in for by a dict of effective states: the rule only asks it a
bare JID's state. Blocks are the stanza filter's business, tested with the block list.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from chorus_presence.core.bus import Bus
from chorus_presence.services.accounts import AccountService
from chorus_presence.services.call_routing import (
    STATES,
    CallRoutingService,
    Device,
    RouteAnswer,
    RoutingConfig,
)
from chorus_presence.storage.accounts import AccountRepository
from chorus_presence.storage.database import Database
from chorus_presence.storage.routing import RoutingRepository
from chorus_presence.storage.settings import SettingsRepository
from chorus_presence.storage.visibility import PresenceBlockRepository
from chorus_presence.xmpp.errors import StanzaError
from chorus_presence.xmpp.jid import JID

DOMAIN = "example.com"
ALICE = JID("alice", DOMAIN)
DESK = Device("Desk phone", "desk-phone")
MOBILE = Device("Mobile", "mobile")
VOICEMAIL = Device("Voicemail", "voicemail")
DEVICES = (DESK, MOBILE, VOICEMAIL)


@dataclass
class World:
    service: CallRoutingService
    states: dict[JID, str] = field(default_factory=dict)


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    db = await Database.open(tmp_path / "chorus.db")
    accounts = AccountService(AccountRepository(db, DOMAIN), Bus(), domain=DOMAIN, iterations=4096)
    for name in ("alice", "bob", "pbx", "boss"):
        await accounts.create(name, "a long enough password")
    states: dict[JID, str] = {}
    service = CallRoutingService(
        SettingsRepository(db),
        RoutingRepository(db),
        accounts,
        PresenceBlockRepository(db),
        domain=DOMAIN,
        admins=(f"boss@{DOMAIN}",),
        state_of=lambda jid: states.get(jid, "offline"),
        breaks_through=no_one_breaks_through,
    )
    yield World(service, states)
    await db.close()


async def no_one_breaks_through(owner: str, caller: JID) -> bool:
    """The priority list is tested with the real service, in the integration tests."""
    return False


def config(
    *, enabled: bool = True, default: str | None = "Desk phone", **mapping: str
) -> RoutingConfig:
    """Alice's three devices; keyword arguments map states (in_meeting for in-meeting)."""
    return RoutingConfig(
        enabled, default, DEVICES, {k.replace("_", "-"): v for k, v in mapping.items()}
    )


async def test_a_new_user_has_nothing_to_ring(world: World) -> None:
    assert await world.service.config("alice") == RoutingConfig(False, None, (), {})
    assert await world.service.route("alice") == RouteAnswer("alice", "offline", None)


async def test_replace_stores_the_whole_configuration(world: World) -> None:
    sent = config(offline="Mobile", dnd="Voicemail", available="Desk phone")
    stored = await world.service.replace("alice", sent)
    # Devices keep the user's order; the map comes back in the order of the states.
    assert stored == RoutingConfig(
        True,
        "Desk phone",
        DEVICES,
        {"available": "Desk phone", "dnd": "Voicemail", "offline": "Mobile"},
    )
    assert list(stored.mapping) == ["available", "dnd", "offline"]
    assert await world.service.config("alice") == stored

    smaller = RoutingConfig(False, None, (MOBILE,), {"busy": "Mobile"})
    assert await world.service.replace("alice", smaller) == smaller
    assert await world.service.config("bob") == RoutingConfig(False, None, (), {})


async def test_switch_off_rings_the_default_whatever_the_state(world: World) -> None:
    await world.service.replace("alice", config(enabled=False, dnd="Voicemail"))
    world.states[ALICE] = "dnd"
    assert await world.service.route("alice") == RouteAnswer("alice", "dnd", DESK)


@pytest.mark.parametrize(
    "state,device",
    [
        ("available", DESK),
        ("away", MOBILE),
        ("brb", MOBILE),
        ("dnd", VOICEMAIL),
        ("busy", VOICEMAIL),
        ("in-meeting", VOICEMAIL),
        ("offline", VOICEMAIL),
    ],
)
async def test_switch_on_rings_the_device_of_the_state(
    world: World, state: str, device: Device
) -> None:
    await world.service.replace(
        "alice",
        config(
            default="Voicemail",
            available="Desk phone",
            away="Mobile",
            brb="Mobile",
            dnd="Voicemail",
            busy="Voicemail",
        ),
    )
    if state != "offline":
        world.states[ALICE] = state
    assert await world.service.route("alice") == RouteAnswer("alice", state, device)


async def test_an_unmapped_state_falls_back_to_the_default_or_nothing(world: World) -> None:
    world.states[ALICE] = "away"
    await world.service.replace("alice", config(dnd="Voicemail"))
    assert (await world.service.route("alice")).device == DESK
    await world.service.replace("alice", config(default=None, dnd="Voicemail"))
    assert await world.service.route("alice") == RouteAnswer("alice", "away", None)


async def test_offline_has_its_own_device(world: World) -> None:
    await world.service.replace("alice", config(offline="Mobile", available="Desk phone"))
    assert await world.service.route("alice") == RouteAnswer("alice", "offline", MOBILE)
    world.states[ALICE] = "available"
    assert await world.service.route("alice") == RouteAnswer("alice", "available", DESK)


@pytest.mark.parametrize(
    "bad,condition",
    [
        (RoutingConfig(True, None, (Device("Fax", "fax"),), {}), "bad-request"),
        (RoutingConfig(True, None, (DESK, Device("Desk phone", "mobile")), {}), "bad-request"),
        (RoutingConfig(True, None, (Device("", "mobile"),), {}), "not-acceptable"),
        (RoutingConfig(True, None, (Device("x" * 65, "mobile"),), {}), "not-acceptable"),
        (
            RoutingConfig(True, None, tuple(Device(f"d{i}", "other") for i in range(33)), {}),
            "not-acceptable",
        ),
        (RoutingConfig(True, "Pager", DEVICES, {}), "not-acceptable"),
        (RoutingConfig(True, None, DEVICES, {"asleep": "Mobile"}), "bad-request"),
        (RoutingConfig(True, None, DEVICES, {"dnd": "Pager"}), "not-acceptable"),
    ],
)
async def test_invalid_configurations_are_refused_and_change_nothing(
    world: World, bad: RoutingConfig, condition: str
) -> None:
    before = await world.service.replace("alice", config(dnd="Voicemail"))
    with pytest.raises(StanzaError) as caught:
        await world.service.replace("alice", bad)
    assert caught.value.condition == condition
    assert await world.service.config("alice") == before


async def test_limits_are_inclusive(world: World) -> None:
    longest = Device("x" * 64, "other")
    many = (longest, *(Device(f"d{i}", "other") for i in range(31)))
    full_map = dict.fromkeys(STATES, longest.name)
    stored = await world.service.replace("alice", RoutingConfig(True, "d0", many, full_map))
    assert stored.devices == many and stored.mapping == full_map


async def test_usernames_are_normalised_and_unknown_users_not_found(world: World) -> None:
    await world.service.replace("Alice", config(dnd="Voicemail"))
    assert (await world.service.config("alice")).mapping == {"dnd": "Voicemail"}
    for name in ("nobody", "not@valid"):
        with pytest.raises(StanzaError) as caught:
            await world.service.route(name)
        assert caught.value.condition == "item-not-found"
        with pytest.raises(StanzaError) as caught:
            await world.service.replace(name, config())
        assert caught.value.condition == "item-not-found"
        with pytest.raises(StanzaError) as caught:
            await world.service.set_permission(name, True)
        assert caught.value.condition == "item-not-found"


async def test_who_may_ask(world: World) -> None:
    service = world.service
    bob, pbx, boss = (JID(name, DOMAIN, "res") for name in ("bob", "pbx", "boss"))
    assert await service.may_route(JID("alice", DOMAIN, "phone"), "alice")
    assert await service.may_route(boss, "alice")
    assert not await service.may_route(bob, "alice")
    assert not await service.may_route(pbx, "alice")

    await service.set_permission("pbx", True)
    assert await service.may_route(pbx, "alice")
    # Unknown users are the route query's business: it answers item-not-found.
    assert await service.may_route(pbx, "nobody")
    assert not await service.may_route(bob, "nobody")
    await service.set_permission("pbx", False)
    assert not await service.may_route(pbx, "alice")
