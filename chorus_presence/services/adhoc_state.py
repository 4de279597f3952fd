"""Set my status: the six presence states and custom text as an ad-hoc command, for stock
clients whose only states are the standard `<show>` values.

Submitting replaces the presence of each of the user's available resources with one carrying
the chosen state (its `<show>` and default `<status>` follow from `rich_states`) and the custom
text, keeping the rest of that resource's presence (priority, capabilities). The presence
service takes it as if the resource had sent it and broadcasts it through the same filters, so
contacts see only what visibility and blocks allow. The state lasts until a client sends its
own presence, which wins on its resource, or until the time chosen in "Clear after"
(`state_expiry`), when the server reverts it to Available with no text.
"""

from __future__ import annotations

from chorus_presence.services import adhoc_call_routing, rich_states, state_expiry
from chorus_presence.services.adhoc import AdhocService
from chorus_presence.services.presence import PresenceService
from chorus_presence.services.state_expiry import StateExpiryService
from chorus_presence.xmpp.errors import StanzaError
from chorus_presence.xmpp.forms import Field, FieldValue, Form, Option
from chorus_presence.xmpp.jid import JID
from chorus_presence.xmpp.stanza import Element

NODE = "urn:chorus:cmd:state"
TITLE = "Set my status"
# The seed guide's names of the states a user can choose (not offline, which the server sets).
STATE_LABELS = {state: adhoc_call_routing.STATE_LABELS[state] for state in rich_states.STATES}
STATE_FIELD = "Status"
TEXT_FIELD = "Custom status text"
CLEAR_FIELD = "Clear after"
NEVER = "never"
# What "Clear after" offers, as `for` values of the presence extension.
CLEAR_LABELS = {
    NEVER: "Don't clear",
    "PT30M": "30 minutes",
    "PT1H": "1 hour",
    "PT4H": "4 hours",
    state_expiry.TODAY: "Today",
    state_expiry.THIS_WEEK: "This week",
}
INSTRUCTIONS = "Sets the status of each of your online resources, until your client sends its own."


class StateCommand:
    def __init__(
        self, presence: PresenceService, expiry: StateExpiryService, *, domain: str
    ) -> None:
        self._presence = presence
        self._expiry = expiry
        self._domain = domain

    async def start(self, owner: str) -> Element:
        state, text = self._current(owner)
        fields = (
            Field(
                "list-single",
                "state",
                STATE_FIELD,
                value=state,
                options=tuple(Option(value, label) for value, label in STATE_LABELS.items()),
                required=True,
            ),
            Field("text-single", "text", TEXT_FIELD, value=text, desc="Leave it empty for none."),
            Field(
                "list-single",
                "clear",
                CLEAR_FIELD,
                value=NEVER,
                options=tuple(Option(value, label) for value, label in CLEAR_LABELS.items()),
                desc="Today and this week end in your time zone.",
            ),
        )
        return Form(fields, title=TITLE, instructions=INSTRUCTIONS).to_element()

    async def submit(self, owner: str, values: dict[str, FieldValue]) -> str:
        current_state, current_text = self._current(owner)
        state = str(values.get("state", current_state))
        text = str(values.get("text", current_text or "")).strip() or None
        if text is not None and len(text) > rich_states.MAX_STATUS_CHARS:
            raise StanzaError(
                "not-acceptable",
                f"Custom status text is {len(text)} characters;"
                f" at most {rich_states.MAX_STATUS_CHARS} are allowed",
            )
        clear = str(values.get("clear", NEVER))
        until = None if clear == NEVER else await self._expiry.resolve(owner, period=clear)
        user = JID(owner, self._domain)
        changed = 0
        for session, resource in self._presence.available(user):
            presence = rich_states.with_state(resource.stanza, state, text)
            if until is not None:
                node = presence.find(rich_states.STATE)
                assert node is not None
                node.set(state_expiry.UNTIL, state_expiry.format_until(until))
            changed += await self._presence.replace_presence(session, presence)
        if not changed:
            raise StanzaError(
                "unexpected-request",
                f"None of {user}'s resources is available: send your presence first",
            )
        label = STATE_LABELS[state]
        note = f"Your status is now {label}: {text}." if text else f"Your status is now {label}."
        if until is not None:
            note += f" It clears at {state_expiry.format_until(until)}."
        return note

    def _current(self, owner: str) -> tuple[str, str | None]:
        """The state and custom text of the user's latest presence change."""
        resources = self._presence.available(JID(owner, self._domain))
        if not resources:
            return "available", None
        _, latest = max(resources, key=lambda pair: pair[1].sequence)
        text = latest.stanza.findtext(rich_states.STATUS)
        # The state's own text is not custom text: kept, it would stick to the next state.
        if text == rich_states.STATES[latest.state].default_status:
            text = None
        return latest.state, text


def register(
    adhoc: AdhocService, presence: PresenceService, expiry: StateExpiryService, *, domain: str
) -> None:
    adhoc.register(NODE, TITLE, StateCommand(presence, expiry, domain=domain))
