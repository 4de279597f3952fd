"""Deadlines behind one timer: nothing comes due before `start` or after `stop`, and what comes
due arrives earliest first, in one call per time the clock reaches."""

from __future__ import annotations

from chorus_presence.core.clock import ManualClock
from chorus_presence.core.deadlines import Deadlines


async def test_due_entries_arrive_in_order_once_started() -> None:
    clock = ManualClock(1000.0)
    calls: list[list[tuple[float, str]]] = []
    deadlines = Deadlines(clock, lambda entries, _now: calls.append(entries))
    deadlines.add(1030.0, "bob")
    deadlines.add(1010.0, "alice")
    clock.advance(60)
    assert calls == []
    deadlines.start()
    deadlines.add(1100.0, "carol")
    clock.advance(0)
    assert calls == [[(1010.0, "alice"), (1030.0, "bob")]]
    deadlines.stop()
    clock.advance(100)
    assert calls == [[(1010.0, "alice"), (1030.0, "bob")]]
