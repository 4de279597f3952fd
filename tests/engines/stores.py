"""One storage backend under test, as the contract tests see it: its config, a way to open it
through the factory as a server would (each `open()` is one more process's worth of
connections), and plain SQL on its tables for setting up and checking rows behind the
repositories' backs.

SQL is written with `?` placeholders for both engines; booleans read back as 0 and 1, as
SQLite stores them.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable, Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from chorus_presence.config import StorageConfig
from chorus_presence.storage.factory import Repositories, open_repositories

BACKENDS = ("sqlite", "postgresql")
# The domain of the `store` fixture's backends (tests/unit/conftest.py).
STORE_DOMAIN = "chorus.test"


@dataclass(frozen=True)
class StoreUnderTest:
    backend: str
    config: StorageConfig
    domain: str

    @classmethod
    def sqlite(cls, path: Path, domain: str) -> StoreUnderTest:
        return cls("sqlite", StorageConfig(path), domain)

    @classmethod
    def postgresql(cls, url: str, domain: str) -> StoreUnderTest:
        return cls("postgresql", StorageConfig(Path("unused.db"), "postgresql", url), domain)

    async def open(self) -> Repositories:
        return await open_repositories(self.config, self.domain)

    async def rows(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        if self.backend == "sqlite":
            with closing(sqlite3.connect(self.config.database)) as conn:
                return [_plain(row) for row in conn.execute(sql, args)]
        conn = await self._connect()
        try:
            return [_plain(tuple(row)) for row in await conn.fetch(_numbered(sql), *args)]
        finally:
            await conn.close()

    async def executemany(self, sql: str, args: Iterable[Sequence[Any]]) -> None:
        """Run `sql` once per parameter tuple, all in one transaction."""
        if self.backend == "sqlite":
            with closing(sqlite3.connect(self.config.database)) as conn, conn:
                conn.execute("PRAGMA foreign_keys=ON")
                conn.executemany(sql, args)
            return
        conn = await self._connect()
        try:
            async with conn.transaction():
                await conn.executemany(_numbered(sql), list(args))
        finally:
            await conn.close()

    async def _connect(self) -> asyncpg.Connection:
        assert self.config.url is not None
        return await asyncpg.connect(self.config.url)


def _numbered(sql: str) -> str:
    """`?` placeholders as PostgreSQL's $1, $2..."""
    counter = iter(range(1, sql.count("?") + 1))
    return re.sub(r"\?", lambda _: f"${next(counter)}", sql)


def _plain(row: Sequence[Any]) -> tuple[Any, ...]:
    return tuple(int(value) if isinstance(value, bool) else value for value in row)
