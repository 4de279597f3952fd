"""XEP-0050 ad-hoc commands on the server JID, each a two-step dialogue with a XEP-0004 form.

This module owns the protocol: listing the commands a user may run (disco#items on the
commands node, with names computed per user), describing each command node (disco#info),
executing a command (the form and a session), completing it with a submitted form (checked
against the form shown, then applied), cancelling it, and the sessions in between: per full
JID, bounded in number and lifetime, and gone with the stream. What a command shows and does is
its handler's business; services register handlers with `AdhocService.register`.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from chorus_presence.core import topics
from chorus_presence.core.bus import Bus
from chorus_presence.core.events import IqRequest, SessionEvent
from chorus_presence.xmpp import namespaces as ns
from chorus_presence.xmpp.errors import StanzaError
from chorus_presence.xmpp.forms import FieldValue, Form, X
from chorus_presence.xmpp.jid import JID
from chorus_presence.xmpp.stanza import Element, child, element

# Sessions a resource may have open at once; executing one more drops its oldest.
MAX_SESSIONS_PER_RESOURCE = 8
# Seconds a session waits for the form to come back.
SESSION_LIFETIME = 600.0

CommandName = str | Callable[[str], Awaitable[str]]


class CommandHandler(Protocol):
    """A command: the form shown when a user executes it, and what submitting it does."""

    async def start(self, owner: str) -> Element:
        """The `jabber:x:data` form for `owner` (a local username)."""
        ...

    async def submit(self, owner: str, values: dict[str, FieldValue]) -> str:
        """Apply the submitted values; the text is the note the user sees on completion.

        `values` holds the fields the client submitted, typed and checked against the form
        `start` returned; raise StanzaError to refuse the submission."""
        ...


@dataclass(frozen=True, slots=True)
class _Command:
    node: str
    name: CommandName
    handler: CommandHandler
    allowed: Callable[[JID], bool] | None

    def permits(self, user: JID) -> bool:
        return self.allowed is None or self.allowed(user.bare)

    async def name_for(self, owner: str) -> str:
        if isinstance(self.name, str):
            return self.name
        return await self.name(owner)


@dataclass(frozen=True, slots=True)
class _Session:
    node: str
    form: Form
    expires: float


class AdhocService:
    def __init__(
        self,
        bus: Bus,
        *,
        domain: str,
        max_sessions: int = MAX_SESSIONS_PER_RESOURCE,
        lifetime: float = SESSION_LIFETIME,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._bus = bus
        self._domain = domain
        self.max_sessions = max_sessions
        self.lifetime = lifetime
        self.clock = clock
        self._commands: dict[str, _Command] = {}
        # Per full JID, oldest first, so the one to drop when a resource has too many is first.
        self._sessions: dict[JID, dict[str, _Session]] = {}

    def register(
        self,
        node: str,
        name: CommandName,
        handler: CommandHandler,
        *,
        allowed: Callable[[JID], bool] | None = None,
    ) -> None:
        """Offer a command at `node`; `name` may be computed per user (e.g. to show a count);
        `allowed`, given a user's bare JID, hides the command from users it refuses."""
        if node in self._commands:
            raise ValueError(f"command node {node!r} is already registered")
        self._commands[node] = _Command(node, name, handler, allowed)
        self._bus.on(topics.disco_info(node), self.node_info)

    def subscribe(self, bus: Bus) -> None:
        bus.on(topics.DISCO_FEATURES, lambda event: event.features.add(ns.COMMANDS))
        bus.on(topics.disco_items(ns.COMMANDS), self.list_commands)
        bus.on(topics.iq("set", "server", ns.qname(ns.COMMANDS, "command")), self.on_command)
        bus.on(topics.SESSION_ENDED, self.session_ended)

    # Service discovery

    async def list_commands(self, request: IqRequest) -> Element:
        """disco#items on the commands node: the commands this user may run."""
        user = _sender(request)
        query = element("query", namespace=ns.DISCO_ITEMS)
        for command in self._commands.values():
            if command.permits(user):
                child(
                    query,
                    "item",
                    {
                        "jid": self._domain,
                        "node": command.node,
                        "name": await command.name_for(_owner(user)),
                    },
                )
        return query

    async def node_info(self, request: IqRequest) -> Element:
        """disco#info on a command node (XEP-0050 section 2.3)."""
        user = _sender(request)
        command = self._commands.get(request.payload.get("node", ""))
        if command is None or not command.permits(user):
            raise StanzaError("item-not-found", "No such command")
        query = element("query", namespace=ns.DISCO_INFO)
        child(
            query,
            "identity",
            {
                "category": "automation",
                "type": "command-node",
                "name": await command.name_for(_owner(user)),
            },
        )
        for feature in (ns.COMMANDS, ns.DATA_FORMS):
            child(query, "feature", {"var": feature})
        return query

    # Execution

    async def on_command(self, request: IqRequest) -> Element:
        user = _sender(request)
        payload = request.payload
        node = payload.get("node", "")
        command = self._commands.get(node)
        if command is None:
            raise StanzaError("item-not-found", "No such command")
        if not command.permits(user):
            raise StanzaError("forbidden", "You may not run this command")
        action = payload.get("action", "execute")
        if action not in ("execute", "complete", "cancel"):
            # Every command here is a single form, so 'next' and 'prev' have nowhere to go.
            raise _command_error("bad-action", "This command only executes, completes or cancels")
        session_id = payload.get("sessionid")
        submitted = payload.find(X)
        if session_id is None:
            if action == "cancel":
                raise _command_error("bad-sessionid", "There is no session to cancel")
            form = Form.from_element(await command.handler.start(_owner(user)))
            if submitted is None:
                if action == "complete":
                    raise _command_error("bad-payload", "Completing a command needs its form")
                return request.reply(_executing(node, self._open(user, node, form), form))
            # A client that knows the form may submit it with the request that starts it.
            return await self._complete(request, command, form, submitted, secrets.token_hex(8))
        session = self._take(user, session_id, node)
        if action == "cancel":
            self._drop(user, session_id)
            return request.reply(_command(node, session_id, "canceled"))
        if submitted is None:
            raise _command_error("bad-payload", "Completing a command needs its form")
        reply = await self._complete(request, command, session.form, submitted, session_id)
        self._drop(user, session_id)
        return reply

    async def _complete(
        self,
        request: IqRequest,
        command: _Command,
        form: Form,
        submitted: Element,
        session_id: str,
    ) -> Element:
        values = form.parse_submission(submitted)
        note = await command.handler.submit(_owner(_sender(request)), values)
        reply = _command(command.node, session_id, "completed")
        child(reply, "note", {"type": "info"}, text=note)
        return request.reply(reply)

    # Sessions

    def _open(self, user: JID, node: str, form: Form) -> str:
        now = self.clock()
        sessions = {
            key: session
            for key, session in self._sessions.get(user, {}).items()
            if session.expires > now
        }
        while len(sessions) >= self.max_sessions:
            del sessions[next(iter(sessions))]
        session_id = secrets.token_hex(8)
        sessions[session_id] = _Session(node, form, now + self.lifetime)
        self._sessions[user] = sessions
        return session_id

    def _take(self, user: JID, session_id: str, node: str) -> _Session:
        session = self._sessions.get(user, {}).get(session_id)
        if session is None or session.node != node or session.expires <= self.clock():
            raise _command_error("bad-sessionid", "That command session is unknown or has expired")
        return session

    def _drop(self, user: JID, session_id: str) -> None:
        sessions = self._sessions.get(user)
        if sessions is not None:
            sessions.pop(session_id, None)
            if not sessions:
                del self._sessions[user]

    def session_ended(self, event: SessionEvent) -> None:
        self._sessions.pop(event.session.jid, None)


def _sender(request: IqRequest) -> JID:
    # Host-scope IQs reach services only from bound sessions, so there is always a sender.
    assert request.sender is not None and request.sender.local is not None
    return request.sender


def _owner(user: JID) -> str:
    assert user.local is not None
    return user.local


def _command(node: str, session_id: str, status: str) -> Element:
    return element(
        "command",
        {"node": node, "sessionid": session_id, "status": status},
        namespace=ns.COMMANDS,
    )


def _executing(node: str, session_id: str, form: Form) -> Element:
    reply = _command(node, session_id, "executing")
    # One stage only: the form's submission completes the command.
    actions = child(reply, "actions", {"execute": "complete"})
    child(actions, "complete")
    reply.append(form.to_element())
    return reply


def _command_error(condition: str, text: str) -> StanzaError:
    """XEP-0050 section 4.6: each command condition rides on bad-request."""
    return StanzaError("bad-request", text, app_condition=(ns.COMMANDS, condition))
