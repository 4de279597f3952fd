"""Call routing (DESIGN section 4): which of a user's devices rings now, decided by presence.
Not to be confused with the stanza router in `core.router`, which delivers XMPP stanzas.

This module owns the routing rule, the validation of a user's devices, switch, default device
and state -> device map, the rule of who may ask which device rings for whom, and the
`urn:chorus:routing:0` IQ extension. The admin command line and the ad-hoc commands call
`CallRoutingService` directly: its methods take usernames and raise `StanzaError` for
refusals. Blocks (XEP-0191) are the stanza filter's business: a blocked asker is refused before
a route query gets here, with the answer a stranger gets. The presence blocked list is this
module's: the answer reveals the user's state, so whoever the user keeps from their presence is
refused, admins and permitted accounts included. A route query may name the caller: one on
the user's priority list (`services.priority_access`) gets the device of `available` while the
user is in Do Not Disturb, Busy or In Meeting.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from chorus_presence.core import topics
from chorus_presence.core.bus import Bus
from chorus_presence.core.events import IqRequest
from chorus_presence.services import rich_states
from chorus_presence.services.accounts import AccountService
from chorus_presence.services.priority_access import QUIET_STATES
from chorus_presence.storage.interfaces import PresenceBlockStore, RoutingStore, SettingsStore
from chorus_presence.storage.routing import StoredRouting
from chorus_presence.xmpp import namespaces as ns
from chorus_presence.xmpp.errors import StanzaError
from chorus_presence.xmpp.jid import JID, JIDError
from chorus_presence.xmpp.stanza import Element, child, element, local_name

ROUTING = ns.qname(ns.CHORUS_ROUTING, "routing")
ROUTE = ns.qname(ns.CHORUS_ROUTING, "route")
DEVICE = ns.qname(ns.CHORUS_ROUTING, "device")
MAP = ns.qname(ns.CHORUS_ROUTING, "map")

KINDS = ("desk-phone", "mobile", "softphone", "voicemail", "other")
# Every state a user can be in, in the order the map is shown; 'offline' is "not logged in".
STATES = (*rich_states.STATES, rich_states.OFFLINE)
MAX_NAME_CHARS = 64
# The forms' choice of no device (a default device, a state's device), so never a device's name.
NO_DEVICE = "-"
MAX_DEVICES = 32
BOOLEANS = {"true": True, "1": True, "false": False, "0": False}

StateOf = Callable[[JID], str]
# Whether a caller (a JID) is on a user's (a username's) priority list.
BreaksThrough = Callable[[str, JID], Awaitable[bool]]


@dataclass(frozen=True)
class Device:
    name: str
    kind: str


def parse_device(text: str) -> Device:
    """One device as the command line and the ad-hoc form both write it: `KIND:NAME`.

    Kinds have no colon, so the first one ends the kind and the name may hold colons.
    Raises ValueError with a message naming what was wrong.
    """
    kind, colon, name = text.partition(":")
    kind, name = kind.strip(), name.strip()
    if not colon or not kind or not name:
        raise ValueError(f"Write a device as KIND:NAME, such as desk-phone:Desk, not {text!r}")
    if kind not in KINDS:
        raise ValueError(f"Device kind {kind!r} is not one of {', '.join(KINDS)}")
    return Device(name, kind)


@dataclass(frozen=True)
class RoutingConfig:
    enabled: bool
    default_device: str | None
    devices: tuple[Device, ...]
    # state -> device name
    mapping: dict[str, str]


@dataclass(frozen=True)
class RouteAnswer:
    """`user` is the username; `device` is None when nothing rings."""

    user: str
    state: str
    device: Device | None


class CallRoutingService:
    """The routing rule over stored configurations and the live effective state.

    `state_of` gives a bare JID's effective state ('offline' with no resource online); the
    server passes the presence service's. `breaks_through` says whether a caller is on a
    user's priority list: for such a caller a user in DND is routed as if available.
    """

    def __init__(
        self,
        settings: SettingsStore,
        repo: RoutingStore,
        accounts: AccountService,
        presence_blocks: PresenceBlockStore,
        *,
        domain: str,
        admins: Iterable[str],
        state_of: StateOf,
        breaks_through: BreaksThrough,
    ) -> None:
        self._settings = settings
        self._repo = repo
        self._accounts = accounts
        self._presence_blocks = presence_blocks
        self._domain = domain
        self._admins = frozenset(admins)
        self._state_of = state_of
        self._breaks_through = breaks_through

    def subscribe(self, bus: Bus) -> None:
        bus.on(topics.iq("get", "bare", ROUTING), self._get_config)
        bus.on(topics.iq("set", "bare", ROUTING), self._set_config)
        bus.on(topics.iq("get", "bare", ROUTE), self._route)
        bus.on(topics.DISCO_FEATURES, lambda event: event.features.add(ns.CHORUS_ROUTING))

    async def config(self, owner: str) -> RoutingConfig:
        return await self._load(await self._existing(owner))

    async def replace(self, owner: str, config: RoutingConfig) -> RoutingConfig:
        """Validate `config` and make it the owner's whole configuration, in one transaction."""
        owner = await self._existing(owner)
        routing = _validated(config)
        await self._repo.replace(
            owner,
            enabled=config.enabled,
            default_device=config.default_device,
            routing=routing,
        )
        return await self._load(owner)

    async def route(self, owner: str, caller: JID | None = None) -> RouteAnswer:
        """The device that rings for `owner` now, for a call from `caller` if known: one on
        the owner's priority list gets the device of `available` in a DND state. Raises
        item-not-found for an unknown user."""
        owner = await self._existing(owner)
        config = await self._load(owner)
        state = self._state_of(JID(owner, self._domain))
        routed = state
        if (
            caller is not None
            and config.enabled
            and state in QUIET_STATES
            and await self._breaks_through(owner, caller)
        ):
            routed = "available"
        name = config.mapping.get(routed) if config.enabled else None
        if name is None:
            name = config.default_device
        devices = {device.name: device for device in config.devices}
        # A default saved by a replace that committed between the two reads in _load may
        # name a device this snapshot lacks; then nothing rings rather than a stale device.
        return RouteAnswer(owner, state, devices.get(name) if name is not None else None)

    async def may_route(self, requester: JID, owner: str) -> bool:
        """The user, admins and accounts granted the permission may ask (XEP-0191 blocks are
        filtered before, the presence blocked list by `_route`: the answer reveals the user's
        presence state)."""
        asker = requester.bare
        try:
            subject: JID | None = JID(owner, self._domain)
        except JIDError:
            subject = None
        if asker == subject:
            return True
        if str(asker) in self._admins:
            return True
        if asker.domain != self._domain or asker.local is None:
            return False
        return (await self._settings.get(asker.local)).routing_permission

    async def has_permission(self, owner: str) -> bool:
        return (await self._settings.get(await self._existing(owner))).routing_permission

    async def set_permission(self, owner: str, allowed: bool) -> None:
        """Grant or withdraw the right to ask the route of any user (a PBX or its bot)."""
        await self._settings.update(await self._existing(owner), routing_permission=allowed)

    # The IQ extension

    async def _get_config(self, request: IqRequest) -> Element:
        return request.reply(config_element(await self.config(request.own_account("routing"))))

    async def _set_config(self, request: IqRequest) -> Element:
        await self.replace(request.own_account("routing"), config_from(request.payload))
        return request.reply()

    async def _route(self, request: IqRequest) -> Element:
        assert request.sender is not None
        subject = request.target or request.user
        assert subject.local is not None
        # Permission first: to anyone not allowed, unknown users look like everyone else.
        if not await self.may_route(request.sender, subject.local):
            raise StanzaError("forbidden", f"You may not ask how {subject}'s calls are routed")
        if await self._presence_blocks.contains(subject.local, str(request.sender.bare)):
            raise StanzaError(
                "forbidden",
                f"{subject} keeps you from seeing their presence, which the route would reveal",
            )
        answer = await self.route(subject.local, _caller(request.payload))
        node = element(
            "route",
            {"jid": str(JID(answer.user, self._domain)), "state": answer.state},
            namespace=ns.CHORUS_ROUTING,
        )
        if answer.device is not None:
            node.set("device", answer.device.name)
            node.set("kind", answer.device.kind)
        return request.reply(node)

    async def _existing(self, owner: str) -> str:
        """The canonical username of an existing account."""
        try:
            username = JID(owner, self._domain).local
        except JIDError:
            username = None
        if username is None or not await self._accounts.exists(username):
            raise StanzaError("item-not-found", f"No such user {owner}@{self._domain}")
        return username

    async def _load(self, owner: str) -> RoutingConfig:
        settings = await self._settings.get(owner)
        stored = await self._repo.load(owner)
        return RoutingConfig(
            enabled=settings.routing_enabled,
            default_device=settings.default_device,
            devices=tuple(Device(name, kind) for name, kind in stored.devices),
            mapping={state: stored.mapping[state] for state in STATES if state in stored.mapping},
        )


def _validated(config: RoutingConfig) -> StoredRouting:
    """bad-request for what the protocol does not know (kinds, states, repeats), not-acceptable
    for what breaks a limit or names a device that is not there."""
    if len(config.devices) > MAX_DEVICES:
        raise StanzaError(
            "not-acceptable", f"At most {MAX_DEVICES} devices, not {len(config.devices)}"
        )
    names: set[str] = set()
    for device in config.devices:
        if device.kind not in KINDS:
            raise StanzaError(
                "bad-request", f"Device kind {device.kind!r} is not one of {', '.join(KINDS)}"
            )
        if not 1 <= len(device.name) <= MAX_NAME_CHARS:
            raise StanzaError(
                "not-acceptable",
                f"Device name {device.name!r} is not 1 to {MAX_NAME_CHARS} characters",
            )
        if device.name == NO_DEVICE:
            raise StanzaError(
                "not-acceptable",
                f"{NO_DEVICE!r} cannot be a device name: the forms use it to choose no device",
            )
        if device.name in names:
            raise StanzaError("bad-request", f"Two devices are named {device.name!r}")
        names.add(device.name)
    if config.default_device is not None and config.default_device not in names:
        raise StanzaError(
            "not-acceptable",
            f"The default device {config.default_device!r} is not one of the devices",
        )
    for state, name in config.mapping.items():
        if state not in STATES:
            raise StanzaError(
                "bad-request", f"{state!r} is not a state: the states are {', '.join(STATES)}"
            )
        if name not in names:
            raise StanzaError(
                "not-acceptable", f"The device {name!r} for {state} is not one of the devices"
            )
    return StoredRouting(
        tuple((device.name, device.kind) for device in config.devices), dict(config.mapping)
    )


def config_element(config: RoutingConfig) -> Element:
    node = element(
        "routing",
        {"enabled": "true" if config.enabled else "false"},
        namespace=ns.CHORUS_ROUTING,
    )
    if config.default_device is not None:
        node.set("default", config.default_device)
    for device in config.devices:
        child(node, "device", {"name": device.name, "kind": device.kind})
    for state, name in config.mapping.items():
        child(node, "map", {"state": state, "device": name})
    return node


def config_from(node: Element) -> RoutingConfig:
    """The configuration a client sent; only its shape is checked here, the rest by replace."""
    enabled = BOOLEANS.get(node.get("enabled", "false"))
    if enabled is None:
        raise StanzaError("bad-request", "'enabled' is true or false")
    devices: list[Device] = []
    mapping: dict[str, str] = {}
    for item in node:
        if item.tag == DEVICE:
            devices.append(Device(_required(item, "name"), _required(item, "kind")))
        elif item.tag == MAP:
            state = _required(item, "state")
            if state in mapping:
                raise StanzaError("bad-request", f"The state {state} is mapped twice")
            mapping[state] = _required(item, "device")
        else:
            raise StanzaError("bad-request", "Only <device/> and <map/> belong in <routing/>")
    return RoutingConfig(enabled, node.get("default"), tuple(devices), mapping)


def _required(node: Element, name: str) -> str:
    value = node.get(name)
    if value is None:
        raise StanzaError("bad-request", f"<{local_name(node)}/> needs '{name}'")
    return value


def _caller(node: Element) -> JID | None:
    """The caller a route query names, as a bare JID; None when it names none."""
    text = node.get("caller")
    if text is None:
        return None
    try:
        return JID.parse(text).bare
    except JIDError as exc:
        raise StanzaError("jid-malformed", f"'{text}' is not a valid JID") from exc
