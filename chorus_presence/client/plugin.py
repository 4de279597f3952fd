"""A slixmpp plugin for the chorus-presence extensions (docs/protocol.md), for bots:

    xmpp.register_plugin("chorus", module="chorus_presence.client.plugin")
    pending = await xmpp.plugin["chorus"].pending()
    await xmpp.plugin["chorus"].accept(pending[0].jid)
    answer = await xmpp.plugin["chorus"].route("alice@example.com")
    await xmpp.plugin["chorus"].add_priority("bob@example.com")
    await xmpp.plugin["chorus"].set_name("Reception Bot")
    names = await xmpp.plugin["chorus"].names(["alice@example.com", "bob@example.com"])
    xmpp.plugin["chorus"].subscribe("carol@example.com", nick="Reception Bot")
    xmpp.add_event_handler("chorus_pending", lambda count: print(count, "pending"))

The `chorus_pending` event carries the number of pending requests (an int) each time the server
says it changed. Needs the `client` extra (slixmpp).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import ClassVar

from slixmpp import JID
from slixmpp.plugins.base import BasePlugin, register_plugin
from slixmpp.xmlstream import ET
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

PRESENCE = "urn:chorus:presence:0"
VISIBILITY = "urn:chorus:visibility:0"
ROUTING = "urn:chorus:routing:0"
NAMES = "urn:chorus:names:0"
DND = "urn:chorus:dnd:0"
VCARD4 = "urn:ietf:params:xml:ns:vcard-4.0"
NICK = "http://jabber.org/protocol/nick"
DELAY = "urn:xmpp:delay"
IDLE = "urn:xmpp:idle:1"
TIMEOUT = 30
PENDING_HANDLER = "chorus pending count"


@dataclass(frozen=True)
class Request:
    jid: str
    status: str | None = None
    # The nickname (XEP-0172) the request carried.
    nick: str | None = None


@dataclass(frozen=True)
class QuietSlot:
    """One slot of quiet hours: `days` such as `mon-fri`, local `start` and `end` (`HH:MM`)."""

    days: str
    start: str
    end: str
    state: str
    text: str | None = None


@dataclass(frozen=True)
class Visibility:
    policy: str
    away_when_offline: bool
    # Everyone else sees the user as not logged in.
    appear_offline: bool
    pending: list[Request]
    allowed: list[str]
    blocked: list[str]


@dataclass(frozen=True)
class Device:
    name: str
    kind: str


@dataclass(frozen=True)
class Routing:
    enabled: bool
    default: str | None
    devices: list[Device] = field(default_factory=list)
    mapping: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Route:
    jid: str
    state: str
    device: Device | None


class Chorus(BasePlugin):
    """The chorus-presence extensions: rich states, visibility settings, call routing, and
    display names (vCard4, XEP-0292) with the nickname of requests (XEP-0172)."""

    name = "chorus"
    description = "chorus-presence: states, visibility, call routing and display names"
    dependencies: ClassVar[set[str]] = set()

    def plugin_init(self) -> None:
        self.xmpp.register_handler(
            Callback(
                PENDING_HANDLER,
                MatchXPath(f"{{{self.xmpp.default_ns}}}message/{{{VISIBILITY}}}pending"),
                self._pending_pushed,
            )
        )

    def plugin_end(self) -> None:
        self.xmpp.remove_handler(PENDING_HANDLER)

    def _pending_pushed(self, message) -> None:
        """Raises `chorus_pending` with the count the server pushed."""
        # Only the server speaks for the account, from its bare JID: anyone else's message,
        # or one of the account's own resources', is not the count.
        if str(message["from"]) != self.xmpp.boundjid.bare:
            return
        # A copy kept while the connection was lost (XEP-0203 delay) is out of date.
        if message.xml.find(f"{{{DELAY}}}delay") is not None:
            return
        try:
            count = int(message.xml.find(f"{{{VISIBILITY}}}pending").get("count", ""))
        except ValueError:
            return
        self.xmpp.event("chorus_pending", count)

    # Presence states

    def send_state(
        self,
        state: str,
        status: str | None = None,
        priority: int | None = None,
        *,
        until: datetime | None = None,
        clear_after: str | None = None,
    ):
        """Set the user's presence state (available, away, brb, dnd, busy, in-meeting). The
        server reverts it to Available with no text at `until` (an aware datetime), or after
        `clear_after`: a duration such as "PT30M", or "today" or "this-week" (in the user's
        time zone). A presence sent later without either cancels it."""
        presence = self.xmpp.make_presence(pstatus=status, ppriority=priority)
        node = ET.SubElement(presence.xml, f"{{{PRESENCE}}}state")
        node.text = state
        if until is not None:
            node.set("until", until.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
        if clear_after is not None:
            node.set("for", clear_after)
        presence.send()

    @staticmethod
    def state_of(presence) -> str | None:
        """The exact state a received presence carries, if any."""
        node = presence.xml.find(f"{{{PRESENCE}}}state")
        return node.text if node is not None else None

    @staticmethod
    def until_of(presence) -> datetime | None:
        """When the state a received presence carries clears itself (UTC), if it does."""
        node = presence.xml.find(f"{{{PRESENCE}}}state")
        until = node.get("until") if node is not None else None
        return datetime.fromisoformat(until) if until else None

    async def time_zone(self) -> str:
        """The user's time zone (IANA name), in which "today" and "this-week" end."""
        node = await self._query("get", ET.Element(f"{{{PRESENCE}}}time-zone"))
        return node.get("name")

    async def set_time_zone(self, name: str) -> str:
        """Set the user's time zone; a name zoneinfo does not know raises IqError."""
        node = ET.Element(f"{{{PRESENCE}}}time-zone", {"name": name})
        return (await self._query("set", node)).get("name")

    async def quiet_hours(self) -> list[QuietSlot]:
        """The user's weekly quiet hours, in the user's time zone."""
        return _quiet_hours(await self._query("get", ET.Element(f"{{{PRESENCE}}}quiet-hours")))

    async def set_quiet_hours(self, slots: list[QuietSlot]) -> list[QuietSlot]:
        """Replace the user's quiet hours (none for an empty list); a refused schedule raises
        IqError with the server's text."""
        node = ET.Element(f"{{{PRESENCE}}}quiet-hours")
        for slot in slots:
            attributes = {"days": slot.days, "start": slot.start, "end": slot.end}
            attributes["state"] = slot.state
            ET.SubElement(node, f"{{{PRESENCE}}}slot", attributes).text = slot.text
        return _quiet_hours(await self._query("set", node))

    # Last seen

    @staticmethod
    def idle_since(presence) -> datetime | None:
        """Since when a received presence says its user has been idle or away (XEP-0319,
        UTC), if it does."""
        node = presence.xml.find(f"{{{IDLE}}}idle")
        since = node.get("since") if node is not None else None
        return datetime.fromisoformat(since) if since else None

    async def last_seen_shown(self) -> bool:
        """Whether others may learn since when the user has been away or offline."""
        node = await self._query("get", ET.Element(f"{{{PRESENCE}}}last-seen"))
        return node.get("show") == "true"

    async def show_last_seen(self, shown: bool) -> bool:
        """Show or hide the user's last seen; hidden, the user sees nobody's either."""
        node = ET.Element(f"{{{PRESENCE}}}last-seen", {"show": "true" if shown else "false"})
        return (await self._query("set", node)).get("show") == "true"

    # Who may see my presence

    async def visibility(self) -> Visibility:
        return _visibility(await self._query("get", ET.Element(f"{{{VISIBILITY}}}visibility")))

    async def pending(self) -> list[Request]:
        return (await self.visibility()).pending

    async def set_policy(self, policy: str) -> Visibility:
        node = ET.Element(f"{{{VISIBILITY}}}visibility", {"policy": policy})
        return _visibility(await self._query("set", node))

    async def set_away_when_offline(self, enabled: bool) -> Visibility:
        value = "true" if enabled else "false"
        node = ET.Element(f"{{{VISIBILITY}}}visibility", {"away-when-offline": value})
        return _visibility(await self._query("set", node))

    async def set_appear_offline(self, enabled: bool) -> Visibility:
        """Appear offline to everyone else (True) until turned off, or appear as you are."""
        value = "true" if enabled else "false"
        node = ET.Element(f"{{{VISIBILITY}}}visibility", {"appear-offline": value})
        return _visibility(await self._query("set", node))

    async def accept(self, jid: str) -> None:
        await self._query("set", ET.Element(f"{{{VISIBILITY}}}accept", {"jid": str(jid)}))

    async def block(self, jid: str) -> None:
        await self._query("set", ET.Element(f"{{{VISIBILITY}}}block", {"jid": str(jid)}))

    async def allow(self, jid: str) -> None:
        await self._query("set", ET.Element(f"{{{VISIBILITY}}}allow", {"jid": str(jid)}))

    # Do Not Disturb with priority access

    async def priority_list(self) -> list[str]:
        """The people whose messages and calls reach the user in Do Not Disturb."""
        node = await self._query("get", ET.Element(f"{{{DND}}}priority-list"))
        return [contact.get("jid") for contact in node.iter(f"{{{DND}}}contact")]

    async def add_priority(self, jid: str) -> None:
        """Put a user of the server on the priority list; a refusal raises IqError."""
        await self._query("set", ET.Element(f"{{{DND}}}add", {"jid": str(jid)}))

    async def remove_priority(self, jid: str) -> None:
        await self._query("set", ET.Element(f"{{{DND}}}remove", {"jid": str(jid)}))

    @staticmethod
    def is_silent(message) -> bool:
        """Whether the server marked a received message not to alert (the user is in Do Not
        Disturb and the sender is not on the priority list)."""
        return message.xml.find(f"{{{DND}}}no-alert") is not None

    # Display names

    async def set_name(self, name: str | None) -> None:
        """Set the account's display name; None or "" clears it. A name the server cannot
        store raises IqError (bad-request, saying why)."""
        card = ET.Element(f"{{{VCARD4}}}vcard")
        if name:
            text = ET.SubElement(ET.SubElement(card, f"{{{VCARD4}}}fn"), f"{{{VCARD4}}}text")
            text.text = name
        await self._query("set", card)

    async def get_name(self, jid: str | None = None) -> str | None:
        """The display name of `jid` (yourself when None), None when it has none. An account
        that does not exist, or one across a block, raises IqError (forbidden)."""
        card = await self._query("get", ET.Element(f"{{{VCARD4}}}vcard"), to=jid)
        return card.findtext(f"{{{VCARD4}}}fn/{{{VCARD4}}}text")

    async def names(self, jids: list[str]) -> dict[str, str]:
        """The display names of many accounts in one request (at most 500), by bare JID;
        whoever has none, does not exist or is across a block is left out."""
        query = ET.Element(f"{{{NAMES}}}names")
        for jid in jids:
            ET.SubElement(query, f"{{{NAMES}}}item", {"jid": str(jid)})
        answer = await self._query("get", query)
        return {item.get("jid"): item.get("name") for item in answer.iter(f"{{{NAMES}}}item")}

    def subscribe(self, jid: str, *, nick: str | None = None, status: str | None = None) -> None:
        """Ask to see `jid`'s presence, with a nickname (XEP-0172) to be known by."""
        presence = self.xmpp.make_presence(pto=JID(jid), ptype="subscribe", pstatus=status)
        if nick:
            ET.SubElement(presence.xml, f"{{{NICK}}}nick").text = nick
        presence.send()

    @staticmethod
    def nick_of(presence) -> str | None:
        """The nickname (XEP-0172) a received presence carries, if any."""
        return presence.xml.findtext(f"{{{NICK}}}nick")

    # Call routing

    async def routing(self) -> Routing:
        node = await self._query("get", ET.Element(f"{{{ROUTING}}}routing"))
        return Routing(
            enabled=node.get("enabled") in ("true", "1"),
            default=node.get("default"),
            devices=[
                Device(d.get("name"), d.get("kind")) for d in node.iter(f"{{{ROUTING}}}device")
            ],
            mapping={m.get("state"): m.get("device") for m in node.iter(f"{{{ROUTING}}}map")},
        )

    async def set_routing(self, routing: Routing) -> None:
        attributes = {"enabled": "true" if routing.enabled else "false"}
        if routing.default:
            attributes["default"] = routing.default
        node = ET.Element(f"{{{ROUTING}}}routing", attributes)
        for device in routing.devices:
            ET.SubElement(node, f"{{{ROUTING}}}device", {"name": device.name, "kind": device.kind})
        for state, device_name in routing.mapping.items():
            ET.SubElement(node, f"{{{ROUTING}}}map", {"state": state, "device": device_name})
        await self._query("set", node)

    async def route(self, jid: str | None = None, *, caller: str | None = None) -> Route:
        """Which device rings for `jid` now (yourself when None), for a call from `caller`
        when given: one on the priority list rings the device of `available` in DND."""
        query = ET.Element(f"{{{ROUTING}}}route", {"caller": str(caller)} if caller else {})
        node = await self._query("get", query, to=jid)
        device = None
        if node.get("device"):
            device = Device(node.get("device"), node.get("kind"))
        return Route(node.get("jid"), node.get("state"), device)

    async def _query(self, iq_type: str, payload, to: str | None = None):
        iq = self.xmpp.make_iq_set() if iq_type == "set" else self.xmpp.make_iq_get()
        if to is not None:
            iq["to"] = JID(to)
        iq.append(payload)
        result = await iq.send(timeout=TIMEOUT)
        return result.xml.find(payload.tag)


def _quiet_hours(node) -> list[QuietSlot]:
    return [
        QuietSlot(
            slot.get("days"), slot.get("start"), slot.get("end"), slot.get("state"), slot.text
        )
        for slot in node.iterfind(f"{{{PRESENCE}}}slot")
    ]


def _visibility(node) -> Visibility:
    def contacts(name: str) -> list[str]:
        group = node.find(f"{{{VISIBILITY}}}{name}")
        return [c.get("jid") for c in group.iter(f"{{{VISIBILITY}}}contact")]

    pending_group = node.find(f"{{{VISIBILITY}}}pending")
    pending = [
        Request(c.get("jid"), c.findtext(f"{{{VISIBILITY}}}status"), c.findtext(f"{{{NICK}}}nick"))
        for c in pending_group.iter(f"{{{VISIBILITY}}}contact")
    ]
    return Visibility(
        policy=node.get("policy"),
        away_when_offline=node.get("away-when-offline") == "true",
        appear_offline=node.get("appear-offline") == "true",
        pending=pending,
        allowed=contacts("allowed"),
        blocked=contacts("blocked"),
    )


register_plugin(Chorus)
