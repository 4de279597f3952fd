"""Quiet hours as an ad-hoc command, so a stock client can read and change the schedule.

The form has one text-multi field with one slot a line, as `quiet_hours.format_slot` writes it
(`mon-fri 18:00-08:00 dnd Off work`); submitting replaces the schedule through the quiet hours
service, the same the IQ extension and the admin command line use. An empty field clears it.
"""

from __future__ import annotations

from chorus_presence.services import quiet_hours, rich_states
from chorus_presence.services.adhoc import AdhocService
from chorus_presence.services.quiet_hours import QuietHoursService
from chorus_presence.xmpp.forms import Field, FieldValue, Form
from chorus_presence.xmpp.stanza import Element

NODE = "urn:chorus:cmd:quiet-hours"
TITLE = "Quiet hours"
SLOTS_FIELD = "Slots, one a line"
INSTRUCTIONS = (
    "One slot a line: days, start-end in your time zone, a state and optional text, such as"
    " 'mon-fri 18:00-08:00 dnd Off work' or 'sat-sun 00:00-24:00 away'. Days are mon to sun,"
    " ranges (mon-fri), lists (sat,sun) or daily; states are "
    + ", ".join(rich_states.STATES)
    + ". Leave it empty for no quiet hours."
)


class QuietHoursCommand:
    def __init__(self, service: QuietHoursService) -> None:
        self._service = service

    async def start(self, owner: str) -> Element:
        lines = "\n".join(quiet_hours.format_slot(s) for s in self._service.schedule(owner))
        slots = Field("text-multi", "slots", SLOTS_FIELD, value=lines or None)
        return Form((slots,), title=TITLE, instructions=INSTRUCTIONS).to_element()

    async def submit(self, owner: str, values: dict[str, FieldValue]) -> str:
        slots = quiet_hours.parse_lines(str(values.get("slots") or ""))
        stored = await self._service.set_schedule(owner, slots)
        if not stored:
            return "You have no quiet hours."
        listed = "; ".join(quiet_hours.format_slot(s) for s in stored)
        count = "1 slot" if len(stored) == 1 else f"{len(stored)} slots"
        return f"Your quiet hours are {count}: {listed}."


def register(adhoc: AdhocService, service: QuietHoursService) -> None:
    adhoc.register(NODE, TITLE, QuietHoursCommand(service))
