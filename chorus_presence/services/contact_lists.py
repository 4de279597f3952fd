"""What the services keeping lists of people share (the visibility lists, the priority list):
the IQ handler of an add or a remove naming one person by `jid`, and reading that address."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from chorus_presence.core.events import IqRequest
from chorus_presence.xmpp.errors import StanzaError
from chorus_presence.xmpp.jid import JID, JIDError
from chorus_presence.xmpp.stanza import Element, local_name


def jid_action(
    what: str, method: Callable[[str, str], Awaitable[None]]
) -> Callable[[IqRequest], Awaitable[Element]]:
    """An IQ handler calling `method(owner, jid)` for a set on the asker's own `what`."""

    async def handler(request: IqRequest) -> Element:
        owner = request.own_account(what)
        contact = request.payload.get("jid")
        if not contact:
            raise StanzaError(
                "bad-request", f"<{local_name(request.payload)}/> needs a 'jid' attribute"
            )
        await method(owner, contact)
        return request.reply()

    return handler


def parse_contact(text: str) -> JID:
    """The bare JID `text` names (a resource is dropped); jid-malformed when there is none."""
    try:
        return JID.parse(text).bare
    except JIDError as exc:
        raise StanzaError("jid-malformed", f"'{text}' is not a valid JID") from exc
