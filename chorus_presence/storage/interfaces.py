"""The storage interfaces: one protocol per aggregate, which every backend implements.

Services depend on these and on the data classes they name, never on a backend's classes or
its driver. The SQLite and the PostgreSQL repositories implement them; `factory` picks one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Protocol

from chorus_presence.storage.accounts import Account, RemovedAccount, ScramCredentials
from chorus_presence.storage.last_activity import LastLogout
from chorus_presence.storage.offline import StoredMessage
from chorus_presence.storage.quiet_hours import QuietSlot
from chorus_presence.storage.rosters import Roster, RosterChanges
from chorus_presence.storage.routing import StoredRouting
from chorus_presence.storage.settings import UserSettings
from chorus_presence.storage.sign_ins import SignIn, StoredToken, TokenUse
from chorus_presence.storage.state_expiry import ExpiringState


class AccountStore(Protocol):
    """Accounts and their SCRAM credentials, keyed by normalised username."""

    async def create(self, username: str, credentials: Mapping[str, ScramCredentials]) -> None:
        """Add an enabled account; raises AccountExists if the username is taken."""

    async def get(self, username: str) -> Account | None: ...

    async def set_credentials(
        self, username: str, credentials: Mapping[str, ScramCredentials]
    ) -> bool:
        """Replace all of the account's credentials; False if there is no such account."""

    async def set_disabled(self, username: str, disabled: bool) -> bool:
        """False if there is no such account. Disabling it drops its sign-ins in the same
        transaction."""

    async def delete(self, username: str) -> RemovedAccount | None:
        """Remove the account with its own rows (its sign-ins among them) and every other
        user's row naming it, atomically; None if there was no such account."""

    async def list_usernames(self) -> list[str]: ...

    async def count(self) -> int: ...

    async def list_with_status(self) -> list[tuple[str, bool]]:
        """Every username with its disabled flag, in username order."""


class RosterStore(Protocol):
    """Rosters, pending subscription requests (each with the status text and the XEP-0172
    nickname it carried) and roster versions."""

    async def load(self, owner: str) -> Roster: ...

    async def apply(self, changes: RosterChanges) -> dict[str, int]:
        """Write all changes atomically; the new roster version of each owner whose items
        changed."""


class BlockListStore(Protocol):
    """XEP-0191 block lists: the addresses each user exchanges no stanzas with at all."""

    async def load_all(self) -> dict[str, set[str]]:
        """Every account's block list, by owner; accounts without one are left out."""

    async def load(self, owner: str) -> set[str]:
        """One account's block list (empty when it has none)."""

    async def add(self, owner: str, jids: Iterable[str]) -> None: ...

    async def remove(self, owner: str, jids: Iterable[str]) -> None: ...


class PresenceBlockStore(Protocol):
    """Presence blocked lists ("who may see my presence"): the contacts each user keeps from
    seeing their presence. Not the XEP-0191 block list, which is `BlockListStore`."""

    async def contains(self, owner: str, contact: str) -> bool: ...

    async def add(self, owner: str, contact: str) -> None: ...

    async def remove(self, owner: str, contact: str) -> bool:
        """False if the contact was not blocked."""

    # Last: once defined, `list` in this class body names the method, not the builtin.
    async def list(self, owner: str) -> list[str]: ...


class PriorityContactStore(Protocol):
    """Priority lists: the users of this server whose messages and calls reach each user as
    usual while the user is in Do Not Disturb. Usernames on both sides; a row goes with either
    account."""

    async def contains(self, owner: str, contact: str) -> bool: ...

    async def add(self, owner: str, contact: str) -> bool:
        """False when the contact was on the list already or either account is gone."""

    async def remove(self, owner: str, contact: str) -> bool:
        """False if the contact was not on the list."""

    # Last: once defined, `list` in this class body names the method, not the builtin.
    async def list(self, owner: str) -> list[str]:
        """The owner's priority contacts, by username."""


class SettingsStore(Protocol):
    """Per-user product settings."""

    async def get(self, owner: str) -> UserSettings:
        """The owner's settings; the defaults when none were ever saved."""

    async def update(self, owner: str, **changes: object) -> UserSettings:
        """Change some settings and return all of them; ValueError for an unknown one."""

    async def owners_with(self, flag: str) -> set[str]:
        """Every user with the boolean setting `flag` switched on."""


class RoutingStore(Protocol):
    """Each user's call-routing devices and which device rings in which state."""

    async def load(self, owner: str) -> StoredRouting: ...

    async def replace(
        self,
        owner: str,
        *,
        enabled: bool,
        default_device: str | None,
        routing: StoredRouting,
    ) -> None:
        """Swap the owner's whole routing configuration, switch and default included,
        atomically."""


class LastActivityStore(Protocol):
    """Each user's last logout time and status (XEP-0012)."""

    async def record(self, owner: str, at: float, status: str | None) -> None: ...

    async def get(self, owner: str) -> LastLogout | None: ...


class OfflineMessageStore(Protocol):
    """Messages kept for users who are not logged in (XEP-0160)."""

    async def store(self, owner: str, stanza: str, *, max_count: int, max_bytes: int) -> bool:
        """Keep a message; False, keeping nothing, when it would take the owner past
        `max_count` messages or `max_bytes` bytes (of UTF-8 stanzas) waiting."""

    async def pending(self, owner: str) -> list[StoredMessage]:
        """The owner's messages, oldest first."""

    async def remove(self, owner: str, up_to_id: int) -> None:
        """Drop the owner's messages up to and including `up_to_id`."""


class SignInStore(Protocol):
    """Sign-ins: each client that stays logged in with tokens (XEP-0484), one per account and
    client id, with the hashes of its current and next token (never a token)."""

    async def start(
        self,
        username: str,
        client_id: str,
        *,
        new_id: str,
        label: str,
        mechanism: str,
        token: StoredToken,
        now: float,
        keep: int,
    ) -> str:
        """After a password login: the client's sign-in (created as `new_id`, or the one it
        had, whose tokens are all replaced) holds `token` as its next one. The account's
        expired sign-ins go, and its least recently used beyond the `keep` newest. The id."""

    async def use(
        self,
        username: str,
        client_id: str,
        mechanism: str,
        verifier: bytes,
        *,
        now: float,
        replacement: StoredToken | None,
        invalidate: bool = False,
    ) -> TokenUse | None:
        """A token presented by the client, found by its verifier: None when it is none of
        the client's tokens for `mechanism`; else the sign-in moves on atomically as
        `sign_ins.use_outcome` says (an expired token only empties its slot)."""

    async def of_account(self, username: str, now: float) -> list[SignIn]:
        """The account's sign-ins with a token left at `now`, most recently used first."""

    async def revoke(self, username: str, ids: Iterable[str] | None = None) -> list[SignIn]:
        """Drop the account's sign-ins named by `ids`, or all of them; those dropped, by id."""


class DisplayNameStore(Protocol):
    """Each account's display name: what lists show instead of the bare JID."""

    async def get(self, owner: str) -> str | None: ...

    async def get_many(self, owners: list[str]) -> dict[str, str]:
        """The names of those of `owners` who have one, by owner."""

    async def set(self, owner: str, name: str) -> bool:
        """Store the owner's name, replacing any; False if there is no such account."""

    async def clear(self, owner: str) -> None: ...

    async def all(self) -> dict[str, str]:
        """Every stored name, by owner."""


class StateExpiryStore(Protocol):
    """Each user's latest state set with an expiry, while it is in force: one per user."""

    async def all(self) -> list[ExpiringState]:
        """Every stored expiring state, by owner."""

    async def get(self, owner: str) -> ExpiringState | None: ...

    async def put(self, expiring: ExpiringState) -> None:
        """Store the owner's expiring state, replacing any; nothing for an account that is
        gone."""

    async def remove(self, owner: str) -> None: ...


class QuietHoursStore(Protocol):
    """Each user's quiet hours: the weekly slots of the schedule, in the user's order."""

    async def all(self) -> dict[str, list[QuietSlot]]:
        """Every stored schedule, by owner."""

    async def get(self, owner: str) -> list[QuietSlot]:
        """The owner's slots in order; none without a schedule."""

    async def put(self, owner: str, slots: list[QuietSlot]) -> None:
        """Replace the owner's schedule (none when `slots` is empty); nothing for an account
        that is gone."""


class ServerStateStore(Protocol):
    """Server-wide durable values."""

    async def secret(self, key: str, size: int = 32) -> bytes:
        """The stored secret named `key`, created on first use."""
