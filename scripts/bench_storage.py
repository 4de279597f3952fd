"""A micro-benchmark of the SQLite storage layer: reads per second and concurrent single-row
commits per second on a temporary database.

    .venv/bin/python scripts/bench_storage.py [--seconds 3] [--writers 64] [--readers 64]

Each figure is the number of operations finished in a fixed wall-clock window by that many
concurrent coroutines; it is printed, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from chorus_presence.storage.database import Database
from chorus_presence.storage.last_activity import LastActivityRepository

USERS = 1000


async def _run(workers: int, seconds: float, op: Callable[[int], Awaitable[None]]) -> int:
    done = 0
    deadline = time.monotonic() + seconds

    async def worker(n: int) -> None:
        nonlocal done
        i = n
        while time.monotonic() < deadline:
            await op(i)
            done += 1
            i += workers

    await asyncio.gather(*(worker(n) for n in range(workers)))
    return done


async def main(seconds: float, writers: int, readers: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = await Database.open(Path(tmp) / "data" / "bench.db")
        repo = LastActivityRepository(db)
        try:
            async with db.transaction() as conn:
                await conn.executemany(
                    "INSERT INTO accounts (username) VALUES (?)",
                    [(f"user{i}",) for i in range(USERS)],
                )
            for i in range(USERS):
                await repo.record(f"user{i}", float(i), None)

            async def write(i: int) -> None:
                await repo.record(f"user{i % USERS}", float(i), "away")

            async def read(i: int) -> None:
                await repo.get(f"user{i % USERS}")

            commits = await _run(writers, seconds, write)
            reads = await _run(readers, seconds, read)
        finally:
            await db.close()
    print(f"reads/s:   {reads / seconds:8.0f}  ({readers} concurrent readers)")
    print(f"commits/s: {commits / seconds:8.0f}  ({writers} concurrent single-row writers)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Measure the SQLite storage layer")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--writers", type=int, default=64)
    parser.add_argument("--readers", type=int, default=64)
    args = parser.parse_args()
    asyncio.run(main(args.seconds, args.writers, args.readers))
