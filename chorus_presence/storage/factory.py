"""Opening storage: the backend named in `[storage]`, behind the interfaces in `interfaces`.

This is the one place that knows which classes implement each interface; the rest of the
server receives a `Repositories` and never names a backend. `prepare` is what `init` runs:
the backend's schema brought up to date, and a line saying what it found.

The PostgreSQL backend is imported only when it is the one configured: a server on SQLite
never loads asyncpg, which costs several MB of memory.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from chorus_presence.config import StorageConfig, display_url
from chorus_presence.storage.accounts import AccountRepository
from chorus_presence.storage.blocks import BlockRepository
from chorus_presence.storage.consistency import repair
from chorus_presence.storage.database import Database
from chorus_presence.storage.display_names import DisplayNameRepository
from chorus_presence.storage.interfaces import (
    AccountStore,
    BlockListStore,
    DisplayNameStore,
    LastActivityStore,
    OfflineMessageStore,
    PresenceBlockStore,
    PriorityContactStore,
    QuietHoursStore,
    RosterStore,
    RoutingStore,
    ServerStateStore,
    SettingsStore,
    SignInStore,
    StateExpiryStore,
)
from chorus_presence.storage.last_activity import LastActivityRepository
from chorus_presence.storage.offline import OfflineMessageRepository
from chorus_presence.storage.priority import PriorityContactRepository
from chorus_presence.storage.quiet_hours import QuietHoursRepository
from chorus_presence.storage.rosters import RosterRepository
from chorus_presence.storage.routing import RoutingRepository
from chorus_presence.storage.server_state import ServerStateRepository
from chorus_presence.storage.settings import SettingsRepository
from chorus_presence.storage.sign_ins import SignInRepository
from chorus_presence.storage.state_expiry import StateExpiryRepository
from chorus_presence.storage.visibility import PresenceBlockRepository

if TYPE_CHECKING:
    from chorus_presence.storage.postgres.pool import Pool


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
    # Clients that stay logged in with tokens (XEP-0484).
    sign_ins: SignInStore
    display_names: DisplayNameStore
    # Each user's latest state set with an expiry.
    state_expiries: StateExpiryStore
    # Each user's quiet hours: a weekly schedule of states.
    quiet_hours: QuietHoursStore
    # Priority lists: who reaches each user in Do Not Disturb.
    priority_contacts: PriorityContactStore
    # Releases the backend's connection; kept private so nothing reaches past the stores.
    _close: Callable[[], Awaitable[None]] = field(repr=False, compare=False)

    async def close(self) -> None:
        await self._close()


@dataclass(frozen=True)
class Prepared:
    """What `prepare` found: whether the store was new, and a line naming it."""

    created: bool
    description: str


async def open_repositories(config: StorageConfig, domain: str) -> Repositories:
    """Open the configured backend, migrating its schema and repairing what older versions
    left half-done, with `domain` the server's own (the part of local users' bare JIDs after
    the @). For PostgreSQL, a database that cannot be reached raises DatabaseUnreachable, a
    ConfigError naming `storage.url`."""
    if config.backend == "sqlite":
        db = await Database.open(config.database)
        try:
            await repair(db, domain)
        except BaseException:
            await db.close()
            raise
        return _sqlite(db, domain)
    if config.backend == "postgresql":
        from chorus_presence.storage.postgres import consistency as pg_consistency
        from chorus_presence.storage.postgres import schema as pg_schema

        pool = await _postgres_pool(config)
        try:
            await pg_schema.migrate(pool)
            await pg_consistency.repair(pool, domain)
        except BaseException:
            await pool.close()
            raise
        return _postgres(pool, domain)
    # Config parsing accepts only known backends; this guards a StorageConfig built by hand.
    raise ValueError(f"unknown storage backend {config.backend!r}")


async def prepare(config: StorageConfig) -> Prepared:
    """Create the configured store where it is missing and apply its pending migrations."""
    if config.backend == "sqlite":
        existed = config.database.exists()
        db = await Database.open(config.database)
        try:
            version = await db.schema_version()
        finally:
            await db.close()
        where = f"database {config.database}"
        return Prepared(
            not existed, where if not existed else f"{where} (schema version {version})"
        )
    if config.backend == "postgresql":
        from chorus_presence.storage.postgres import schema as pg_schema

        pool = await _postgres_pool(config)
        try:
            before = await pg_schema.schema_version(pool)
            version = await pg_schema.migrate(pool)
        finally:
            await pool.close()
        where = f"PostgreSQL database {display_url(pool.url)}"
        return Prepared(before == 0, f"{where} (schema version {version})")
    raise ValueError(f"unknown storage backend {config.backend!r}")


async def _postgres_pool(config: StorageConfig) -> Pool:
    from chorus_presence.storage.postgres.pool import Pool

    # Config parsing requires the URL with this backend; this guards a StorageConfig built by
    # hand.
    if config.url is None:
        raise ValueError("the postgresql storage backend needs storage.url")
    return await Pool.open(config.url)


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
        sign_ins=SignInRepository(db),
        display_names=DisplayNameRepository(db),
        state_expiries=StateExpiryRepository(db),
        quiet_hours=QuietHoursRepository(db),
        priority_contacts=PriorityContactRepository(db),
        _close=db.close,
    )


def _postgres(pool: Pool, domain: str) -> Repositories:
    from chorus_presence.storage.postgres import accounts as pg_accounts
    from chorus_presence.storage.postgres import blocks as pg_blocks
    from chorus_presence.storage.postgres import display_names as pg_display_names
    from chorus_presence.storage.postgres import last_activity as pg_last_activity
    from chorus_presence.storage.postgres import offline as pg_offline
    from chorus_presence.storage.postgres import priority as pg_priority
    from chorus_presence.storage.postgres import quiet_hours as pg_quiet_hours
    from chorus_presence.storage.postgres import rosters as pg_rosters
    from chorus_presence.storage.postgres import routing as pg_routing
    from chorus_presence.storage.postgres import server_state as pg_server_state
    from chorus_presence.storage.postgres import settings as pg_settings
    from chorus_presence.storage.postgres import sign_ins as pg_sign_ins
    from chorus_presence.storage.postgres import state_expiry as pg_state_expiry
    from chorus_presence.storage.postgres import visibility as pg_visibility

    return Repositories(
        accounts=pg_accounts.AccountRepository(pool, domain),
        rosters=pg_rosters.RosterRepository(pool),
        block_lists=pg_blocks.BlockRepository(pool),
        presence_blocks=pg_visibility.PresenceBlockRepository(pool),
        settings=pg_settings.SettingsRepository(pool),
        routing=pg_routing.RoutingRepository(pool),
        last_activity=pg_last_activity.LastActivityRepository(pool),
        offline=pg_offline.OfflineMessageRepository(pool),
        server_state=pg_server_state.ServerStateRepository(pool),
        sign_ins=pg_sign_ins.SignInRepository(pool),
        display_names=pg_display_names.DisplayNameRepository(pool),
        state_expiries=pg_state_expiry.StateExpiryRepository(pool),
        quiet_hours=pg_quiet_hours.QuietHoursRepository(pool),
        priority_contacts=pg_priority.PriorityContactRepository(pool),
        _close=pool.close,
    )


def quiet_driver_logging() -> None:
    """The SQLite driver logs every statement at debug level, which drowns the server's own."""
    logging.getLogger("aiosqlite").setLevel(logging.INFO)
