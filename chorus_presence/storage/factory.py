"""Opening storage: the backend named in `[storage]`, behind the interfaces in `interfaces`.

This is the one place that knows which classes implement each interface; the rest of the
server receives a `Repositories` and never names a backend.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from chorus_presence.config import StorageConfig
from chorus_presence.storage.accounts import AccountRepository
from chorus_presence.storage.blocks import BlockRepository
from chorus_presence.storage.consistency import repair
from chorus_presence.storage.database import Database
from chorus_presence.storage.interfaces import (
    AccountStore,
    BlockListStore,
    LastActivityStore,
    OfflineMessageStore,
    PresenceBlockStore,
    RosterStore,
    RoutingStore,
    ServerStateStore,
    SettingsStore,
)
from chorus_presence.storage.last_activity import LastActivityRepository
from chorus_presence.storage.offline import OfflineMessageRepository
from chorus_presence.storage.rosters import RosterRepository
from chorus_presence.storage.routing import RoutingRepository
from chorus_presence.storage.server_state import ServerStateRepository
from chorus_presence.storage.settings import SettingsRepository
from chorus_presence.storage.visibility import PresenceBlockRepository


@dataclass(frozen=True)
class Repositories:
    """One store per aggregate, all backed by the same open backend."""

    accounts: AccountStore
    rosters: RosterStore
    # XEP-0191 block lists.
    block_lists: BlockListStore
    # Presence blocked lists: who may not see each user's presence.
    presence_blocks: PresenceBlockStore
    settings: SettingsStore
    routing: RoutingStore
    last_activity: LastActivityStore
    offline: OfflineMessageStore
    server_state: ServerStateStore
    # Releases the backend's connection; kept private so nothing reaches past the stores.
    _close: Callable[[], Awaitable[None]] = field(repr=False, compare=False)

    async def close(self) -> None:
        await self._close()


async def open_repositories(config: StorageConfig, domain: str) -> Repositories:
    """Open the configured backend, migrating its schema and repairing what older versions
    left half-done, with `domain` the server's own (the part of local users' bare JIDs after
    the @)."""
    if config.backend == "sqlite":
        db = await Database.open(config.database)
        try:
            await repair(db, domain)
        except BaseException:
            await db.close()
            raise
        return _sqlite(db, domain)
    # Config parsing accepts only known backends; this guards a StorageConfig built by hand.
    raise ValueError(f"unknown storage backend {config.backend!r}")


def _sqlite(db: Database, domain: str) -> Repositories:
    return Repositories(
        accounts=AccountRepository(db, domain),
        rosters=RosterRepository(db),
        block_lists=BlockRepository(db),
        presence_blocks=PresenceBlockRepository(db),
        settings=SettingsRepository(db),
        routing=RoutingRepository(db),
        last_activity=LastActivityRepository(db),
        offline=OfflineMessageRepository(db),
        server_state=ServerStateRepository(db),
        _close=db.close,
    )


def quiet_driver_logging() -> None:
    """The SQLite driver logs every statement at debug level, which drowns the server's own."""
    logging.getLogger("aiosqlite").setLevel(logging.INFO)
