"""Show when I was last seen, as an ad-hoc command, so a stock client can hide or show it.

One boolean field in the portal's words. Hidden, nobody learns since when the user has been
away or offline, and the user learns nobody's (`last_seen`); the change goes through the same
service the IQ extension uses.
"""

from __future__ import annotations

from chorus_presence.services.adhoc import AdhocService
from chorus_presence.services.last_seen import LastSeenService
from chorus_presence.xmpp.forms import Field, FieldValue, Form
from chorus_presence.xmpp.stanza import Element

NODE = "urn:chorus:cmd:last-seen"
TITLE = "Last seen"
SHOW_FIELD = "Show when I was last seen"
DESCRIPTION = "Off: nobody sees since when you have been away or offline, and you see nobody's."


class LastSeenCommand:
    def __init__(self, last_seen: LastSeenService) -> None:
        self._last_seen = last_seen

    async def start(self, owner: str) -> Element:
        shown = Field(
            "boolean", "show", SHOW_FIELD, value=self._last_seen.shows(owner), desc=DESCRIPTION
        )
        return Form((shown,), title=TITLE).to_element()

    async def submit(self, owner: str, values: dict[str, FieldValue]) -> str:
        before = self._last_seen.shows(owner)
        shown = bool(values.get("show", before))
        if shown == before:
            return "Nothing changed."
        await self._last_seen.set_shown(owner, shown)
        return f"{SHOW_FIELD}: {'on' if shown else 'off'}."


def register(adhoc: AdhocService, last_seen: LastSeenService) -> None:
    adhoc.register(NODE, TITLE, LastSeenCommand(last_seen))
