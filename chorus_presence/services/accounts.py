"""Accounts: creating and removing them, passwords and their checks, for every path in (in-band
registration, the admin socket, the offline command line).

Usernames are normalised with nodeprep here, once, so storage only ever sees canonical
localparts. Key derivation is CPU-bound, so it runs in the bounded pool of worker threads
(core/kdf_pool.py) to keep the event loop responsive. Removal is the one way any path removes
an account: storage deletes every row naming it, on anyone's side, in one transaction; then
`account/removed` lets every service answer for what it keeps in memory and tell whoever is
online. Both happen under the account's lock, which every change to a row naming the account
holds too (core/account_locks.py), so none of them writes such a row again behind the removal.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import replace

from chorus_presence.core import topics
from chorus_presence.core.account_locks import AccountLocks
from chorus_presence.core.bus import Bus
from chorus_presence.core.events import AccountCreated, AccountRemoved
from chorus_presence.core.kdf_pool import KdfPool
from chorus_presence.services.credentials import (
    MAX_PASSWORD_LENGTH,
    MECHANISMS,
    ScramCredentials,
    derive_credentials,
    fake_credentials,
    verify_password,
)
from chorus_presence.storage.accounts import Account, AccountExists
from chorus_presence.storage.interfaces import AccountStore
from chorus_presence.xmpp.jid import JID, JIDError, nodeprep

__all__ = ["AccountExists", "AccountService", "InvalidPassword", "InvalidUsername"]


class InvalidUsername(ValueError):
    """The username is not a valid JID localpart."""


class InvalidPassword(ValueError):
    """The password is empty, too long, or contains characters SASLprep forbids."""


class AccountService:
    def __init__(
        self,
        repo: AccountStore,
        bus: Bus,
        *,
        domain: str,
        iterations: int,
        kdf: KdfPool | None = None,
        locks: AccountLocks | None = None,
    ) -> None:
        self._repo = repo
        self._bus = bus
        self._domain = domain
        self._iterations = iterations
        self.kdf = kdf if kdf is not None else KdfPool()
        self._locks = locks if locks is not None else AccountLocks()
        # Keys the stand-in credentials used when checking a password for a missing account.
        self._secret = secrets.token_bytes(32)

    async def create(self, username: str, password: str) -> str:
        """Register an account and return its normalised username."""
        username = _normalise(username)
        await self._repo.create(username, await self._derive(password))
        await self._bus.notify(topics.ACCOUNT_CREATED, AccountCreated(JID(username, self._domain)))
        return username

    async def change_password(self, username: str, password: str) -> bool:
        """False if there is no such account."""
        return await self._repo.set_credentials(_normalise(username), await self._derive(password))

    async def remove(self, username: str, *, committed: Callable[[], object] | None = None) -> bool:
        """Remove the account and everything naming it; False if there was no such account.

        `committed` runs once the removal is durable and before anyone is told of it: an
        in-band removal answers its client there, so the answer means the account is gone for
        good, and it still reaches the client before `account/removed` closes the stream.
        """
        prepared = _try_normalise(username)
        if prepared is None:
            return False
        # Held until every service has dropped what it keeps of the account: a change that
        # waited for it then finds the account gone.
        async with self._locks.hold(prepared):
            removed = await self._repo.delete(prepared)
            if removed is None:
                return False
            if committed is not None:
                # A plain function, not a coroutine: nothing may yield between the commit and
                # account/removed, whose first handler stops the account's sessions' stanzas.
                # A callback, rather than a remove that returns before telling anyone, so that
                # no caller can forget to fire the event.
                committed()
            event = AccountRemoved(JID(removed.username, self._domain), removed)
            await self._bus.notify(topics.ACCOUNT_REMOVED, event)
        return True

    async def exists(self, username: str) -> bool:
        prepared = _try_normalise(username)
        return prepared is not None and await self._repo.get(prepared) is not None

    async def usernames(self) -> list[str]:
        return await self._repo.list_usernames()

    async def list_with_status(self) -> list[tuple[str, bool]]:
        """Every username with its disabled flag, in username order."""
        return await self._repo.list_with_status()

    async def count(self) -> int:
        return await self._repo.count()

    async def is_disabled(self, username: str) -> bool | None:
        """None if there is no such account."""
        prepared = _try_normalise(username)
        account = await self._repo.get(prepared) if prepared is not None else None
        return account.disabled if account is not None else None

    async def set_disabled(self, username: str, disabled: bool) -> bool:
        """False if there is no such account."""
        return await self._repo.set_disabled(_normalise(username), disabled)

    async def scram_credentials(self, username: str, mechanism: str) -> ScramCredentials | None:
        """The stored credentials, or None when the account is missing or disabled."""
        account, stored = await self._stored_credentials(username, mechanism)
        if account is None or account.disabled:
            return None
        return stored

    async def scram_exchange_credentials(
        self, username: str, mechanism: str, secret: bytes
    ) -> ScramCredentials:
        """What a SCRAM exchange for `username` runs on, found by the same work whoever asks.

        One repository lookup and one set of stand-in credentials (keyed by `secret`, which
        must outlive restarts, as the stored salts do) every time, whether or not the account
        exists: the time to the server's first message does not tell which usernames are
        real. An enabled account gets its stored credentials; a missing one the stand-ins; a
        disabled one its real salt and iteration count with the stand-ins' keys, so that no
        password gets in and disabling it does not change what a client is shown.
        """
        account, stored = await self._stored_credentials(username, mechanism)
        fake = fake_credentials(secret, username, mechanism, self._iterations)
        if account is None or stored is None:
            return fake
        if account.disabled:
            return replace(fake, salt=stored.salt, iterations=stored.iterations)
        return stored

    async def check_plain(self, username: str, password: str) -> bool:
        """Whether the password is right for an enabled account (SASL PLAIN).

        Every username costs the same work, one lookup, the stand-in credentials and one key
        derivation, so the response time does not tell an attacker which usernames exist.
        """
        # Rejected before any lookup, so these answers are the same for every username.
        if not password or len(password) > MAX_PASSWORD_LENGTH:
            return False
        mechanism = MECHANISMS[0]
        account, stored = await self._stored_credentials(username, mechanism)
        # Computed even when unused, so that a real account costs what a missing one does.
        fake = fake_credentials(self._secret, username, mechanism, self._iterations)
        matches = await self.kdf.run(verify_password, password, stored or fake, mechanism)
        return matches and stored is not None and account is not None and not account.disabled

    async def _stored_credentials(
        self, username: str, mechanism: str
    ) -> tuple[Account | None, ScramCredentials | None]:
        """The account and its credentials for `mechanism`, by one repository lookup."""
        if mechanism not in MECHANISMS:
            raise ValueError(f"unsupported mechanism {mechanism!r}")
        prepared = _try_normalise(username)
        account = await self._repo.get(prepared) if prepared is not None else None
        return account, account.credentials.get(mechanism) if account is not None else None

    async def _derive(self, password: str) -> dict[str, ScramCredentials]:
        try:
            return await self.kdf.run(derive_credentials, password, self._iterations)
        except ValueError as exc:
            raise InvalidPassword(str(exc)) from None


def _normalise(username: str) -> str:
    try:
        return nodeprep(username)
    except JIDError as exc:
        raise InvalidUsername(str(exc)) from None


def _try_normalise(username: str) -> str | None:
    try:
        return nodeprep(username)
    except JIDError:
        return None
