"""Per-account locks: the exclusion every read-modify-write of an account's rows takes.

A change holds the lock of every account whose rows it changes, or which its rows name (a
subscription exchange between alice and bob holds both; removing alice holds alice's, since
it deletes every row naming her). Changes with no account in common run side by side.

The locks of one change are taken in sorted order, so two changes that share accounts, in
whatever order they name them, never wait for each other in a circle. A key's lock exists
only while someone holds it or waits for it, so the table stays as small as the work in
flight however many accounts there are. The locks are not reentrant: a holder that asks for
one of its own keys again waits for itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class _Entry:
    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        # The holder and the waiters: when none is left the entry goes.
        self.users = 0


class AccountLocks:
    """Locks keyed by account (a localpart), created on first use and dropped when idle."""

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}

    def __len__(self) -> int:
        """How many accounts have a lock that someone holds or waits for."""
        return len(self._entries)

    def held(self, account: str) -> bool:
        entry = self._entries.get(account)
        return entry is not None and entry.lock.locked()

    @asynccontextmanager
    async def hold(self, *accounts: str) -> AsyncIterator[None]:
        """Hold every account's lock, each taken once, in sorted order."""
        taken: list[_Entry] = []
        try:
            for account in sorted(set(accounts)):
                taken.append(await self._acquire(account))
            yield
        finally:
            for entry in reversed(taken):
                entry.lock.release()
            for account, entry in zip(sorted(set(accounts)), taken, strict=False):
                self._leave(account, entry)

    async def _acquire(self, account: str) -> _Entry:
        entry = self._entries.get(account)
        if entry is None:
            entry = self._entries[account] = _Entry()
        entry.users += 1
        try:
            await entry.lock.acquire()
        except BaseException:
            # Cancelled while waiting: asyncio.Lock hands the lock to the next waiter.
            self._leave(account, entry)
            raise
        return entry

    def _leave(self, account: str, entry: _Entry) -> None:
        entry.users -= 1
        if entry.users == 0:
            del self._entries[account]
