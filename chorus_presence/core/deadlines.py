"""Many users' wall-clock deadlines behind one timer: a heap of (time, user) and a single
`Clock` timer for the earliest, so that no feature polls or keeps a timer per user.

Entries are never removed early: a service whose deadline for a user changed adds the new one
and, when the old one comes due, finds it no longer current and ignores it. Nothing is armed
before `start` (the server starting) nor after `stop` (the server stopping).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable

from chorus_presence.core.clock import Clock, Timer


class Deadlines:
    def __init__(self, clock: Clock, due: Callable[[list[tuple[float, str]], float], None]) -> None:
        """`due(entries, now)` runs with the (time, user) entries whose time has come, earliest
        first."""
        self._clock = clock
        self._due = due
        self._heap: list[tuple[float, str]] = []
        self._timer: Timer | None = None
        self._timer_at: float | None = None
        self._running = False

    def add(self, at: float, user: str) -> None:
        heapq.heappush(self._heap, (at, user))
        self._arm()

    def start(self) -> None:
        self._running = True
        self._arm()

    def stop(self) -> None:
        self._running = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = self._timer_at = None

    def _arm(self) -> None:
        if not self._running or not self._heap:
            return
        earliest = self._heap[0][0]
        if self._timer_at is not None and self._timer_at <= earliest:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = earliest
        self._timer = self._clock.call_at(earliest, self._fire)

    def _fire(self) -> None:
        self._timer = self._timer_at = None
        now = self._clock.now()
        entries: list[tuple[float, str]] = []
        while self._heap and self._heap[0][0] <= now:
            entries.append(heapq.heappop(self._heap))
        if entries:
            self._due(entries, now)
        self._arm()
