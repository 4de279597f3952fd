"""The priority list as an ad-hoc command, so a stock client can keep it: the people whose
messages alert the user and whose calls ring the usual device while the user is in Do Not
Disturb, Busy or In Meeting.

This module owns the `urn:chorus:cmd:priority` command: its name and title carry the list's
count, its form removes listed people and adds new ones, and every change goes through the
priority access service, the same the IQ extension and the admin command line use.
"""

from __future__ import annotations

from chorus_presence.services.adhoc import AdhocService
from chorus_presence.services.priority_access import PriorityAccessService
from chorus_presence.xmpp.errors import StanzaError
from chorus_presence.xmpp.forms import Field, FieldValue, Form, Option
from chorus_presence.xmpp.stanza import Element

NODE = "urn:chorus:cmd:priority"
TITLE = "People who reach me in Do Not Disturb"
INSTRUCTIONS = (
    "While you are in Do Not Disturb, Busy or In Meeting, messages from these people alert you"
    " and their calls ring your usual device; everyone else's messages arrive silently."
)
REMOVE_LABEL = "Remove from the list"
ADD_LABEL = "Add people, one address per line"
EMPTY = "Nobody is on your priority list."
NOTHING_CHANGED = "Nothing changed."


class PriorityCommand:
    def __init__(self, priority: PriorityAccessService) -> None:
        self._priority = priority

    async def name(self, owner: str) -> str:
        return f"{TITLE} ({len(await self._priority.contacts(owner))})"

    async def start(self, owner: str) -> Element:
        contacts = await self._priority.contacts(owner)
        fields: list[Field] = []
        if contacts:
            options = tuple(Option(contact, contact) for contact in contacts)
            fields.append(Field("list-multi", "remove", REMOVE_LABEL, value=[], options=options))
        else:
            fields.append(Field("fixed", value=EMPTY))
        fields.append(Field("jid-multi", "add", ADD_LABEL, value=[]))
        title = f"{TITLE} ({len(contacts)})"
        return Form(tuple(fields), title=title, instructions=INSTRUCTIONS).to_element()

    async def submit(self, owner: str, values: dict[str, FieldValue]) -> str:
        priority = self._priority
        listed = await priority.contacts(owner)
        removing = _values(values, "remove")
        adding = _values(values, "add")
        for contact in removing:
            # The list may have changed since the form was shown.
            if contact not in listed:
                raise StanzaError("bad-request", f"{contact} is no longer on this list")
        try:
            # Every address is checked before anything changes.
            for contact in adding:
                await priority.candidate(owner, contact)
        except StanzaError as refusal:
            raise StanzaError(refusal.condition, f"{ADD_LABEL}: {refusal.text}") from None
        for contact in removing:
            await priority.remove(owner, contact)
        await priority.add_all(owner, adding)
        lines = []
        if removing:
            lines.append(f"Removed: {', '.join(removing)}.")
        added = [contact for contact in await priority.contacts(owner) if contact not in listed]
        if added:
            lines.append(f"Added: {', '.join(added)}.")
        return "\n".join(lines) or NOTHING_CHANGED


def _values(values: dict[str, FieldValue], var: str) -> list[str]:
    value = values.get(var, [])
    assert isinstance(value, list)
    return [str(item) for item in value]


def register(adhoc: AdhocService, priority: PriorityAccessService) -> None:
    command = PriorityCommand(priority)
    adhoc.register(NODE, command.name, command)
