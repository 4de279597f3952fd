"""Fakes for testing the services without sockets: a recording session and a whole server.

`FakeSession` satisfies `core.session.Session`: whatever the server sends it is parsed back
into lxml elements (`received`), and a close records its stream error (`closed`). A
`World` is one real server as `composition.build` assembles it, on a real SQLite file under
the test's tmp_path, driven the way the c2s stream drives it: `connect` binds a session and
fires `session/bound`, `send` stamps `from` and hands the stanza to the router, `end` unbinds
and fires `session/ended`.

Test modules make their own fixture from `open_world`, which closes the database afterwards:

    @pytest.fixture
    async def world(tmp_path):
        async with open_world(tmp_path) as world:
            yield world
"""

from __future__ import annotations

import contextlib
import copy
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lxml import etree

from chorus_presence.composition import build
from chorus_presence.config import load_config
from chorus_presence.core import topics
from chorus_presence.core.events import SessionEvent
from chorus_presence.server.components import Components
from chorus_presence.storage.factory import open_repositories
from chorus_presence.xmpp import namespaces as ns
from chorus_presence.xmpp.errors import StreamError
from chorus_presence.xmpp.jid import JID
from chorus_presence.xmpp.stanza import Element, serialize

DOMAIN = "example.com"
PASSWORD = "a long enough password"
# The smallest count the configuration accepts keeps account creation quick.
SCRAM_ITERATIONS = 4096

STANZAS = ns.STANZA_ERRORS


def c(tag: str) -> str:
    """The Clark name of a jabber:client tag, e.g. c('presence')."""
    return ns.qname(ns.CLIENT, tag)


def parse(xml: str | bytes) -> Element:
    """One stanza as the stream parser hands it on: its tags in jabber:client unless it says
    otherwise, detached from any wrapper."""
    text = xml.decode() if isinstance(xml, bytes) else xml
    wrapper = etree.fromstring(f"<stream xmlns='{ns.CLIENT}'>{text}</stream>")
    children = [node for node in wrapper if isinstance(node.tag, str)]
    assert len(children) == 1, f"expected one element, got {len(children)}: {text!r}"
    return copy.deepcopy(children[0])


def one(node: Element, tag: str) -> Element:
    """The first child `tag` of `node`, which must be there."""
    found = node.find(tag)
    assert found is not None, f"no {tag} in {etree.tostring(node, encoding='unicode')}"
    return found


def error_condition(stanza: Element) -> str | None:
    """The defined condition of an error stanza, e.g. 'service-unavailable'; None if none."""
    error = stanza.find(c("error"))
    if error is None:
        return None
    for node in error:
        if etree.QName(node).namespace == STANZAS and etree.QName(node).localname != "text":
            return etree.QName(node).localname
    return None


class FakeSession:
    """A bound resource that records what it is sent, as parsed elements.

    Like the c2s stream, nothing is written once it is closed; what the server still tries to
    send is kept in `after_close`, so a test can tell a stanza that was never sent from one
    that went to a closed stream.
    """

    def __init__(self, jid: JID, *, peer: str = "127.0.0.1:50000", secure: bool = True) -> None:
        assert jid.resource is not None, "a session is bound to a full JID"
        self._jid = jid
        self._peer = peer
        self._secure = secure
        self.received: list[Element] = []
        self.after_close: list[Element] = []
        self.closed: StreamError | None = None
        self.is_closed = False
        # What stream management would report as unacknowledged when the session ends.
        self.unacked: list[bytes] = []

    def __repr__(self) -> str:
        return f"FakeSession({self._jid})"

    # The Session protocol

    @property
    def jid(self) -> JID:
        return self._jid

    @property
    def peer(self) -> str:
        return self._peer

    def is_secure_enough(self) -> bool:
        return self._secure

    def send(self, stanza: Element) -> None:
        # Serialised and parsed back: the server may change or reuse the element it sent.
        self._record(serialize(stanza))

    def send_bytes(self, data: bytes) -> None:
        self._record(data)

    def send_presence(self, data: bytes, sender: str) -> None:
        self._record(data)

    def close(self, error: StreamError | None = None) -> None:
        if self.is_closed:
            return
        self.is_closed = True
        self.closed = error

    def undelivered(self) -> list[bytes]:
        return list(self.unacked)

    # For assertions

    def _record(self, data: bytes) -> None:
        stanza = etree.fromstring(data)
        (self.after_close if self.is_closed else self.received).append(stanza)

    def take(self) -> list[Element]:
        """Everything received since the last take, which is then forgotten."""
        taken, self.received = self.received, []
        return taken

    def of_kind(self, kind: str) -> list[Element]:
        return [stanza for stanza in self.received if stanza.tag == c(kind)]

    def presences(self, *, sender: str | None = None) -> list[Element]:
        found = self.of_kind("presence")
        return [p for p in found if sender is None or p.get("from") == sender]

    def reply_to(self, stanza_id: str) -> Element:
        """The one IQ result or error answering the IQ with this id."""
        replies = [
            s
            for s in self.of_kind("iq")
            if s.get("id") == stanza_id and s.get("type") in ("result", "error")
        ]
        assert len(replies) == 1, f"{len(replies)} replies to {stanza_id!r}: {self.dump()}"
        return replies[0]

    def dump(self) -> str:
        return "\n".join(etree.tostring(stanza, encoding="unicode") for stanza in self.received)


@dataclass
class World:
    """One assembled server on a temporary database, with fake client sessions."""

    components: Components
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def domain(self) -> str:
        return self.components.domain

    def jid(self, username: str, resource: str | None = None) -> JID:
        return JID(username, self.domain, resource)

    async def add_user(self, username: str, password: str = PASSWORD) -> JID:
        created = await self.components.accounts.create(username, password)
        return self.jid(created)

    def connect(self, username: str, resource: str = "r") -> FakeSession:
        """Bind a session as the c2s stream does after resource binding."""
        session = FakeSession(self.jid(username, resource))
        replaced = self.components.sessions.bind(session)
        if replaced is not None:
            replaced.close(StreamError("conflict", "Replaced by a new session for this resource"))
        self.components.bus.notify_sync(topics.SESSION_BOUND, SessionEvent(session))
        return session

    async def send(self, session: FakeSession, xml: str | Element) -> Element:
        """Route one stanza from `session`, `from` stamped as the c2s stream stamps it."""
        stanza = parse(xml) if isinstance(xml, str) else xml
        kind = etree.QName(stanza).localname
        assert kind in ("message", "presence", "iq"), kind
        stanza.set("from", str(session.jid))
        await self.components.router.route(session, stanza, kind)
        return stanza

    async def iq(self, session: FakeSession, xml: str) -> Element:
        """Send an IQ (given without an id) and return the reply it got."""
        stanza = parse(xml)
        stanza_id = f"iq{next(self._ids)}"
        stanza.set("id", stanza_id)
        await self.send(session, stanza)
        return session.reply_to(stanza_id)

    async def end(self, session: FakeSession) -> None:
        """The stream's teardown: unbind, then tell every service the session ended."""
        self.components.sessions.unbind(session)
        await self.components.bus.notify(topics.SESSION_ENDED, SessionEvent(session))

    async def online(self, username: str, resource: str = "r") -> FakeSession:
        """A session that has fetched its roster (so it gets pushes) and sent initial
        presence, as a typical client does right after binding."""
        session = self.connect(username, resource)
        await self.iq(session, f"<iq type='get'><query xmlns='{ns.ROSTER}'/></iq>")
        await self.send(session, "<presence/>")
        return session

    async def befriend(self, first: str, second: str) -> None:
        """Mutual subscriptions ('both'), through real subscription exchanges."""
        exchange = self.components.subscriptions.exchange
        a, b = self.jid(first), self.jid(second)
        await exchange(a, b, "subscribe")
        await exchange(b, a, "subscribed")
        await exchange(b, a, "subscribe")
        await exchange(a, b, "subscribed")

    async def subscription(self, owner: str, contact: str) -> str | None:
        """The subscription of `owner`'s roster item for `contact`, None without one."""
        roster = await self.components.rosters.roster(owner)
        item = roster.items.get(str(self.jid(contact)))
        return item.subscription if item is not None else None

    async def close(self) -> None:
        await self.components.background.drain()
        await self.components.repositories.close()


def write_config(tmp_path: Path, **overrides: Any) -> Path:
    """A TOML file in tmp_path: a database there, the given overrides on top.

    A dict value is a table (`messages={"offline": "store"}`), anything else a top-level key
    (`admins=["boss@example.com"]`).
    """
    tables: dict[str, dict[str, Any]] = {
        "storage": {"database": str(tmp_path / "chorus.db")},
        "admin": {"socket": str(tmp_path / "admin.sock")},
        "auth": {"scram_iterations": SCRAM_ITERATIONS},
    }
    top: dict[str, Any] = {"domain": DOMAIN}
    for key, value in overrides.items():
        if isinstance(value, dict):
            tables.setdefault(key, {}).update(value)
        else:
            top[key] = value
    lines = [f"{key} = {_toml(value)}" for key, value in top.items()]
    for name, values in tables.items():
        lines.append(f"[{name}]")
        lines.extend(f"{key} = {_toml(value)}" for key, value in values.items())
    path = tmp_path / "chorus.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(item) for item in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


async def build_world(tmp_path: Path, **config_overrides: Any) -> World:
    """The real server's components on a fresh database; close it with `World.close`."""
    config = load_config(write_config(tmp_path, **config_overrides))
    repositories = await open_repositories(config.storage, config.domain)
    try:
        components = await build(config, repositories, ssl_context=None)
    except BaseException:
        await repositories.close()
        raise
    return World(components)


@contextlib.asynccontextmanager
async def open_world(tmp_path: Path, **config_overrides: Any) -> AsyncIterator[World]:
    world = await build_world(tmp_path, **config_overrides)
    try:
        yield world
    finally:
        await world.close()
