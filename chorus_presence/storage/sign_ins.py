"""Persistence of sign-ins: clients that stay logged in with server-issued tokens (XEP-0484).

A token itself is never stored, only what checking it needs: the SHA-256 of the proof a client
presents with it, the proof the server answers with, and its expiry. Each sign-in has two slots,
as XEP-0484 describes: 'current', the token last used, and 'next', issued after it and not used
yet; using 'next' makes it current, so a client that never received its new token can still
log in with the one before. Which slots a use leaves is decided here, once, for every backend;
each change to a sign-in is one transaction.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from chorus_presence.storage.database import Database

Slot = Literal["current", "next"]
# A sign-in's expiry is its latest token's; a slot left empty counts as long expired.
EXPIRY_SQL = "max(coalesce(current_expires, 0), coalesce(next_expires, 0))"
SIGN_IN_COLUMNS = (
    "id, client_id, label, mechanism, created_at, last_used_at, current_expires, next_expires"
)
SLOT_COLUMN_NAMES = (
    "current_verifier",
    "current_responder",
    "current_expires",
    "next_verifier",
    "next_responder",
    "next_expires",
)
SLOT_COLUMNS = ", ".join(SLOT_COLUMN_NAMES)
_ASSIGN_SLOTS = ", ".join(f"{column} = ?" for column in SLOT_COLUMN_NAMES)


@dataclass(frozen=True, slots=True)
class StoredToken:
    """What is kept of one token."""

    verifier: bytes
    responder: bytes
    expires_at: float


@dataclass(frozen=True, slots=True)
class TokenSlots:
    current: StoredToken | None
    next: StoredToken | None

    def find(self, verifier: bytes) -> tuple[Slot, StoredToken] | None:
        """The slot holding the token `verifier` is of: 'next' first, the newer; compared in
        constant time."""
        slots: tuple[tuple[Slot, StoredToken | None], ...] = (
            ("next", self.next),
            ("current", self.current),
        )
        for slot, token in slots:
            if token is not None and hmac.compare_digest(token.verifier, verifier):
                return slot, token
        return None

    def after_use(
        self, used: Slot, replacement: StoredToken | None, *, invalidate: bool
    ) -> TokenSlots:
        """What the slots hold once the token in `used` logged a client in: that token as the
        current one (so the one before it, if 'next' was used, is gone) and `replacement` as
        the next; with `invalidate`, only `replacement`."""
        if invalidate:
            return TokenSlots(None, replacement)
        token = self.current if used == "current" else self.next
        if replacement is None and used == "current":
            replacement = self.next
        return TokenSlots(token, replacement)

    def without(self, slot: Slot) -> TokenSlots:
        return TokenSlots(None, self.next) if slot == "current" else TokenSlots(self.current, None)

    @property
    def empty(self) -> bool:
        return self.current is None and self.next is None

    def columns(self) -> tuple[object, ...]:
        """The values of SLOT_COLUMNS, in order."""
        values: list[object] = []
        for token in (self.current, self.next):
            values.extend((None, None, None) if token is None else _token_values(token))
        return tuple(values)

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> TokenSlots:
        return cls(_token(row, "current"), _token(row, "next"))


@dataclass(frozen=True, slots=True)
class SignIn:
    id: str
    client_id: str
    label: str
    mechanism: str
    # Seconds since the epoch.
    created_at: float
    last_used_at: float
    # When its latest token expires.
    expires_at: float

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> SignIn:
        expiries = [
            float(row[name])
            for name in ("current_expires", "next_expires")
            if row[name] is not None
        ]
        return cls(
            id=row["id"],
            client_id=row["client_id"],
            label=row["label"],
            mechanism=row["mechanism"],
            created_at=float(row["created_at"]),
            last_used_at=float(row["last_used_at"]),
            expires_at=max(expiries, default=0.0),
        )


@dataclass(frozen=True, slots=True)
class TokenUse:
    """A token presented, that matched one of its sign-in's slots."""

    sign_in: str
    label: str
    responder: bytes
    # It had expired: its slot is emptied, and nothing else changed.
    expired: bool


def use_outcome(
    row: Mapping[str, Any],
    verifier: bytes,
    *,
    now: float,
    replacement: StoredToken | None,
    invalidate: bool,
) -> tuple[TokenUse, TokenSlots] | None:
    """What presenting a token to the sign-in in `row` does: None when it is not one of its
    tokens; else the use, and the slots the sign-in is left with (none: it goes)."""
    slots = TokenSlots.from_row(row)
    found = slots.find(verifier)
    if found is None:
        return None
    slot, token = found
    expired = token.expires_at <= now
    use = TokenUse(row["id"], row["label"], token.responder, expired)
    if expired:
        return use, slots.without(slot)
    return use, slots.after_use(slot, replacement, invalidate=invalidate)


class SignInRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

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
        async with self._db.transaction() as conn:
            async with conn.execute(
                "INSERT INTO sign_ins (id, username, client_id, label, mechanism, created_at,"
                f" last_used_at, {SLOT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (username, client_id) DO UPDATE SET label = excluded.label,"
                " mechanism = excluded.mechanism, last_used_at = excluded.last_used_at,"
                " current_verifier = NULL, current_responder = NULL, current_expires = NULL,"
                " next_verifier = excluded.next_verifier,"
                " next_responder = excluded.next_responder, next_expires = excluded.next_expires"
                " RETURNING id",
                (
                    new_id,
                    username,
                    client_id,
                    label,
                    mechanism,
                    now,
                    now,
                    *TokenSlots(None, token).columns(),
                ),
            ) as cursor:
                row = await cursor.fetchone()
            assert row is not None
            await conn.execute(
                f"DELETE FROM sign_ins WHERE username = ? AND {EXPIRY_SQL} <= ?", (username, now)
            )
            await conn.execute(
                "DELETE FROM sign_ins WHERE id IN (SELECT id FROM sign_ins WHERE username = ?"
                " ORDER BY last_used_at DESC, id LIMIT -1 OFFSET ?)",
                (username, keep),
            )
        return str(row[0])

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
        """A token presented by the client: None when it is none of the client's tokens for
        `mechanism`. Otherwise the sign-in moves on as `use_outcome` says."""
        async with self._db.transaction() as conn:
            async with conn.execute(
                "SELECT * FROM sign_ins WHERE username = ? AND client_id = ? AND mechanism = ?",
                (username, client_id, mechanism),
            ) as cursor:
                row = await cursor.fetchone()
            if row is None:
                return None
            outcome = use_outcome(
                dict(row), verifier, now=now, replacement=replacement, invalidate=invalidate
            )
            if outcome is None:
                return None
            use, slots = outcome
            if slots.empty:
                await conn.execute("DELETE FROM sign_ins WHERE id = ?", (use.sign_in,))
            elif use.expired:
                await conn.execute(
                    f"UPDATE sign_ins SET {_ASSIGN_SLOTS} WHERE id = ?",
                    (*slots.columns(), use.sign_in),
                )
            else:
                await conn.execute(
                    f"UPDATE sign_ins SET last_used_at = ?, {_ASSIGN_SLOTS} WHERE id = ?",
                    (now, *slots.columns(), use.sign_in),
                )
        return use

    async def of_account(self, username: str, now: float) -> list[SignIn]:
        """The account's sign-ins that have a token left, most recently used first."""
        async with (
            self._db.read() as conn,
            conn.execute(
                f"SELECT {SIGN_IN_COLUMNS} FROM sign_ins WHERE username = ? AND {EXPIRY_SQL} > ?"
                " ORDER BY last_used_at DESC, id",
                (username, now),
            ) as cursor,
        ):
            return [SignIn.from_row(dict(row)) for row in await cursor.fetchall()]

    async def revoke(self, username: str, ids: Iterable[str] | None = None) -> list[SignIn]:
        """Drop the account's sign-ins named by `ids`, or all of them; those dropped, by id."""
        wanted = None if ids is None else sorted(set(ids))
        if wanted == []:
            return []
        where = "" if wanted is None else f" AND id IN ({', '.join('?' * len(wanted))})"
        async with (
            self._db.transaction() as conn,
            conn.execute(
                f"DELETE FROM sign_ins WHERE username = ?{where} RETURNING {SIGN_IN_COLUMNS}",
                (username, *(wanted or ())),
            ) as cursor,
        ):
            rows = [dict(row) for row in await cursor.fetchall()]
        return sorted((SignIn.from_row(row) for row in rows), key=lambda item: item.id)


def _token(row: Mapping[str, Any], slot: Slot) -> StoredToken | None:
    verifier = row[f"{slot}_verifier"]
    if verifier is None:
        return None
    return StoredToken(
        bytes(verifier), bytes(row[f"{slot}_responder"]), float(row[f"{slot}_expires"])
    )


def _token_values(token: StoredToken) -> tuple[bytes, bytes, float]:
    return token.verifier, token.responder, token.expires_at
