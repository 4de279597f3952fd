"""The visibility settings as ad-hoc commands, so a stock client can change them.

This module owns the four `urn:chorus:cmd:` commands of the seed guide's Presence settings page:
the policy, presence automation and appearing offline, the pending requests (accept or block),
and the allowed and presence blocked lists (move a contact to the other list). Their forms use
the guide's wording and their names (and titles) carry the guide's counts: the settings, how
many requests wait; each list, how many contacts are on it. Every change goes through the
visibility service, the same the IQ extension and the admin command line use.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from chorus_presence.services.adhoc import AdhocService
from chorus_presence.services.visibility import VisibilityOverview, VisibilityService
from chorus_presence.xmpp.errors import StanzaError
from chorus_presence.xmpp.forms import Field, FieldValue, Form, Option
from chorus_presence.xmpp.stanza import Element

SETTINGS_NODE = "urn:chorus:cmd:presence-settings"
PENDING_NODE = "urn:chorus:cmd:pending"
ALLOWED_NODE = "urn:chorus:cmd:allowed"
BLOCKED_NODE = "urn:chorus:cmd:blocked"

POLICY_LABELS = {
    "ask": "Ask me on each request",
    "everyone": "Everyone can see my presence status (except explicitly blocked users)",
    "nobody": "Nobody can see my presence status (except explicitly allowed users)",
}
SETTINGS_TITLE = "Presence settings"
POLICY_FIELD = "Who can see my presence status"
AWAY_FIELD = "Show me as Away when I am not logged in"
APPEAR_OFFLINE_FIELD = "Appear offline: everyone else sees me as not logged in"
NOTHING_CHANGED = "Nothing changed."


class PresenceSettings:
    """The visibility policy, presence automation and appearing offline."""

    def __init__(self, visibility: VisibilityService) -> None:
        self._visibility = visibility

    async def name(self, owner: str) -> str:
        return _settings_title(await self._visibility.overview(owner))

    async def start(self, owner: str) -> Element:
        overview = await self._visibility.overview(owner)
        policy = Field(
            "list-single",
            "policy",
            POLICY_FIELD,
            value=overview.policy,
            options=tuple(Option(value, label) for value, label in POLICY_LABELS.items()),
            required=True,
        )
        away = Field("boolean", "away-when-offline", AWAY_FIELD, value=overview.away_when_offline)
        hidden = Field(
            "boolean", "appear-offline", APPEAR_OFFLINE_FIELD, value=overview.appear_offline
        )
        return Form((policy, away, hidden), title=_settings_title(overview)).to_element()

    async def submit(self, owner: str, values: dict[str, FieldValue]) -> str:
        visibility = self._visibility
        before = await visibility.overview(owner)
        changes = []
        policy = values.get("policy", before.policy)
        if policy != before.policy:
            await visibility.set_policy(owner, str(policy))
            changes.append(f"{POLICY_FIELD}: {POLICY_LABELS[str(policy)]}.")
            # A new policy also answers the requests still pending.
            after = await visibility.overview(owner)
            waiting = [request.contact for request in before.pending]
            changes.extend(
                _listed(verb, [contact for contact in waiting if contact in now_on])
                for verb, now_on in (("Accepted", after.allowed), ("Blocked", after.blocked))
            )
        away = values.get("away-when-offline", before.away_when_offline)
        if away != before.away_when_offline:
            await visibility.set_away_when_offline(owner, bool(away))
            changes.append(f"{AWAY_FIELD}: {'on' if away else 'off'}.")
        hidden = values.get("appear-offline", before.appear_offline)
        if hidden != before.appear_offline:
            await visibility.set_appear_offline(owner, bool(hidden))
            changes.append(f"Appear offline: {'on' if hidden else 'off'}.")
        return "\n".join(change for change in changes if change) or NOTHING_CHANGED


@dataclass(frozen=True, slots=True)
class Move:
    """One way a contact can leave a list: a list-multi field of the form and its action."""

    var: str
    label: str
    done: str
    apply: Callable[[VisibilityService, str, str], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class ListCommand:
    """A list of contacts (with its count in the command's name) and the moves out of it."""

    visibility: VisibilityService
    title: str
    instructions: str
    empty: str
    # The list's contacts, each with the text shown next to it, if any.
    contacts: Callable[[VisibilityOverview], list[tuple[str, str | None]]]
    moves: tuple[Move, ...]

    async def name(self, owner: str) -> str:
        overview = await self.visibility.overview(owner)
        return f"{self.title} ({len(self.contacts(overview))})"

    async def start(self, owner: str) -> Element:
        contacts = self.contacts(await self.visibility.overview(owner))
        title = f"{self.title} ({len(contacts)})"
        if not contacts:
            return Form((Field("fixed", value=self.empty),), title=title).to_element()
        options = tuple(
            Option(contact, f"{contact}: {note}" if note else contact) for contact, note in contacts
        )
        fields = tuple(
            Field("list-multi", move.var, move.label, value=[], options=options)
            for move in self.moves
        )
        return Form(fields, title=title, instructions=self.instructions).to_element()

    async def submit(self, owner: str, values: dict[str, FieldValue]) -> str:
        visibility = self.visibility
        listed = {contact for contact, _ in self.contacts(await visibility.overview(owner))}
        chosen: dict[str, Move] = {}
        for move in self.moves:
            for contact in _selected(values, move.var):
                if contact in chosen:
                    raise StanzaError(
                        "bad-request",
                        f"{contact} is selected under both '{chosen[contact].label}'"
                        f" and '{move.label}'",
                    )
                # The list may have changed since the form was shown.
                if contact not in listed:
                    raise StanzaError("bad-request", f"{contact} is no longer on this list")
                chosen[contact] = move
        for contact, move in chosen.items():
            await move.apply(visibility, owner, contact)
        lines = (
            _listed(move.done, [contact for contact, done in chosen.items() if done is move])
            for move in self.moves
        )
        return "\n".join(line for line in lines if line) or NOTHING_CHANGED


def _settings_title(overview: VisibilityOverview) -> str:
    """The guide's Presence entry, with the number of requests awaiting an answer, if any."""
    waiting = len(overview.pending)
    if not waiting:
        return SETTINGS_TITLE
    return f"{SETTINGS_TITLE} ({waiting} pending request{'' if waiting == 1 else 's'})"


def _selected(values: dict[str, FieldValue], var: str) -> list[str]:
    value = values.get(var, [])
    assert isinstance(value, list)
    return [str(item) for item in value]


def _listed(verb: str, contacts: list[str]) -> str:
    return f"{verb}: {', '.join(contacts)}." if contacts else ""


def _pending(overview: VisibilityOverview) -> list[tuple[str, str | None]]:
    notes = []
    for request in overview.pending:
        status = f"“{request.status}”" if request.status and request.nick else request.status
        notes.append((request.contact, ", ".join(filter(None, (request.nick, status))) or None))
    return notes


def _allowed(overview: VisibilityOverview) -> list[tuple[str, str | None]]:
    return [(contact, None) for contact in overview.allowed]


def _blocked(overview: VisibilityOverview) -> list[tuple[str, str | None]]:
    return [(contact, None) for contact in overview.blocked]


ACCEPT = Move(
    "accept", "Accept: they can see your presence status", "Accepted", VisibilityService.accept
)
BLOCK = Move(
    "block", "Block: they cannot see your presence status", "Blocked", VisibilityService.block
)
ALLOW = Move(
    "allow", "Allow: they can see your presence status", "Allowed", VisibilityService.allow
)


def register(adhoc: AdhocService, visibility: VisibilityService) -> None:
    settings = PresenceSettings(visibility)
    adhoc.register(SETTINGS_NODE, settings.name, settings)
    for node, command in (
        (
            PENDING_NODE,
            ListCommand(
                visibility,
                "Pending presence status requests",
                "Select the requests to accept and those to block; the rest stay pending.",
                "There are no pending presence status requests.",
                _pending,
                (ACCEPT, BLOCK),
            ),
        ),
        (
            ALLOWED_NODE,
            ListCommand(
                visibility,
                "Users allowed to see your presence status",
                "Select the users to move to the presence blocked list.",
                "Nobody is on your allowed list.",
                _allowed,
                (BLOCK,),
            ),
        ),
        (
            BLOCKED_NODE,
            ListCommand(
                visibility,
                "Users blocked from seeing your presence status",
                "Select the users to move to the allowed list.",
                "Nobody is on your presence blocked list.",
                _blocked,
                (ALLOW,),
            ),
        ),
    ):
        adhoc.register(node, command.name, command)
