"""The key-derivation pool: PBKDF2 (SCRAM credentials, PLAIN checks) off the event loop.

`hashlib.pbkdf2_hmac` releases the GIL, so derivations in worker threads use every core while
the loop goes on serving presence. One worker per core: more would only take turns on the
same cores. Few derivations wait in the executor at a time (`QUEUED_PER_WORKER` each); the
rest of a login storm waits here, each login a coroutine that costs nothing while it waits
and that nothing is computed for if its client goes away first. A login over the bound
waits; it never fails for it.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

# Enough to have the next derivation ready in the executor when a worker finishes one.
QUEUED_PER_WORKER = 2


class KdfPool:
    """A bounded thread pool for CPU-bound derivations; `shutdown` with the server."""

    def __init__(self, *, workers: int | None = None, queued: int | None = None) -> None:
        self.workers = workers if workers is not None else os.cpu_count() or 1
        self.bound = queued if queued is not None else self.workers * QUEUED_PER_WORKER
        self._executor = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="kdf")
        self._slots = asyncio.Semaphore(self.bound)
        # Handed to the executor and not finished: at most `bound`.
        self.in_flight = 0

    async def run(self, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """`function(*args, **kwargs)` in a worker thread, once a place under the bound is
        free."""
        async with self._slots:
            self.in_flight += 1
            try:
                loop = asyncio.get_running_loop()
                return await loop.run_in_executor(
                    self._executor, partial(function, *args, **kwargs)
                )
            finally:
                self.in_flight -= 1

    def shutdown(self) -> None:
        """Start no more derivations; one already running finishes in its thread."""
        self._executor.shutdown(wait=False, cancel_futures=True)
