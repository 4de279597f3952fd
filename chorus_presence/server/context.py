"""The server's shared parts, assembled once at start-up and handed to every stream and service."""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from chorus_presence.config import Config
from chorus_presence.server.limits import Limits
from chorus_presence.server.metrics import Metrics
from chorus_presence.server.router import IqRequest, Router
from chorus_presence.server.sessions import SessionRegistry
from chorus_presence.services.accounts import AccountService
from chorus_presence.storage.database import Database
from chorus_presence.xmpp.errors import StreamError
from chorus_presence.xmpp.jid import JID
from chorus_presence.xmpp.stanza import Element

if TYPE_CHECKING:
    from chorus_presence.server.c2s import ClientStream
    from chorus_presence.services.adhoc import AdhocService
    from chorus_presence.services.presence import PresenceService
    from chorus_presence.services.rosters import RosterService
    from chorus_presence.services.routing import RoutingService
    from chorus_presence.services.subscriptions import SubscriptionService
    from chorus_presence.services.visibility import VisibilityService

FeatureStage = Literal["preauth", "postauth"]
FeatureProvider = Callable[["ClientStream"], Element | None]
SessionHook = Callable[["ClientStream"], Awaitable[None]]
NonzaHandler = Callable[["ClientStream", Element], Awaitable[None]]
# Answers disco#info or disco#items for one node of the server JID with the <query/> payload.
DiscoNodeHandler = Callable[[IqRequest], Awaitable[Element]]


@dataclass
class ServerContext:
    config: Config
    database: Database
    accounts: AccountService
    sessions: SessionRegistry
    router: Router
    ssl_context: ssl.SSLContext | None
    secret: bytes
    limits: Limits
    features: dict[FeatureStage, list[FeatureProvider]] = field(
        default_factory=lambda: {"preauth": [], "postauth": []}
    )
    disco_features: set[str] = field(default_factory=set)
    metrics: Metrics = field(default_factory=Metrics)
    disco_info_nodes: dict[str, DiscoNodeHandler] = field(default_factory=dict)
    disco_items_nodes: dict[str, DiscoNodeHandler] = field(default_factory=dict)
    on_session_end: list[SessionHook] = field(default_factory=list)
    # Called with the username of each deleted account, to drop what is kept in memory.
    on_account_removed: list[Callable[[str], None]] = field(default_factory=list)
    # Top-level elements other than stanzas after authentication, by Clark name.
    nonzas: dict[str, NonzaHandler] = field(default_factory=dict)
    # Sessions that enabled resumable stream management, by their stream management id.
    resumable: dict[str, ClientStream] = field(default_factory=dict)
    # Services that other services call; each is set by its own module's setup().
    rosters: RosterService = field(init=False)
    presence: PresenceService = field(init=False)
    subscriptions: SubscriptionService = field(init=False)
    routing: RoutingService = field(init=False)
    visibility: VisibilityService = field(init=False)
    adhoc: AdhocService = field(init=False)

    @property
    def domain(self) -> str:
        return self.config.domain

    _background: set[asyncio.Task[None]] = field(default_factory=set)

    def background(self, work: Coroutine[object, object, None]) -> None:
        """Run durable work that nothing waits for; the server awaits it before it stops."""
        task = asyncio.get_running_loop().create_task(work)
        self._background.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logging.getLogger(__name__).error("background work failed", exc_info=task.exception())

    async def drain_background(self) -> None:
        while self._background:
            await asyncio.gather(*self._background, return_exceptions=True)

    async def remove_account(self, username: str) -> bool:
        """Delete an account: its durable state goes (the database cascades), its sessions
        end, and services drop what they keep of it in memory."""
        removed = await self.accounts.delete(username)
        if not removed:
            return False
        for session in self.sessions.of_account(JID(username, self.domain)):
            session.close(StreamError("not-authorized", "The account was removed"))
        for forget in self.on_account_removed:
            forget(username)
        return True

    def add_stream_feature(self, stage: FeatureStage, provider: FeatureProvider) -> None:
        """A provider returns the feature element for a stream, or None to leave it out."""
        self.features[stage].append(provider)
