"""Sign-ins and the hashes of their tokens (XEP-0484), on PostgreSQL.

What a use of a token leaves in the two slots is decided by `storage.sign_ins`, as on SQLite;
each change runs in one transaction holding the account's lock.
"""

from __future__ import annotations

from collections.abc import Iterable

from chorus_presence.storage.postgres.pool import Pool
from chorus_presence.storage.sign_ins import (
    SIGN_IN_COLUMNS,
    SLOT_COLUMN_NAMES,
    SLOT_COLUMNS,
    SignIn,
    StoredToken,
    TokenSlots,
    TokenUse,
    use_outcome,
)

# A sign-in's expiry is its latest token's; greatest() passes over an empty slot.
_EXPIRY = "coalesce(greatest(current_expires, next_expires), 0)"


def _assign_slots(first: int) -> str:
    """SLOT_COLUMNS as assignments from parameters $first, $first + 1..."""
    return ", ".join(
        f"{column} = ${index}" for index, column in enumerate(SLOT_COLUMN_NAMES, first)
    )


class SignInRepository:
    def __init__(self, pool: Pool) -> None:
        self._pool = pool

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
        async with self._pool.transaction(username) as conn:
            sign_in = await conn.fetchval(
                "INSERT INTO sign_ins (id, username, client_id, label, mechanism, created_at,"
                f" last_used_at, {SLOT_COLUMNS})"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
                " ON CONFLICT (username, client_id) DO UPDATE SET label = excluded.label,"
                " mechanism = excluded.mechanism, last_used_at = excluded.last_used_at,"
                " current_verifier = NULL, current_responder = NULL, current_expires = NULL,"
                " next_verifier = excluded.next_verifier,"
                " next_responder = excluded.next_responder, next_expires = excluded.next_expires"
                " RETURNING id",
                new_id,
                username,
                client_id,
                label,
                mechanism,
                now,
                now,
                *TokenSlots(None, token).columns(),
            )
            await conn.execute(
                f"DELETE FROM sign_ins WHERE username = $1 AND {_EXPIRY} <= $2", username, now
            )
            await conn.execute(
                "DELETE FROM sign_ins WHERE id IN (SELECT id FROM sign_ins WHERE username = $1"
                " ORDER BY last_used_at DESC, id OFFSET $2)",
                username,
                keep,
            )
        return str(sign_in)

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
        async with self._pool.transaction(username) as conn:
            row = await conn.fetchrow(
                "SELECT * FROM sign_ins WHERE username = $1 AND client_id = $2 AND mechanism = $3",
                username,
                client_id,
                mechanism,
            )
            if row is None:
                return None
            outcome = use_outcome(
                dict(row), verifier, now=now, replacement=replacement, invalidate=invalidate
            )
            if outcome is None:
                return None
            use, slots = outcome
            if slots.empty:
                await conn.execute("DELETE FROM sign_ins WHERE id = $1", use.sign_in)
            elif use.expired:
                await conn.execute(
                    f"UPDATE sign_ins SET {_assign_slots(2)} WHERE id = $1",
                    use.sign_in,
                    *slots.columns(),
                )
            else:
                await conn.execute(
                    f"UPDATE sign_ins SET last_used_at = $2, {_assign_slots(3)} WHERE id = $1",
                    use.sign_in,
                    now,
                    *slots.columns(),
                )
        return use

    async def of_account(self, username: str, now: float) -> list[SignIn]:
        rows = await self._pool.fetch(
            f"SELECT {SIGN_IN_COLUMNS} FROM sign_ins WHERE username = $1 AND {_EXPIRY} > $2"
            " ORDER BY last_used_at DESC, id",
            username,
            now,
        )
        return [SignIn.from_row(dict(row)) for row in rows]

    async def revoke(self, username: str, ids: Iterable[str] | None = None) -> list[SignIn]:
        wanted = None if ids is None else sorted(set(ids))
        if wanted == []:
            return []
        async with self._pool.transaction(username) as conn:
            if wanted is None:
                rows = await conn.fetch(
                    f"DELETE FROM sign_ins WHERE username = $1 RETURNING {SIGN_IN_COLUMNS}",
                    username,
                )
            else:
                rows = await conn.fetch(
                    "DELETE FROM sign_ins WHERE username = $1 AND id = ANY($2::text[])"
                    f" RETURNING {SIGN_IN_COLUMNS}",
                    username,
                    wanted,
                )
        return sorted((SignIn.from_row(dict(row)) for row in rows), key=lambda item: item.id)
