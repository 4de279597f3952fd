"""Wall time for features that act at a time of day: what time it is, and running a callback
once that time is reached.

Services that schedule by the calendar (a status that clears itself at 14:30) take a `Clock`
in their constructor instead of reading `time.time()` and the event loop themselves, so that
tests drive time with `ManualClock` instead of waiting for it. `SystemClock` is the real one.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable
from typing import Protocol

# The longest the system clock sleeps in one go: the event loop's monotonic time and the wall
# clock drift apart (NTP, a suspended machine), so a distant wall time is approached in steps.
MAX_STEP_SECONDS = 600.0


class Timer(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    def now(self) -> float:
        """Wall time, in seconds since the epoch (UTC)."""

    def call_at(self, when: float, callback: Callable[[], None]) -> Timer:
        """Run `callback` once, in the event loop, when wall time reaches `when` (at once if
        it has passed)."""


class SystemClock:
    """The real wall clock, scheduling with the running event loop's `call_at`."""

    def now(self) -> float:
        return time.time()

    def call_at(self, when: float, callback: Callable[[], None]) -> Timer:
        timer = _SystemTimer(when, callback)
        timer.arm()
        return timer


class _SystemTimer:
    def __init__(self, when: float, callback: Callable[[], None]) -> None:
        self._when = when
        self._callback = callback
        self._handle: asyncio.TimerHandle | None = None

    def arm(self) -> None:
        loop = asyncio.get_running_loop()
        remaining = self._when - time.time()
        if remaining <= 0:
            self._handle = loop.call_at(loop.time(), self._callback)
        else:
            self._handle = loop.call_at(loop.time() + min(remaining, MAX_STEP_SECONDS), self._due)

    def _due(self) -> None:
        if time.time() >= self._when:
            self._handle = None
            self._callback()
        else:
            self.arm()

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None


class ManualClock:
    """A clock that moves only when told to: tests set the time and `advance` it, and the
    callbacks that come due run then, in order of their time."""

    def __init__(self, start: float) -> None:
        self._now = start
        self._timers: list[tuple[float, int, _ManualTimer]] = []
        self._order = itertools.count()

    def now(self) -> float:
        return self._now

    def call_at(self, when: float, callback: Callable[[], None]) -> Timer:
        timer = _ManualTimer(callback)
        heapq.heappush(self._timers, (when, next(self._order), timer))
        if when <= self._now:
            # What has passed runs at once, as the system clock's would, in the loop.
            asyncio.get_running_loop().call_soon(self._run_due)
        return timer

    def advance(self, seconds: float) -> None:
        """Move time forward and run every callback now due."""
        if seconds < 0:
            raise ValueError("a clock does not go back")
        self._now += seconds
        self._run_due()

    def _run_due(self) -> None:
        while self._timers and self._timers[0][0] <= self._now:
            _, _, timer = heapq.heappop(self._timers)
            if not timer.cancelled:
                timer.cancelled = True
                timer.callback()


class _ManualTimer:
    def __init__(self, callback: Callable[[], None]) -> None:
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True
